"""`tnd-bench`: throughput figures a person can compare, one suite per part of the stack.

    tnd-bench                       # every suite at its default (small) scale
    tnd-bench --suite core --json   # one JSON object per line

Each suite lives in ``experiments/bench/<suite>.py`` and exposes
``add_arguments(parser)`` (optional) and ``run(args) -> Iterator[dict]``; every row it
yields is printed as a table line (or JSON with ``--json``). Figures are medians over
repeats after a warm-up; compare ratios measured in one run, not absolutes across runs.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys

SUITES = ("core", "models", "atari", "pong", "devices", "profile", "seeds")


def _load(name: str):
    return importlib.import_module(f"experiments.bench.{name}")


def build_parser(add_help: bool = True) -> argparse.ArgumentParser:
    """The common options; each chosen suite adds its own group (``--help`` lists them)."""
    parser = argparse.ArgumentParser(prog="tnd-bench", description=__doc__.splitlines()[0], add_help=add_help)
    parser.add_argument("--suite", default=",".join(SUITES), help=f"comma-separated subset of {SUITES}")
    parser.add_argument("--json", action="store_true", help="print one JSON object per line")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per figure (median reported)")
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    suites = []
    known = set(SUITES)
    pre, _ = build_parser(add_help=False).parse_known_args(argv)  # which suites, before --help is handled
    for name in pre.suite.split(","):
        name = name.strip()
        if name not in known:
            parser.error(f"unknown suite '{name}'; valid suites: {', '.join(SUITES)}")
        module = _load(name)
        if hasattr(module, "add_arguments"):
            module.add_arguments(parser.add_argument_group(name))
        suites.append((name, module))
    args = parser.parse_args(argv)
    from tnd.training.runtime import retain_freed_memory

    retain_freed_memory()  # what the trainer runs with
    for name, module in suites:
        if not args.json:
            print(f"\n== {name} ==", flush=True)
        for row in module.run(args):
            row = {"suite": name, **row}
            if args.json:
                print(json.dumps(row), flush=True)
            else:
                print("  " + "  ".join(f"{k}={_fmt(v)}" for k, v in row.items() if k != "suite"), flush=True)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


if __name__ == "__main__":
    main(sys.argv[1:])
