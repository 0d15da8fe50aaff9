"""`tnd.workers`: blocks of work in spawned processes, failures as one line, Ctrl-C stops them.

The work functions live here, at module level, so the spawned workers can import them.
"""

import multiprocessing as mp
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from tnd.workers import (
    WorkerCountError,
    WorkerError,
    available_cores,
    check_num_workers,
    resolve_workers,
    run_in_workers,
    split_blocks,
)


def _square_block(block, report):
    first, count = block
    for _ in range(count):
        report(1)
    return [g * g for g in range(first, first + count)]


def _fail_on_second_block(block, report):
    if block[0] > 0:
        raise ZeroDivisionError("no games here")
    return block


def _die(block, report):
    os._exit(3)


def _report_then_sleep(block, report):
    report(1)
    time.sleep(60)


def test_split_and_resolve():
    assert split_blocks(5, 2) == [(0, 3), (3, 2)]
    assert split_blocks(2, 4) == [(0, 1), (1, 1)]
    assert resolve_workers(0, 100) == min(available_cores(), 100)
    assert resolve_workers(8, 3) == 3 and resolve_workers(1, 3) == 1


@pytest.mark.parametrize("bad", [-1, 1.5, "two", True, None])
def test_a_bad_worker_count_is_one_line(bad):
    with pytest.raises(WorkerCountError, match=r"data.num_workers must be 0 \(one process per available core") as err:
        check_num_workers(bad, "data.num_workers")
    assert isinstance(err.value, ValueError) and "\n" not in str(err.value)


def test_results_in_block_order():
    assert run_in_workers(_square_block, split_blocks(5, 2), progress=False) == [[0, 1, 4], [9, 16]]


def test_a_workers_exception_is_one_readable_error():
    expected = r"worker 2 of 2 \(games 1..1\) failed: ZeroDivisionError: no games here"
    with pytest.raises(WorkerError, match=expected) as err:
        run_in_workers(_fail_on_second_block, split_blocks(2, 2), progress=False, desc="collect", unit="game")
    assert "\n" not in str(err.value) and "ZeroDivisionError" in err.value.worker_traceback
    assert mp.active_children() == []


def test_a_worker_that_dies_silently_is_one_line():
    with pytest.raises(WorkerError, match=r"worker 1 of 1 \(items 0..1\) ended without a result \(exit code 3"):
        run_in_workers(_die, [(0, 2)], progress=False)


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="signals need the main thread")
def _ctrl_c_scenario(when: str) -> None:
    """Ctrl-C (SIGINT to this process) ``during`` the workers' start or 4 s ``after`` it; exits 0
    when it stopped the run at once (KeyboardInterrupt, no worker left), 1 otherwise. Run in a
    fresh interpreter (`_run_scenario`), so no signal handler, thread or import hook left by
    another test in the same process can change what Ctrl-C does."""
    # A process inherits an ignored or blocked SIGINT through exec (pytest's own worker may run so):
    # start from Python's defaults, as a terminal's process does.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if when == "during":  # a slow spawn on a busy machine: Ctrl-C while the workers start
        real_start = mp.context.SpawnProcess.start

        def start_after_ctrl_c(self):
            os.kill(os.getpid(), signal.SIGINT)
            real_start(self)

        mp.context.SpawnProcess.start = start_after_ctrl_c
    timer = threading.Timer(4.0, os.kill, (os.getpid(), signal.SIGINT))
    start = time.perf_counter()
    if when == "after":
        timer.start()
    try:
        run_in_workers(_report_then_sleep, split_blocks(2, 2), progress=False)
    except KeyboardInterrupt:
        stopped = time.perf_counter() - start < 30 and mp.active_children() == []  # not the 60 s sleep; no orphans
        raise SystemExit(0 if stopped else 1) from None
    finally:
        timer.cancel()
    raise SystemExit(1)  # the run went on to its end


def _run_scenario(when: str) -> subprocess.CompletedProcess:
    here = os.path.dirname(os.path.abspath(__file__))
    code = f"import test_workers; test_workers._ctrl_c_scenario({when!r})"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([here, os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", code], cwd=here, env=env, capture_output=True, text=True, timeout=120)


def test_ctrl_c_while_the_workers_start_is_not_lost():
    """A Ctrl-C that arrives while the workers are being started still stops the run at once."""
    result = _run_scenario("during")
    assert result.returncode == 0, result.stderr[-2000:]


def test_ctrl_c_stops_the_workers():
    result = _run_scenario("after")
    assert result.returncode == 0, result.stderr[-2000:]
