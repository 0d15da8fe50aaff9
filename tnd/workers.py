"""Work spread over processes, one per core: contiguous blocks of items (games) each done in
its own spawned process, the results handed back in block order.

Why: host emulators (ALE) run on one core each, so expert collection scales with processes,
not threads. `run_in_workers` starts one ``spawn`` process per block, shows ONE progress bar
in the parent (workers report finished items through their pipes), returns the blocks' results
in order, re-raises a worker's failure as one readable `WorkerError`, and on Ctrl-C (or any
error) terminates every worker before the exception leaves, so no process is orphaned.

    workers = resolve_workers(num_workers, num_games)      # 0 -> one per available core
    parts = run_in_workers(work, split_blocks(num_games, workers), desc="collect", unit="game")

``work(block, report)`` must be picklable (a module-level function or a ``functools.partial``
of one): ``block`` is ``(first, count)``, ``report(n)`` advances the bar by ``n`` items.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import threading
import traceback
from collections.abc import Callable, Sequence
from multiprocessing.connection import wait
from typing import Any

from tqdm.auto import tqdm

Block = tuple[int, int]  # (first item, number of items)
WorkFn = Callable[[Block, Callable[[int], None]], Any]


class WorkerCountError(ValueError):
    """A number of worker processes that is not 0 (one per core) or a positive integer."""


class WorkerError(ValueError):
    """A worker process failed; ``worker_traceback`` holds its traceback text."""

    def __init__(self, message: str, worker_traceback: str = ""):
        super().__init__(message)
        self.worker_traceback = worker_traceback


def available_cores() -> int:
    """The cores this process may run on (``os.sched_getaffinity``; ``os.cpu_count`` where absent)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def check_num_workers(num_workers: Any, setting: str = "num_workers") -> int:
    """``num_workers`` as an int: 0 (one process per available core) or a positive count
    (1 = in this process); anything else is a `WorkerCountError` naming ``setting``."""
    try:
        valid = not isinstance(num_workers, bool) and int(num_workers) == num_workers and int(num_workers) >= 0
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise WorkerCountError(
            f"{setting} must be 0 (one process per available core, {available_cores()} here), 1 (in this "
            f"process) or a larger number of processes, got {num_workers!r}."
        )
    return int(num_workers)


def resolve_workers(num_workers: Any, num_items: int, setting: str = "num_workers") -> int:
    """How many processes to use for ``num_items`` items: ``num_workers`` (0: the available
    cores), at most one per item and at least 1."""
    wanted = check_num_workers(num_workers, setting) or available_cores()
    return max(1, min(wanted, int(num_items)))


def split_blocks(num_items: int, workers: int) -> list[Block]:
    """``num_items`` items as ``workers`` contiguous ``(first, count)`` blocks, in order, sizes
    differing by at most one (the first blocks take the remainder)."""
    size, extra = divmod(int(num_items), int(workers))
    blocks, first = [], 0
    for w in range(int(workers)):
        count = size + (w < extra)
        if count:
            blocks.append((first, count))
        first += count
    return blocks


def run_in_workers(work: WorkFn, blocks: Sequence[Block], *, progress: bool = True, desc: str = "work",
                   unit: str = "item") -> list[Any]:
    """``work(block, report)`` for every block, each in its own spawned process; the results
    in block order. One tqdm bar (``desc``, ``unit``) counts the items the workers report.

    Each worker writes to its own pipe (no queue, so no semaphores outlive an interrupted
    run); a worker that dies without a word shows as the end of its pipe."""
    ctx = mp.get_context("spawn")
    pipes = [ctx.Pipe(duplex=False) for _ in blocks]  # (parent's reader, worker's writer)
    procs = [ctx.Process(target=_worker, args=(work, tuple(block), writer), daemon=True, name=f"{desc}-worker-{index}")
             for index, (block, (_, writer)) in enumerate(zip(blocks, pipes))]
    results: dict[int, Any] = {}
    pending = {reader: index for index, (reader, _) in enumerate(pipes)}
    bar = tqdm(total=sum(count for _, count in blocks), desc=desc, unit=unit, disable=not progress)
    try:
        with _sigint_held():  # Ctrl-C waits while the children start (they inherit the block): it is the parent's
            for proc in procs:
                proc.start()
        for _, writer in pipes:
            writer.close()  # the worker holds the only writer now: its death ends the pipe
        while pending:
            for reader in wait(list(pending)):
                index = pending[reader]
                try:
                    kind, payload = reader.recv()
                except EOFError:
                    procs[index].join(timeout=5)
                    raise WorkerError(f"{_who(desc, unit, index, blocks)} ended without a result "
                                      f"(exit code {procs[index].exitcode}; its output is above).") from None
                if kind == "tick":
                    bar.update(payload)
                elif kind == "result":
                    results[index] = payload
                    del pending[reader]
                else:  # "error": (one line, traceback text)
                    line, text = payload
                    raise WorkerError(f"{_who(desc, unit, index, blocks)} failed: {line}", text)
        for proc in procs:
            proc.join()
        return [results[i] for i in range(len(procs))]
    finally:
        bar.close()
        _stop(procs)
        for reader, writer in pipes:
            reader.close()
            writer.close()


def _worker(work: WorkFn, block: Block, conn) -> None:
    """One worker process: runs ``work`` on its block and sends the result (or the error) home."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the parent stops us
    try:
        result = work(block, lambda n=1: conn.send(("tick", int(n))))
        conn.send(("result", result))  # pickled before anything is written: a pickling error is ours
    except BaseException as exc:  # noqa: BLE001: every failure goes home as one line
        conn.send(("error", (_one_line(exc), traceback.format_exc())))
    finally:
        conn.close()


def _one_line(exc: BaseException) -> str:
    """``Type: message (at file:line)`` of the frame that raised ``exc``."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    message = " ".join(str(exc).split()) or "no message"
    return f"{type(exc).__name__}: {message}{where}"


def _who(desc: str, unit: str, index: int, blocks: Sequence[Block]) -> str:
    first, count = blocks[index]
    return f"{desc} worker {index + 1} of {len(blocks)} ({unit}s {first}..{first + count - 1})"


def _stop(procs) -> None:
    """Terminates the workers still running and reaps every started one."""
    started = [p for p in procs if p.pid is not None]
    for proc in started:
        if proc.exitcode is None:
            proc.terminate()
    for proc in started:
        proc.join(timeout=5)
        if proc.exitcode is None:  # ignored SIGTERM: no orphan either way
            proc.kill()
            proc.join()


@contextlib.contextmanager
def _sigint_held():
    """SIGINT blocked while the workers start, where this is the main thread (elsewhere a no-op).

    A spawned child inherits the blocked mask through fork and exec, so a Ctrl-C cannot kill
    it half-started (`_worker` then ignores SIGINT for good). A Ctrl-C that arrives meanwhile
    stays pending and reaches the parent as KeyboardInterrupt as the block is lifted, so it is
    never lost (ignoring it instead would drop it, and the run would go on to the end)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
