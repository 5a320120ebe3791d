"""py-key-value: botstate's Storage vs py-key-value's MemoryStore and RedisStore, same work.

py-key-value (distribution ``py-key-value-aio``) is what a user picks for "an
async key-value store with pluggable backends": it stores dict values as JSON
with an optional TTL, as botstate's ``Storage`` does with its default codec.
Both sides store the same small dict (a bot's session), with a 600 s TTL, the
memory backends in this process and the Redis backends on the same local
redis-server (each its own key prefix: botstate namespace ``bench``,
py-key-value collection ``pykv``). Both do their own key handling, expiry
checks and JSON; ``ratio = botstate / py-key-value``.

Targets: ≥ 1.0× on every single-key workload; ≥ 2× on batches (``get_many``/
``set_many`` of 100 against ``get_many``/``put_many``) and, on Redis, with 50
concurrent tasks (what auto-pipelining is for). On the memory backends no task
ever waits, so 50 tasks do the same work as one: target ≥ 1.0× there.

Skipped, with a note, where py-key-value is not installed (``hatch run bench``
runs in the ``bench`` environment, which has it).
"""

from __future__ import annotations

import tempfile
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import botstate
from botstate import Storage
from tooling.services.redis import start_redis

from . import Bench
from ._cases import SESSION_TTL, concurrently, sequentially

N = {"memory": 5_000, "redis": 1_500}
"""Keys per timed run: py-key-value does 5–20k ops/s on memory, 2–6k on Redis (2-core VM)."""
MAX_ROUNDS = 5
BATCH = 100
TASKS = 50
COLLECTION = "pykv"


def value(i: int) -> dict[str, Any]:
    """The stored value: a small bot session, the same on both sides."""
    return {"counter": i, "name": f"user {i}", "lang": "en", "step": "menu", "cart": [1, 2, 3]}


async def run(bench: Bench) -> None:
    try:
        from key_value.aio.stores.memory import MemoryStore
        from key_value.aio.stores.redis import RedisStore
    except ImportError as err:
        bench.record("pykv", f"skipped: {err} (pip install 'py-key-value-aio[memory,redis]')")
        print(f"pykv     skipped: {err}")
        return
    # The peer is slow: at most MAX_ROUNDS rounds, to keep the whole bench short.
    slow = bench.capped(MAX_ROUNDS)
    ours = botstate.open_storage("memory://", namespace="bench")
    try:
        await _cases(slow, "memory", ours, MemoryStore(), concurrency_target=1.0)
    finally:
        await ours.close()
    with tempfile.TemporaryDirectory(prefix="botstate-bench-pykv-") as tmp:
        server = start_redis(tmp)
        try:
            ours = botstate.open_storage(server.url, namespace="bench")
            theirs = RedisStore(url=server.url)
            try:
                await _cases(slow, "redis", ours, theirs, concurrency_target=2.0)
            finally:
                await ours.close()
                await theirs.close()
        finally:
            server.stop()


async def _cases(
    bench: Bench, backend: str, ours: Storage[Any], theirs: Any, *, concurrency_target: float
) -> None:
    n = N[backend] // 3 if bench.quick else N[backend]
    keys = [f"user:{i}" for i in range(n)]
    values = [value(i) for i in range(n)]
    batches = [keys[i : i + BATCH] for i in range(0, n, BATCH)]
    value_batches = [values[i : i + BATCH] for i in range(0, n, BATCH)]
    for batch, chunk in zip(batches, value_batches, strict=True):
        await ours.set_many(dict(zip(batch, chunk, strict=True)), ttl=SESSION_TTL)
        await theirs.put_many(batch, chunk, collection=COLLECTION, ttl=SESSION_TTL)
    peer = f"py-key-value {type(theirs).__name__}"

    async def ours_set(key: str) -> None:
        await ours.set(key, values[0], ttl=SESSION_TTL)

    async def their_set(key: str) -> None:
        await theirs.put(key, values[0], collection=COLLECTION, ttl=SESSION_TTL)

    async def their_get(key: str) -> object:
        return await theirs.get(key, collection=COLLECTION)

    async def ours_set_many() -> None:
        for batch, chunk in zip(batches, value_batches, strict=True):
            await ours.set_many(dict(zip(batch, chunk, strict=True)), ttl=SESSION_TTL)

    async def their_put_many() -> None:
        for batch, chunk in zip(batches, value_batches, strict=True):
            await theirs.put_many(batch, chunk, collection=COLLECTION, ttl=SESSION_TTL)

    async def their_get_many(batch: Sequence[str]) -> object:
        return await theirs.get_many(batch, collection=COLLECTION)

    cases: list[tuple[str, Callable[[], Awaitable[None]], Callable[[], Awaitable[None]], float]]
    cases = [
        ("set, sequential", sequentially(ours_set, keys), sequentially(their_set, keys), 1.0),
        ("get, sequential", sequentially(ours.get, keys), sequentially(their_get, keys), 1.0),
        (
            f"get_many({BATCH})",
            sequentially(ours.get_many, batches),
            sequentially(their_get_many, batches),
            2.0,
        ),
        (f"set_many({BATCH})", ours_set_many, their_put_many, 2.0),
        (
            f"get, {TASKS} concurrent",
            concurrently(ours.get, keys, TASKS),
            concurrently(their_get, keys, TASKS),
            concurrency_target,
        ),
        (
            f"set, {TASKS} concurrent",
            concurrently(ours_set, keys, TASKS),
            concurrently(their_set, keys, TASKS),
            concurrency_target,
        ),
    ]
    for i, (case, ours_run, their_run, target) in enumerate(cases):
        await bench.compare(
            "pykv",
            f"{backend}: {case}",
            ours=ours_run,
            raw=their_run,
            ops=n,
            target=target,
            note="" if i else f"raw: {peer}; both: dict values as JSON, ttl={SESSION_TTL:g}",
        )
