"""Memory adapter vs a plain dict doing the same work."""

from __future__ import annotations

from botstate_storage_memory import MemoryAdapter

from . import Bench

N = 20_000


async def run(bench: Bench) -> None:
    adapter = MemoryAdapter()
    raw: dict[str, bytes] = {}
    keys = [f"k{i}" for i in range(N)]
    value = b"x" * 100

    async def ours_set() -> None:
        for key in keys:
            await adapter.set(key, value)

    async def raw_set() -> None:
        for key in keys:
            raw[key] = value

    async def ours_get() -> None:
        for key in keys:
            await adapter.get(key)

    async def raw_get() -> None:
        for key in keys:
            raw.get(key)

    await bench.compare("memory", "set (async adapter vs dict)", ours=ours_set, raw=raw_set, ops=N)
    await bench.compare("memory", "get (async adapter vs dict)", ours=ours_get, raw=raw_get, ops=N)
    await adapter.close()
