"""The bench harness's bookkeeping: how many rounds run, and how results are printed."""

from __future__ import annotations

import asyncio

import pytest

from tooling.bench import Bench, Result, _row, summary
from tooling.bench._cases import sequentially


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
