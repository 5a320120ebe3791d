"""Scaling: Storage get/set throughput as keys stored (1k–1M) and concurrent tasks (1–200) grow.

For each backend (memory, a SQLite file, a local redis-server) the storage is
filled to 1,000, then 100,000, then 1,000,000 keys (``--quick``: 1,000 and
10,000) with ``set_many`` batches (``executemany`` on SQLite, one pipeline per
batch on Redis), and at each size ``Storage.get`` and ``Storage.set`` (overwrite)
of random stored keys run in 1, 10, 50 and 200 concurrent tasks. Values are
small dicts through the default JSON codec; no expiry. Each point is the median
of its rounds, in operations per second; the table is printed (again after the
summary) and plotted to ``.bench/scaling-<stamp>.png`` where matplotlib is
installed (the ``bench`` environment). Not ratios: no target.

Memory per stored key: the memory adapter filled with 1,000,000 small values
without expiry (``--quick``: 10,000), measured with ``tracemalloc`` (Python heap
blocks still alive after the fill and a ``gc.collect()``, the key and value
objects included), beside a plain ``dict[str, bytes]`` holding the same keys and
values.
"""

from __future__ import annotations

import gc
import random
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import botstate
from botstate import Storage
from botstate_storage_memory import MemoryAdapter
from tooling.services.redis import start_redis

from . import Bench, one_cpu
from ._cases import concurrently

__all__ = [
    "Point",
    "fill",
    "measure",
    "memory_per_key",
    "memory_table",
    "run",
    "scaling_table",
    "write_plot",
]

SIZES = (1_000, 100_000, 1_000_000)
QUICK_SIZES = (1_000, 10_000)
TASKS = (1, 10, 50, 200)
OPS = {"memory": 10_000, "sqlite": 1_500, "redis": 2_000}
"""Operations per timed run at each point (``--quick``: a third)."""
FILL_BATCH = {"memory": 10_000, "sqlite": 5_000, "redis": 2_000}
MEMORY_KEYS = 1_000_000
QUICK_MEMORY_KEYS = 10_000
MAX_ROUNDS = 3
"""Rounds per point: ``min(MAX_ROUNDS, bench.round_count())``: 72 points, kept short."""


@dataclass(frozen=True)
class Point:
    """One measurement: ``op`` ("get"/"set") on ``backend``, ``stored`` keys, ``tasks`` tasks."""

    backend: str
    stored: int
    op: str
    tasks: int
    ops_per_s: float


def key(i: int) -> str:
    return f"user:{i}"


def stored_value(i: int) -> dict[str, Any]:
    """A small value, as a bot keeps per user."""
    return {"counter": i, "step": "menu"}


async def fill(storage: Storage[Any], start: int, stop: int, batch: int) -> float:
    """Write keys ``start``..``stop - 1`` with ``set_many`` batches; return the seconds taken."""
    began = time.perf_counter()
    for lo in range(start, stop, batch):
        hi = min(stop, lo + batch)
        await storage.set_many({key(i): stored_value(i) for i in range(lo, hi)})
    return time.perf_counter() - began


async def _median_rate(run: Callable[[], Awaitable[None]], ops: int, rounds: int) -> float:
    await run()  # warm-up: connections, caches, statement cache
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        await run()
        times.append(time.perf_counter() - start)
    return ops / statistics.median(times)


async def measure(
    storage: Storage[Any],
    backend: str,
    *,
    sizes: Sequence[int],
    tasks: Sequence[int],
    ops: int,
    rounds: int,
    fill_batch: int,
    fill_seconds: dict[int, float] | None = None,
) -> list[Point]:
    """Fill ``storage`` up to each of ``sizes`` in turn and time get and set at each of ``tasks``.

    ``storage`` must start empty. ``fill_seconds``, if given, receives each size's fill time.
    """
    rng = random.Random(14)
    points: list[Point] = []
    stored = 0
    new_value = {"counter": -1, "step": "pay"}

    async def put(k: str) -> None:
        await storage.set(k, new_value)

    for size in sorted(sizes):
        took = await fill(storage, stored, size, fill_batch)
        if fill_seconds is not None:
            fill_seconds[size] = round(took, 2)
        stored = size
        for op, fn in (("get", storage.get), ("set", put)):
            for n_tasks in tasks:
                keys = [key(rng.randrange(size)) for _ in range(ops)]
                rate = await _median_rate(concurrently(fn, keys, n_tasks), ops, rounds)
                points.append(Point(backend, size, op, n_tasks, rate))
                print(
                    f"scaling  {backend:<7} {size:>10,} keys  {op} {n_tasks:>4} tasks "
                    f"{rate:>12,.0f} ops/s",
                    flush=True,
                )
    return points


def scaling_table(points: Sequence[Point]) -> str:
    """One row per backend, size and op; one ops/s column per task count."""
    tasks = sorted({p.tasks for p in points})
    rows: dict[tuple[str, int, str], dict[int, float]] = {}
    for p in points:
        rows.setdefault((p.backend, p.stored, p.op), {})[p.tasks] = p.ops_per_s
    head = f"{'backend':<8} {'keys stored':>11} {'op':<3}" + "".join(
        f" {f'{t} task' + ('s' if t > 1 else ''):>11}" for t in tasks
    )
    lines = [head]
    for (backend, stored, op), rates in rows.items():
        cells = "".join(f" {rates[t]:>11,.0f}" if t in rates else f" {'-':>11}" for t in tasks)
        lines.append(f"{backend:<8} {stored:>11,} {op:<3}{cells}")
    return "\n".join(lines)


def write_plot(points: Sequence[Point], path: Path) -> Path | None:
    """Plot ops/s against keys stored, one panel per op and backend, one line per task count.

    Returns ``path``, or ``None`` where matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    backends = list(dict.fromkeys(p.backend for p in points))
    ops = list(dict.fromkeys(p.op for p in points))
    tasks = sorted({p.tasks for p in points})
    fig, axes = plt.subplots(
        len(ops), len(backends), figsize=(4.2 * len(backends), 3.4 * len(ops)), squeeze=False
    )
    for row, op in enumerate(ops):
        for col, backend in enumerate(backends):
            ax = axes[row][col]
            for n_tasks in tasks:
                mine = sorted(
                    (p.stored, p.ops_per_s)
                    for p in points
                    if p.backend == backend and p.op == op and p.tasks == n_tasks
                )
                if mine:
                    xs, ys = zip(*mine, strict=True)
                    label = f"{n_tasks} task" + ("s" if n_tasks > 1 else "")
                    ax.plot(xs, ys, marker="o", label=label)
            ax.set_xscale("log")
            ax.set_title(f"{backend}: {op}")
            ax.set_xlabel("keys stored")
            ax.set_ylabel("ops/s")
            ax.set_ylim(bottom=0)
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize="small")
    fig.suptitle("botstate Storage throughput (median of rounds)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


async def _traced(build: Callable[[], Awaitable[object]]) -> int:
    """Bytes of Python heap still held after ``await build()`` (what it returns is kept alive)."""
    gc.collect()
    tracemalloc.start()
    try:
        kept = await build()
        gc.collect()
        size = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del kept
    return size


def _small(i: int) -> bytes:
    return b'{"counter":%d,"step":"menu"}' % i


async def memory_per_key(n: int, *, batch: int = 10_000) -> dict[str, float]:
    """Bytes per stored key: the memory adapter and a plain dict, same keys and values.

    Each store is filled with ``n`` keys ``user:<i>`` and small JSON values made
    inside the traced window, so keys and values count on both sides. No expiry:
    tracing 1M writes takes ~10 s a store, and one more would cost the bench that.
    """

    async def adapter_build() -> object:
        adapter = MemoryAdapter(max_entries=0, sweep_interval=0)
        for lo in range(0, n, batch):
            await adapter.set_many({key(i): _small(i) for i in range(lo, min(n, lo + batch))})
        return adapter

    async def dict_build() -> object:
        return {key(i): _small(i) for i in range(n)}

    return {
        "MemoryAdapter": await _traced(adapter_build) / n,
        "dict[str, bytes]": await _traced(dict_build) / n,
    }


def memory_table(n: int, per_key: dict[str, float]) -> str:
    """The memory-per-key figures as printed lines, each with its multiple of the dict's."""
    plain = per_key.get("dict[str, bytes]")
    lines = [
        f"memory per stored key at {n:,} keys (tracemalloc: Python heap held after the fill, "
        "keys and values included)"
    ]
    for name, size in per_key.items():
        times = f"  ({size / plain:.2f}× the dict)" if plain and name != "dict[str, bytes]" else ""
        lines.append(f"  {name:<28} {size:>7.0f} B/key{times}")
    return "\n".join(lines)


async def _backend(
    bench: Bench, name: str, url: str, sizes: Sequence[int], rounds: int
) -> list[Point]:
    ops = OPS[name] // 3 if bench.quick else OPS[name]
    storage: Storage[Any] = botstate.open_storage(url, namespace="scale")
    fills: dict[int, float] = {}
    try:
        points = await measure(
            storage,
            name,
            sizes=sizes,
            tasks=TASKS,
            ops=ops,
            rounds=rounds,
            fill_batch=FILL_BATCH[name],
            fill_seconds=fills,
        )
    finally:
        await storage.close()
    bench.record(f"scaling: {name} fill seconds by size (set_many batches)", fills)
    return points


async def run(bench: Bench) -> None:
    sizes = QUICK_SIZES if bench.quick else SIZES
    rounds = min(MAX_ROUNDS, bench.round_count())
    points = await _backend(bench, "memory", "memory://?max_entries=0", sizes, rounds)
    with tempfile.TemporaryDirectory(prefix="botstate-bench-scaling-") as tmp:
        # aiosqlite-style thread hand-offs: pinned as in bench_sqlite (see one_cpu).
        with one_cpu(bench.pin):
            points += await _backend(
                bench, "sqlite", f"sqlite:///{Path(tmp) / 'scale.db'}", sizes, rounds
            )
        server = start_redis(Path(tmp) / "redis")
        try:
            points += await _backend(bench, "redis", server.url, sizes, rounds)
        finally:
            server.stop()
    n = QUICK_MEMORY_KEYS if bench.quick else MEMORY_KEYS
    per_key = await memory_per_key(n)
    table = scaling_table(points)
    memory = memory_table(n, per_key)
    plot = write_plot(points, bench.output("scaling", ".png"))
    where = f"plot: {plot}" if plot else "plot: skipped (matplotlib not installed; hatch run bench)"
    text = (
        f"== scaling: ops/s, median of {rounds} rounds, small JSON values, no expiry\n"
        f"{table}\n{memory}\n{where}"
    )
    print(where)
    bench.reports.append(text)
    bench.tables["scaling"] = [asdict(p) for p in points]
    bench.tables["memory_per_key"] = {"keys": n, "method": "tracemalloc", "bytes": per_key}
