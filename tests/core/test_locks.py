from __future__ import annotations

import asyncio

from botstate.locks import KeyedLock


async def test_keyed_lock_serialises_per_key_and_frees_entries() -> None:
    locks = KeyedLock()
    inside: dict[str, int] = {"a": 0, "b": 0}
    peak = {"a": 0, "b": 0}

    async def work(key: str) -> None:
        async with locks.hold(key):
            inside[key] += 1
            peak[key] = max(peak[key], inside[key])
            await asyncio.sleep(0.001)
            inside[key] -= 1

    await asyncio.gather(*(work("a" if i % 2 else "b") for i in range(100)))
    assert peak == {"a": 1, "b": 1}
    assert len(locks) == 0


async def test_keyed_lock_released_on_error_and_cancel() -> None:
    locks = KeyedLock()
    try:
        async with locks.hold("k"):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert len(locks) == 0

    async with locks.hold("k"):
        waiter = asyncio.ensure_future(locks.hold("k").__aenter__())
        await asyncio.sleep(0)
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
    assert len(locks) == 0
