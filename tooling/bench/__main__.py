"""``python -m tooling.bench [--only NAME,...] [--quick] [--rounds N]``."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
import time
from pathlib import Path

from . import HEADER, Bench, summary


def _rounds(text: str) -> int:
    rounds = int(text)
    if rounds < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {rounds}")
    return rounds


def main() -> int:
    here = Path(__file__).parent
    available = sorted(p.stem.removeprefix("bench_") for p in here.glob("bench_*.py"))
    parser = argparse.ArgumentParser(prog="hatch run bench", description=__doc__)
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(available)}")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="3 rounds instead of 7, less work in some groups, scaling up to 10k keys only",
    )
    parser.add_argument(
        "--rounds", type=_rounds, default=None, help="timed rounds per case (overrides --quick)"
    )
    parser.add_argument(
        "--no-pin", action="store_true", help="never pin a group to one CPU (see bench.one_cpu)"
    )
    args = parser.parse_args()
    chosen = available if not args.only else [n.strip() for n in args.only.split(",")]
    unknown = sorted(set(chosen) - set(available))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    bench = Bench(rounds=args.rounds, quick=args.quick, pin=not args.no_pin)
    print(
        "medians over rounds; ratio = botstate throughput / raw throughput, same run "
        "(raw = the raw driver, or a peer library for aiogram, ptb and pykv)"
    )
    failed = []
    took: dict[str, float] = {}
    for name in chosen:
        module = importlib.import_module(f"tooling.bench.bench_{name}")
        about = (module.__doc__ or "").strip().splitlines()[0:1]
        print(f"\n== {name}: {about[0] if about else ''}")
        print(HEADER, flush=True)
        began = time.perf_counter()
        try:
            asyncio.run(module.run(bench))
        except Exception as err:  # report and go on with the other groups
            failed.append(name)
            print(f"{name:<8} FAILED: {type(err).__name__}: {err}", file=sys.stderr)
        took[name] = round(time.perf_counter() - began, 1)
        print(f"{name:<8} took {took[name]:.1f} s", flush=True)
    print("\n== summary (ratio = botstate / raw driver or peer, same run)")
    print(summary(bench.results))
    for report in bench.reports:
        print(f"\n{report}")
    if failed:
        print(f"FAILED groups: {', '.join(failed)}")
    bench.record("seconds per group", took)
    for key, value in bench.extra.items():
        print(f"{key}: {value}")
    print(f"results written to {bench.write_json()}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
