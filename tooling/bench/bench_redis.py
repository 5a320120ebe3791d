"""Redis adapter vs raw redis-py asyncio doing the same work against one local server.

Cases: sequential get/set (target ≥ 0.9×), 50 concurrent tasks (target ≥ 2×:
what auto-pipelining is for; raw redis-py uses its connection pool, one
connection per task), ``get_many(100)`` against a raw ``MGET`` and
``set_many(100)`` with expiry against a non-transactional pipeline of
``SET ... PXAT`` (``MSET`` cannot set an expiry) (≥ 0.9×; ``get_many`` ≥ 1.0×),
``set_many`` without expiry against ``MSET`` (≥ 0.9×) and 50 tasks without
auto-pipelining against redis-py's pool (≥ 0.9×). Informational: atomic update
against a Lua compare-and-set on the value (and against WATCH/MULTI/EXEC), and
sessions against GET/SET with the same expiry.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

from redis.asyncio import ConnectionPool, Redis

from botstate_storage_redis import RedisAdapter
from tooling.services.redis import start_redis

from . import Bench
from ._cases import SESSION_TTL, concurrently, dumps, sequentially, session_cases, update_case

N = 3_000
N_ATOMIC = 2_000
N_SESSIONS = 2_000
TASKS = 50
BATCH = 100

# Compare-and-set on the value: write ARGV[2] only if the key still holds ARGV[1]
# ('' = only if absent). The client reads with GET, computes, then calls this.
CAS_ON_VALUE = """
local cur = redis.call('GET', KEYS[1])
if (cur == false and ARGV[1] == '') or cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
return 0
"""


def _concurrently(
    op: Callable[[str], Awaitable[object]], keys: list[str]
) -> Callable[[], Awaitable[None]]:
    return concurrently(op, keys, TASKS)


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

    raw_keys = ["raw:" + k for k in keys]
    await bench.compare(
        "redis",
        "set, sequential",
        ours=sequentially(ours.set, keys, value),
        raw=sequentially(raw.set, raw_keys, value),
        ops=n,
        target=0.9,
    )
    await bench.compare(
        "redis",
        "get, sequential",
        ours=sequentially(ours.get, keys),
        raw=sequentially(raw.get, raw_keys),
        ops=n,
        target=0.9,
    )

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
        target=0.9,  # issue 14
        note="ours: redis-py's pool under the adapter, no auto-pipeline",
    )

    batches = [keys[i : i + BATCH] for i in range(0, n, BATCH)]
    raw_batches = [raw_keys[i : i + BATCH] for i in range(0, n, BATCH)]

    await bench.compare(
        "redis",
        f"get_many({BATCH}) vs MGET",
        ours=sequentially(ours.get_many, batches),
        raw=sequentially(raw.mget, raw_batches),
        ops=n,
        target=1.0,  # issue 14
    )
    await _batches(bench, ours, raw, batches, raw_batches)
    await _atomic_and_sessions(bench, ours, raw, n)
    stats = ours.pipeline_stats
    bench.record(
        "redis auto-pipeline mean batch",
        round(stats["commands"] / max(1, stats["round_trips"]), 1),
    )
    await ours.close()
    await plain.close()
    await raw.aclose()


async def _batches(
    bench: Bench,
    ours: RedisAdapter,
    raw: Redis,
    batches: list[list[str]],
    raw_batches: list[list[str]],
) -> None:
    value = b"y" * 100
    items = [dict.fromkeys(batch, value) for batch in batches]
    raw_items = [dict.fromkeys(batch, value) for batch in raw_batches]
    ops = sum(len(batch) for batch in batches)

    async def ours_set_many() -> None:
        expires_at = time.time() + SESSION_TTL
        for chunk in items:
            await ours.set_many(chunk, expires_at=expires_at)

    async def raw_set_many() -> None:
        pxat = round((time.time() + SESSION_TTL) * 1000)
        for chunk in raw_items:
            pipe = raw.pipeline(transaction=False)
            for key, data in chunk.items():
                pipe.set(key, data, pxat=pxat)
            await pipe.execute()

    await bench.compare(
        "redis",
        f"set_many({BATCH}) with expiry",
        ours=ours_set_many,
        raw=raw_set_many,
        ops=ops,
        target=0.9,
        note="raw: pipeline(transaction=False) of SET key value PXAT, one round trip; "
        "ours: the same SETs (8-byte version header in front of each value) in one round trip",
    )
    await bench.compare(
        "redis",
        f"set_many({BATCH}), no expiry, vs MSET",
        ours=sequentially(ours.set_many, items),
        raw=sequentially(raw.mset, raw_items),
        ops=ops,
        target=0.9,  # issue 14
        note="ours: one MSET with an 8-byte version header in front of each value",
    )


async def _atomic_and_sessions(bench: Bench, ours: RedisAdapter, raw: Redis, n: int) -> None:
    cas = raw.register_script(CAS_ON_VALUE)
    key = "raw:counter"

    async def raw_update() -> None:
        while True:
            old = await raw.get(key)
            new = dumps((0 if old is None else json.loads(old)) + 1)
            if await cas(keys=[key], args=[old or b"", new]):
                return

    async def watch_body(pipe: Any) -> None:
        old = await pipe.get(key)  # immediate mode: WATCH is already in place
        pipe.multi()
        pipe.set(key, dumps((0 if old is None else json.loads(old)) + 1))

    async def raw_watch_update() -> None:
        await raw.transaction(watch_body, key)

    ops = N_ATOMIC // 3 if bench.quick else N_ATOMIC
    await update_case(
        bench,
        "redis",
        ours,
        raw_update=raw_update,
        ops=ops,
        note="GET + EVALSHA of a Lua compare-and-set on the whole value (redis-py "
        "register_script), retried on conflict; 2 round trips, like ours (GET + EVALSHA)",
    )
    await update_case(
        bench,
        "redis",
        ours,
        case="atomic update vs WATCH/MULTI/EXEC",
        raw_update=raw_watch_update,
        ops=ops,
        note="redis-py transaction(): WATCH, GET, then MULTI/SET/EXEC pipelined "
        "(3 round trips, pool checkout); informational",
    )

    async def raw_get(key: str) -> bytes | None:
        return cast("bytes | None", await raw.get(key))  # no decode_responses: bytes

    async def raw_set(key: str, value: bytes, ttl: float) -> None:
        await raw.set(key, value, px=round(ttl * 1000))

    await session_cases(
        bench,
        "redis",
        ours,
        sessions=N_SESSIONS // 3 if bench.quick else N_SESSIONS,
        raw_get=raw_get,
        raw_set=raw_set,
        raw_note="GET, SET PX",
    )
