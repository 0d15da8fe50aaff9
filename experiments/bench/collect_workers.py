"""Serial vs one-process-per-core Atari expert collection in one run: wall and CPU seconds.

    python -m experiments.bench.collect_workers 2 1     # 2 workers, then serial (the order given)

Plays the same 8 expert games (``max_steps=2000``, epsilon 0.1) once per worker count with
`collect_demonstrations(num_workers=...)` and checks that the data are the same; the figures
in docs/atari.md come from it. CPU seconds include the workers' (``RUSAGE_CHILDREN``).
"""

from __future__ import annotations

import resource
import sys
import time

import numpy as np

from tnd.envs.atari_pong import AtariPongConfig, collect_demonstrations


def cpu_s() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main(order):
    config = AtariPongConfig(max_steps=2000)
    wall, demos = {}, {}
    for workers in order:
        start, cpu = time.perf_counter(), cpu_s()
        demos[workers] = collect_demonstrations(config, num_episodes=8, seed=0, epsilon=0.1, num_envs=8,
                                                progress=False, num_workers=workers)
        wall[workers] = time.perf_counter() - start
        print(f"num_workers={workers}: wall {wall[workers]:.1f} s, CPU {cpu_s() - cpu:.1f} s, "
              f"{demos[workers].num_steps} steps", flush=True)
    same = all(np.array_equal(getattr(demos[1], f), getattr(demos[2], f))
               for f in ("observations", "actions", "taken_actions", "episode_starts"))
    print(f"speed-up {wall[1] / wall[2]:.2f}x, same data: {same}")


if __name__ == "__main__":
    main([int(w) for w in sys.argv[1:]] or [1, 2])
