"""`tnd-render`: an animation of a trained run's greedy policy playing, with its running counts.

    tnd-render outputs/train/<run>                                    # -> <run>/agent.gif
    tnd-render "multirun/pong_table/pong/default/model=tnd,seed=0" --steps 600 --scale 2
    tnd-render <run> --games 3 --seed 7 --out /tmp/lstm.gif           # games 1-3 of eval.seed=7
    tnd-render <run> --out /tmp/agent.mp4                             # needs: pip install imageio-ffmpeg
    tnd-render <run> --plugins my_topologies                          # a run trained with plugins=[my_topologies]

The run folder (any name: ``=`` and ``,`` are fine) is a ``tnd-train`` folder; its latest
checkpoint is restored and plays the run's env with the evaluation settings. Game ``g`` is
game ``g`` of ``tnd-eval eval.seed=<seed>`` (default seed: the run's ``eval.seed``, so the
first game is the first of its held-out test games), cut to ``--steps`` steps. Each frame
shows the model, the step and the game's running catch count (Pong: and misses; Atari: and
the score, points won - lost), summed from the events the evaluation counts.

Exit status: 0 on success, 2 for bad input (a missing folder, no checkpoint, an unknown
output suffix, a non-positive size), reported as one line on stderr; 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

PROG = "tnd-render"


def build_parser() -> argparse.ArgumentParser:
    from tnd.evaluation.render import ATARI_FRAMES_PER_SECOND, DEFAULT_FILE, DEFAULT_STEPS, PONG_FPS

    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__.split("Exit status")[0].strip(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_dir", type=Path, help="a tnd-train run folder (holds checkpoints/)")
    parser.add_argument("--out", type=Path, help=f"output .gif or .mp4 (default: RUN_DIR/{DEFAULT_FILE})")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="agent steps (= frames) per game (default: %(default)s)")
    parser.add_argument("--games", type=int, default=1, help="games shown one after another (default: %(default)s)")
    parser.add_argument("--seed", type=int, help="evaluation seed of the games (default: the run's eval.seed)")
    parser.add_argument("--fps", type=int, help=f"frames per second (default: pong {PONG_FPS}; atari_pong real time, "
                                                f"{ATARI_FRAMES_PER_SECOND} / frameskip)")
    parser.add_argument("--scale", type=int, default=1, help="integer magnification of the native frame (default: %(default)s)")
    parser.add_argument("--plugins", type=lambda text: tuple(m for m in text.split(",") if m), default=(),
                        help="comma-separated plugin modules a run trained with plugins=[...] needs (imported only if named)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point; returns the exit status (2 for bad input, one line on stderr)."""
    args = build_parser().parse_args(argv)
    from experiments.common import exit_now, quiet_libraries
    from tnd.app.render import describe, render_run
    from tnd.evaluation.render import RenderOptions

    quiet_libraries()
    options = RenderOptions(steps=args.steps, games=args.games, seed=args.seed, fps=args.fps, scale=args.scale,
                            progress=args.progress, plugins=args.plugins)
    try:
        result = render_run(args.run_dir, args.out, options)
    except ValueError as exc:  # every library error subclasses ValueError
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: one line, like the other commands
        print(f"{PROG}: interrupted", file=sys.stderr, flush=True)
        exit_now(130)
    print(f"[{PROG}] {describe(result)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
