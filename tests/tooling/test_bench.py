"""The bench harness's bookkeeping: how many rounds run, how results are printed, and the
scaling group's measurements, tables and plot; the peers' targets (issue 14)."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

from botstate import Storage
from tooling.bench import Bench, Result, _row, summary
from tooling.bench._cases import sequentially
from tooling.bench.bench_scaling import Point


def test_capped_bench_runs_fewer_rounds_into_the_same_results() -> None:
    bench = Bench(quick=False)
    assert bench.capped(5).round_count() == 5
    assert bench.capped(9).round_count() == 7  # never more than asked for
    assert Bench(rounds=2).capped(5).round_count() == 2
    slow = bench.capped(1)

    async def side() -> None:
        pass

    asyncio.run(slow.compare("g", "case", ours=side, raw=side, ops=1))
    slow.record("k", 1)
    assert [r.rounds for r in bench.results] == [1]
    assert bench.extra == {"k": 1} and slow.stamp == bench.stamp


@pytest.mark.parametrize(
    ("rounds", "quick", "expected"),
    [(None, False, 7), (None, True, 3), (5, False, 5), (5, True, 5), (1, True, 1)],
)
def test_rounds_given_win_over_quick(rounds: int | None, quick: bool, expected: int) -> None:
    bench = Bench(rounds=rounds, quick=quick)
    assert bench.round_count() == expected
    calls: list[str] = []

    async def side() -> None:
        calls.append("x")

    result = asyncio.run(bench.compare("g", "case", ours=side, raw=side, ops=1))
    assert result.rounds == expected
    assert len(calls) == 2 * (expected + 1)  # one warm-up per side, then the rounds


def _result(ratio: float, target: float | None) -> Result:
    return Result("memory", "get", 10, 3, ratio * 100.0, 100.0, ratio, target)


def test_row_and_summary_show_the_same_target_and_verdict() -> None:
    results = [_result(1.2, 0.9), _result(0.5, 0.9), _result(0.5, None)]
    assert [r.target_text for r in results] == ["≥0.9×", "≥0.9×", ""]
    assert [r.verdict for r in results] == ["ok", "BELOW", ""]
    assert _row(results[0]).endswith(" 1.20×   ≥0.9× ok")
    assert _row(results[1]).endswith(" 0.50×   ≥0.9× BELOW")
    assert _row(results[2]).rstrip().endswith(" 0.50×")
    lines = summary(results).splitlines()
    assert lines[1].endswith("1.20×   ≥0.9×  ok")
    assert lines[2].endswith("0.50×   ≥0.9×  BELOW")
    assert lines[3].endswith("0.50×       -  info")
    assert lines[4] == "2 cases with a target: 1 ok, 1 BELOW; 1 informational"
    assert len(lines) == 5  # no miss states a bound: nothing more


def test_summary_lists_each_miss_with_its_profiled_bound_after_the_count() -> None:
    met = Result("memory", "set", 10, 3, 120.0, 100.0, 1.2, 0.9, bound="never shown: met")
    bounded = Result("memory", "get", 10, 3, 85.0, 100.0, 0.85, 0.9, bound="ceiling 0.86×")
    plain = Result("sqlite", "get", 10, 3, 50.0, 100.0, 0.5, 0.9)
    lines = summary([met, bounded, plain]).splitlines()
    assert lines[4] == "3 cases with a target: 1 ok, 2 BELOW; 0 informational"
    assert lines[5:] == ["BELOW with a profiled bound (1 of 2):", "  memory get: ceiling 0.86×"]


def test_sequentially_awaits_each_item_in_order_with_the_extra_arguments() -> None:
    seen: list[tuple[str, bytes]] = []

    async def op(key: str, value: bytes) -> None:
        await asyncio.sleep(0)
        seen.append((key, value))

    asyncio.run(sequentially(op, ["a", "b", "c"], b"v")())
    assert seen == [("a", b"v"), ("b", b"v"), ("c", b"v")]


def test_typed_and_codec_cases_run_and_compare_botstate_with_itself() -> None:
    from botstate_storage_memory import MemoryAdapter
    from tooling.bench._cases import codec_cases, typed_session_cases

    bench = Bench(rounds=1)

    async def run() -> None:
        adapter = MemoryAdapter(sweep_interval=0)
        await codec_cases(bench, "memory", adapter, values=5)
        await typed_session_cases(bench, "memory", adapter, sessions=5)
        # Both sides wrote real values: typed sessions and both codecs' keys.
        keys = [key async for key in adapter.scan("")]
        assert {k.split(":")[0] for k in keys} == {
            "bench-msgspec",
            "bench-stdlib",
            "bench-plain",
            "bench-typed",
        }
        await adapter.close()

    asyncio.run(run())
    assert [r.case for r in bench.results] == [
        "set, msgspec JSON vs stdlib JSON",
        "get, msgspec JSON vs stdlib JSON",
        "typed session open/save (vs dict)",
        "typed session open, unchanged (vs dict)",
    ]
    assert all(r.ratio > 0 and r.target is None for r in bench.results)


def test_scaling_measures_every_size_op_and_task_count_on_a_real_file(tmp_path: Path) -> None:
    import botstate
    from tooling.bench.bench_scaling import measure, scaling_table

    async def run() -> tuple[list[Point], int]:
        storage: Storage[Any] = botstate.open_storage(f"sqlite:///{tmp_path / 's.db'}")
        fills: dict[int, float] = {}
        points = await measure(
            storage,
            "sqlite",
            sizes=(40, 10),
            tasks=(1, 3),
            ops=12,
            rounds=1,
            fill_batch=7,
            fill_seconds=fills,
        )
        stored = len([k async for k in storage.keys()])
        await storage.close()
        assert sorted(fills) == [10, 40]
        return points, stored

    points, stored = asyncio.run(run())
    assert stored == 40  # filled up to the largest size in batches; sets only overwrote
    assert [(p.stored, p.op, p.tasks) for p in points] == [
        (size, op, tasks) for size in (10, 40) for op in ("get", "set") for tasks in (1, 3)
    ]
    assert all(p.backend == "sqlite" and p.ops_per_s > 0 for p in points)
    lines = scaling_table(points).splitlines()
    assert lines[0].split() == ["backend", "keys", "stored", "op", "1", "task", "3", "tasks"]
    assert [line.split()[:3] for line in lines[1:]] == [
        ["sqlite", "10", "get"],
        ["sqlite", "10", "set"],
        ["sqlite", "40", "get"],
        ["sqlite", "40", "set"],
    ]


def test_scaling_table_marks_a_missing_point() -> None:
    from tooling.bench.bench_scaling import scaling_table

    table = scaling_table(
        [
            Point("memory", 1_000, "get", 1, 1234.4),
            Point("memory", 1_000, "get", 10, 99.0),
            Point("redis", 1_000_000, "set", 1, 5.0),
        ]
    )
    assert table.splitlines()[1:] == [
        "memory         1,000 get       1,234          99",
        "redis      1,000,000 set           5           -",
    ]


def test_write_plot_writes_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="matplotlib is in the bench environment only")
    from tooling.bench.bench_scaling import write_plot

    points = [
        Point(backend, stored, op, tasks, float(stored + tasks))
        for backend in ("memory", "redis")
        for stored in (1_000, 100_000)
        for op in ("get", "set")
        for tasks in (1, 50)
    ]
    path = write_plot(points, tmp_path / "sub" / "scaling.png")
    assert path == tmp_path / "sub" / "scaling.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_write_plot_without_matplotlib_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tooling.bench.bench_scaling import write_plot

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes the import fail
    assert write_plot([Point("memory", 10, "get", 1, 1.0)], tmp_path / "p.png") is None
    assert not (tmp_path / "p.png").exists()


def test_memory_per_key_counts_keys_and_values_on_every_side() -> None:
    from tooling.bench.bench_scaling import _small, key, memory_per_key, memory_table

    per_key = asyncio.run(memory_per_key(3_000, batch=1_000))
    assert list(per_key) == ["MemoryAdapter", "dict[str, bytes]"]
    least = sys.getsizeof(key(1_000)) + sys.getsizeof(_small(1_000))  # the key and value objects
    assert per_key["dict[str, bytes]"] >= least
    assert per_key["MemoryAdapter"] >= per_key["dict[str, bytes]"]
    lines = memory_table(3_000, per_key).splitlines()
    assert lines[0].startswith("memory per stored key at 3,000 keys (tracemalloc:")
    assert lines[1].startswith("  MemoryAdapter ") and lines[1].endswith("× the dict)")
    assert lines[2].startswith("  dict[str, bytes]") and lines[2].endswith(" B/key")


def test_scaling_run_quick_prints_tables_and_saves_data(
    redis_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole group on tiny sizes: every backend, the report, the JSON tables, the plot."""
    import tooling.bench
    from tooling.bench import bench_scaling

    del redis_server  # the group starts its own; the fixture says whether redis-server exists
    monkeypatch.setattr(tooling.bench, "RESULTS_DIR", tmp_path)
    monkeypatch.setattr(bench_scaling, "QUICK_SIZES", (20, 60))
    monkeypatch.setattr(bench_scaling, "TASKS", (1, 4))
    monkeypatch.setattr(bench_scaling, "OPS", {"memory": 30, "sqlite": 30, "redis": 30})
    monkeypatch.setattr(bench_scaling, "QUICK_MEMORY_KEYS", 500)
    bench = Bench(rounds=1, quick=True, pin=False)
    asyncio.run(bench_scaling.run(bench))
    points = bench.tables["scaling"]
    assert isinstance(points, list) and len(points) == 3 * 2 * 2 * 2
    assert {p["backend"] for p in points} == {"memory", "sqlite", "redis"}
    assert bench.tables["memory_per_key"]["keys"] == 500  # type: ignore[index]
    (report,) = bench.reports
    assert report.startswith("== scaling: ops/s, median of 1 rounds")
    assert "\nredis             60 set " in report
    assert "memory per stored key at 500 keys" in report
    png = tmp_path / f"scaling-{bench.stamp}.png"
    if importlib.util.find_spec("matplotlib"):
        assert f"plot: {png}" in report and png.is_file()
    else:
        assert "plot: skipped" in report and not png.exists()
    assert set(bench.extra) == {
        f"scaling: {name} fill seconds by size (set_many batches)"
        for name in ("memory", "sqlite", "redis")
    }


def test_peer_targets_pykv(redis_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """py-key-value: 1× on single keys, 2× on batches and on Redis with 50 tasks (bench env)."""
    pytest.importorskip("key_value.aio", reason="py-key-value is in the bench environment only")
    from key_value.aio.stores.memory import MemoryStore
    from key_value.aio.stores.redis import RedisStore

    import botstate
    from tooling.bench import bench_pykv

    monkeypatch.setattr(bench_pykv, "N", {"memory": 150, "redis": 150})
    bench = Bench(rounds=1)

    async def run() -> None:
        ours = botstate.open_storage("memory://", namespace="bench")
        await bench_pykv._cases(bench, "memory", ours, MemoryStore(), concurrency_target=1.0)
        await ours.close()
        ours = botstate.open_storage(redis_server.url, namespace="bench")
        theirs = RedisStore(url=redis_server.url)
        await bench_pykv._cases(bench, "redis", ours, theirs, concurrency_target=2.0)
        # Both sides stored the same value under their own prefixes: the last
        # case (set, 50 concurrent) wrote value(0) under every key.
        assert await ours.get("user:7") == bench_pykv.value(0)
        assert await theirs.get("user:7", collection=bench_pykv.COLLECTION) == bench_pykv.value(0)
        await ours.close()
        await theirs.close()

    asyncio.run(run())
    assert [(r.case, r.target) for r in bench.results] == [
        (f"{backend}: {case}", target)
        for backend, concurrent in (("memory", 1.0), ("redis", 2.0))
        for case, target in (
            ("set, sequential", 1.0),
            ("get, sequential", 1.0),
            ("get_many(100)", 2.0),
            ("set_many(100)", 2.0),
            ("get, 50 concurrent", concurrent),
            ("set, 50 concurrent", concurrent),
        )
    ]


def test_pykv_group_says_skipped_without_py_key_value(monkeypatch: pytest.MonkeyPatch) -> None:
    from tooling.bench import bench_pykv

    monkeypatch.setitem(sys.modules, "key_value.aio.stores.memory", None)
    bench = Bench(rounds=1)
    asyncio.run(bench_pykv.run(bench))
    assert str(bench.extra["pykv"]).startswith("skipped: ")
    assert bench.results == []


def test_peer_targets_aiogram_memory() -> None:
    """aiogram on memory: 1× targets kept on every row; the codec-alone and msgspec rows inform."""
    pytest.importorskip("aiogram", reason="aiogram is in the bench environment only")
    from aiogram.fsm.storage.base import StorageKey
    from aiogram.fsm.storage.memory import MemoryStorage

    import botstate
    from botstate.typed import MsgspecJsonCodec
    from botstate_aiogram import BotstateStorage
    from tooling.bench import bench_aiogram

    bench = Bench(rounds=1)
    key = StorageKey(bot_id=42, chat_id=7, user_id=7)

    async def run() -> None:
        ours, theirs = BotstateStorage("memory://"), MemoryStorage()
        await bench_aiogram._cases(bench, "aiogram", "memory", ours, theirs, 60)
        expected = bench_aiogram.DATA | {"step": "pay"}
        assert await ours.get_data(key) == await theirs.get_data(key) == expected
        assert await ours.get_state(key) == await theirs.get_state(key) == "Form:name"
        await ours.close()
        fast = BotstateStorage(botstate.open_storage("memory://", codec=MsgspecJsonCodec()))
        await bench_aiogram._cases(
            bench, "aiogram", "memory+msgspec", fast, MemoryStorage(), 60, concurrent=False
        )
        await fast.close()

    asyncio.run(run())
    assert [(r.case, r.target) for r in bench.results] == [
        ("memory: set_state, sequential", 1.0),
        ("memory: set_state, 50 concurrent", 1.0),
        ("memory: get_data, sequential", 1.0),
        ("memory: get_data, codec alone", None),
        ("memory: get_data, 50 concurrent", 1.0),
        ("memory: update_data, sequential", 1.0),
        ("memory: update_data, codec alone", None),
        ("memory: update_data, 50 concurrent", 1.0),
        ("memory+msgspec: set_state, sequential", None),
        ("memory+msgspec: get_data, sequential", None),
        ("memory+msgspec: update_data, sequential", None),
    ]
