"""The benchmark harness behind ``hatch run bench``.

Every ``bench_*.py`` module here defines ``async def run(bench: Bench) -> None``
and calls :meth:`Bench.compare` for each case: botstate doing some work against
the raw driver doing the same work, in the same run, interleaved round by round
so machine noise hits both sides alike. Results are medians and ratios
(``ratio = botstate throughput / raw throughput``), never single timings.
The "raw" side is the raw driver, or a peer library doing the same work
(``bench_aiogram``, ``bench_ptb``, ``bench_pykv``). Groups that measure
curves rather than ratios (``bench_scaling``) keep their data in
:attr:`Bench.tables` and their printed tables in :attr:`Bench.reports`.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["Bench", "Result", "one_cpu"]

RESULTS_DIR = Path(__file__).resolve().parents[2] / ".bench"


@dataclass
class Result:
    group: str
    case: str
    ops: int
    rounds: int
    ours_ops_per_s: float
    raw_ops_per_s: float
    ratio: float
    target: float | None
    note: str = ""
    ours_seconds: list[float] = field(default_factory=list)
    raw_seconds: list[float] = field(default_factory=list)
    bound: str = ""
    """Where a profile shows the target is out of reach without dropping a guarantee:
    the ceiling it found and where the profile is written down (printed for a miss)."""

    @property
    def meets(self) -> bool | None:
        return None if self.target is None else self.ratio >= self.target

    @property
    def target_text(self) -> str:
        """``"≥0.9×"``, or ``""`` for an informational case."""
        return "" if self.target is None else f"≥{self.target:g}×"

    @property
    def verdict(self) -> str:
        """``"ok"`` or ``"BELOW"`` against the target, ``""`` for an informational case."""
        return "" if self.meets is None else ("ok" if self.meets else "BELOW")


@dataclass
class Bench:
    """Runs comparisons and collects their results."""

    rounds: int | None = None
    """Timed rounds per case as asked for (``--rounds``); see :meth:`round_count`."""
    quick: bool = False
    pin: bool = True
    """Let groups that hand work to driver threads pin themselves to one CPU (see ``one_cpu``)."""
    results: list[Result] = field(default_factory=list)
    extra: dict[str, object] = field(default_factory=dict)
    tables: dict[str, object] = field(default_factory=dict)
    """Data of a group's own tables (e.g. scaling curves), written to the JSON file."""
    reports: list[str] = field(default_factory=list)
    """Text blocks printed again after the summary (e.g. the scaling tables)."""
    stamp: str = field(default_factory=lambda: time.strftime("%Y%m%d-%H%M%S"))
    """Names this run's files under ``.bench/``: ``bench-<stamp>.json`` and siblings."""

    async def compare(
        self,
        group: str,
        case: str,
        *,
        ours: Callable[[], Awaitable[object]],
        raw: Callable[[], Awaitable[object]],
        ops: int,
        target: float | None = None,
        setup: Callable[[], Awaitable[object]] | None = None,
        note: str = "",
        bound: str = "",
    ) -> Result:
        """Time ``ours()`` and ``raw()`` (each doing ``ops`` operations) over several rounds.

        One warm-up call of each, then ``rounds`` rounds alternating which side
        goes first. ``setup`` runs before every timed call (untimed). ``bound``:
        see :attr:`Result.bound`.
        """
        rounds = self.round_count()
        ours_times: list[float] = []
        raw_times: list[float] = []
        for fn in (ours, raw):  # warm-up: connections, caches, prepared statements
            if setup:
                await setup()
            await fn()
        for i in range(rounds):
            pair = [(ours, ours_times), (raw, raw_times)]
            if i % 2:
                pair.reverse()
            for fn, times in pair:
                if setup:
                    await setup()
                start = time.perf_counter()
                await fn()
                times.append(time.perf_counter() - start)
        ours_rate = ops / statistics.median(ours_times)
        raw_rate = ops / statistics.median(raw_times)
        result = Result(
            group,
            case,
            ops,
            rounds,
            ours_rate,
            raw_rate,
            ours_rate / raw_rate,
            target,
            note,
            [round(t, 6) for t in ours_times],
            [round(t, 6) for t in raw_times],
            bound,
        )
        self.results.append(result)
        print(_row(result), flush=True)
        if note:
            print(f"{'':<9}└ {note}", flush=True)
        return result

    def round_count(self) -> int:
        """How many timed rounds every case runs: ``--rounds`` if given, else 3 quick or 7."""
        if self.rounds is not None:
            return self.rounds
        return 3 if self.quick else 7

    def capped(self, rounds: int) -> Bench:
        """This bench with at most ``rounds`` rounds per case, for groups with slow cases.

        Results, records, tables and reports go to this bench's own.
        """
        return Bench(
            rounds=min(rounds, self.round_count()),
            quick=self.quick,
            pin=self.pin,
            results=self.results,
            extra=self.extra,
            tables=self.tables,
            reports=self.reports,
            stamp=self.stamp,
        )

    def record(self, key: str, value: object) -> None:
        """Keep a measurement that is not a comparison (e.g. import times)."""
        self.extra[key] = value

    def output(self, name: str, suffix: str) -> Path:
        """``.bench/<name>-<stamp><suffix>``, the directory created if needed."""
        RESULTS_DIR.mkdir(exist_ok=True)
        return RESULTS_DIR / f"{name}-{self.stamp}{suffix}"

    def write_json(self) -> Path:
        path = self.output("bench", ".json")
        payload = {
            "python": sys.version.split()[0],
            "machine": platform.machine(),
            "results": [asdict(r) | {"meets_target": r.meets} for r in self.results],
            "extra": self.extra,
            "tables": self.tables,
        }
        path.write_text(json.dumps(payload, indent=2))
        return path


@contextmanager
def one_cpu(enabled: bool = True) -> Iterator[str]:
    """Run the calling thread, and the threads it starts meanwhile, on one CPU.

    On a small VM, a driver that hands each call to its own thread (aiosqlite)
    gets bimodal timings depending on whether that thread wakes on the event
    loop's CPU or the other one: an A/A run of raw against itself varied by up
    to ±50% between rounds. On one CPU both sides pay the same hand-off cost.
    Yields a description for the group's notes.
    """
    if not enabled or sys.platform != "linux":
        yield "not pinned"
        return
    before = os.sched_getaffinity(0)
    cpu = min(before)
    os.sched_setaffinity(0, {cpu})
    try:
        yield f"process pinned to CPU {cpu}"
    finally:
        os.sched_setaffinity(0, before)


HEADER = (
    f"{'group':<8} {'case':<40} {'ours ops/s':>12} {'raw ops/s':>12} {'ratio':>7} {'target':>7}"
)


def summary(results: list[Result]) -> str:
    """A compact table of every case: ratio, target and verdict, then the count of misses.

    A miss whose case states a bound (a profiled ceiling below the target) is
    listed again after the count, with that bound.
    """
    lines = [f"{'group':<8} {'case':<40} {'ratio':>7} {'target':>7}  verdict"]
    for r in results:
        target, verdict = r.target_text or "-", r.verdict or "info"
        lines.append(f"{r.group:<8} {r.case:<40} {r.ratio:>6.2f}× {target:>7}  {verdict}")
    judged = [r for r in results if r.meets is not None]
    below = [r for r in judged if not r.meets]
    lines.append(
        f"{len(judged)} cases with a target: {len(judged) - len(below)} ok, {len(below)} BELOW; "
        f"{len(results) - len(judged)} informational"
    )
    bounded = [r for r in below if r.bound]
    if bounded:
        lines.append(f"BELOW with a profiled bound ({len(bounded)} of {len(below)}):")
        lines.extend(f"  {r.group} {r.case}: {r.bound}" for r in bounded)
    return "\n".join(lines)


def _row(r: Result) -> str:
    return (
        f"{r.group:<8} {r.case:<40} {r.ours_ops_per_s:>12,.0f} {r.raw_ops_per_s:>12,.0f} "
        f"{r.ratio:>6.2f}× {r.target_text:>7} {r.verdict}"
    )
