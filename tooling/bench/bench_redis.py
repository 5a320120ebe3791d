"""Redis adapter vs raw redis-py asyncio doing the same work against one local server.

Cases: sequential get/set (target ≥ 0.9×), 50 concurrent tasks (target ≥ 2×:
what auto-pipelining is for; raw redis-py uses its connection pool, one
connection per task), and ``get_many(100)`` against a raw ``MGET`` (≥ 0.9×).
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable, Callable

from redis.asyncio import ConnectionPool, Redis

from botstate_storage_redis import RedisAdapter
from tooling.services.redis import start_redis

from . import Bench

N = 3_000
TASKS = 50
BATCH = 100


def _concurrently(
    op: Callable[[str], Awaitable[object]], keys: list[str]
) -> Callable[[], Awaitable[None]]:
    """``TASKS`` tasks, each running ``op`` over its share of ``keys`` sequentially."""

    async def worker(share: list[str]) -> None:
        for key in share:
            await op(key)

    async def run() -> None:
        await asyncio.gather(*(worker(keys[i::TASKS]) for i in range(TASKS)))

    return run


async def run(bench: Bench) -> None:
    with tempfile.TemporaryDirectory(prefix="botstate-bench-redis-") as tmp:
        server = start_redis(tmp)
        try:
            await _run(bench, server.url)
        finally:
            server.stop()


async def _run(bench: Bench, url: str) -> None:
    n = N // 3 if bench.quick else N
    ours = RedisAdapter(url)
    plain = RedisAdapter(url, autopipeline=False)
    raw = Redis(connection_pool=ConnectionPool.from_url(url, max_connections=TASKS + 10))
    keys = [f"bench:{i}" for i in range(n)]
    value = b"x" * 100
    for key in keys:
        await raw.set("raw:" + key, value)
        await ours.set(key, value)

    async def ours_set() -> None:
        for key in keys:
            await ours.set(key, value)

    async def raw_set() -> None:
        for key in keys:
            await raw.set("raw:" + key, value)

    async def ours_get() -> None:
        for key in keys:
            await ours.get(key)

    async def raw_get() -> None:
        for key in keys:
            await raw.get("raw:" + key)

    await bench.compare("redis", "set, sequential", ours=ours_set, raw=raw_set, ops=n, target=0.9)
    await bench.compare("redis", "get, sequential", ours=ours_get, raw=raw_get, ops=n, target=0.9)

    raw_keys = ["raw:" + k for k in keys]
    await bench.compare(
        "redis",
        f"get, {TASKS} concurrent tasks",
        ours=_concurrently(ours.get, keys),
        raw=_concurrently(raw.get, raw_keys),
        ops=n,
        target=2.0,
    )

    async def ours_set_one(key: str) -> None:
        await ours.set(key, value)

    async def raw_set_one(key: str) -> None:
        await raw.set(key, value)

    await bench.compare(
        "redis",
        f"set, {TASKS} concurrent tasks",
        ours=_concurrently(ours_set_one, keys),
        raw=_concurrently(raw_set_one, raw_keys),
        ops=n,
        target=2.0,
    )
    await bench.compare(
        "redis",
        f"get, {TASKS} tasks, autopipeline=False",
        ours=_concurrently(plain.get, keys),
        raw=_concurrently(raw.get, raw_keys),
        ops=n,
        note="informational: redis-py's pool under the adapter",
    )

    batches = [keys[i : i + BATCH] for i in range(0, n, BATCH)]
    raw_batches = [raw_keys[i : i + BATCH] for i in range(0, n, BATCH)]

    async def ours_many() -> None:
        for batch in batches:
            await ours.get_many(batch)

    async def raw_many() -> None:
        for batch in raw_batches:
            await raw.mget(batch)

    await bench.compare(
        "redis", f"get_many({BATCH}) vs MGET", ours=ours_many, raw=raw_many, ops=n, target=0.9
    )
    stats = ours.pipeline_stats
    bench.record(
        "redis auto-pipeline mean batch",
        round(stats["commands"] / max(1, stats["round_trips"]), 1),
    )
    await ours.close()
    await plain.close()
    await raw.aclose()
