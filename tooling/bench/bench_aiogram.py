"""aiogram FSM storage: BotstateStorage vs aiogram's own RedisStorage and MemoryStorage.

The same FSM calls (``set_state``, ``get_data``, ``update_data``) through
aiogram's ``BaseStorage`` API, one ``StorageKey`` per user: BotstateStorage on
botstate's Redis adapter against aiogram's ``RedisStorage`` on the same local
redis-server (its own connection pool), and BotstateStorage on botstate's
memory adapter against aiogram's ``MemoryStorage`` (a dict of records; no
encoding, no TTL). Sequential and 50 concurrent tasks, ``ratio = botstate /
aiogram``. Targets (issue 14, peers): ≥ 1.0× on every workload, ≥ 2× with 50
concurrent tasks on Redis (what auto-pipelining is for); on memory no task ever
waits, so 50 tasks do the same work as one: ≥ 1.0× there.

Semantics differ where it shows: aiogram's ``update_data`` reads, merges and
writes (2 round trips, concurrent updates of one key can lose fields); ours is
one atomic ``Storage.update`` (versioned read + compare-and-set, 2 round trips).
"""

from __future__ import annotations

import tempfile
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram.fsm.storage.base import BaseStorage, StorageKey
from aiogram.fsm.storage.memory import MemoryStorage
from aiogram.fsm.storage.redis import RedisStorage

from botstate_aiogram import BotstateStorage
from tooling.services.redis import start_redis

from . import Bench
from ._cases import concurrently, sequentially

N = 2_000
N_MEMORY = 10_000
TASKS = 50
DATA = {"name": "Ann", "lang": "en", "step": "menu", "cart": [1, 2, 3]}


async def run(bench: Bench) -> None:
    ours_memory = BotstateStorage("memory://", state_ttl=None)
    await _cases(bench, "aiogram", "memory", ours_memory, MemoryStorage(), N_MEMORY)
    await ours_memory.close()
    with tempfile.TemporaryDirectory(prefix="botstate-bench-aiogram-") as tmp:
        server = start_redis(tmp)
        try:
            ours = BotstateStorage.from_url(server.url, namespace="bench")
            theirs = RedisStorage.from_url(
                server.url.rsplit("/", 1)[0] + "/1",
                connection_kwargs={"max_connections": TASKS + 10},
            )
            try:
                await _cases(bench, "aiogram", "redis", ours, theirs, N)
            finally:
                await ours.close()
                await theirs.close()
        finally:
            server.stop()


async def _cases(
    bench: Bench, group: str, backend: str, ours: BaseStorage, theirs: BaseStorage, n: int
) -> None:
    n = n // 3 if bench.quick else n
    keys = [StorageKey(bot_id=42, chat_id=i, user_id=i) for i in range(n)]
    for key in keys:
        await ours.set_data(key, DATA)
        await theirs.set_data(key, DATA)
    baseline = "RedisStorage" if backend == "redis" else "MemoryStorage"

    def ops(storage: BaseStorage) -> dict[str, Callable[[StorageKey], Awaitable[Any]]]:
        async def set_state(key: StorageKey) -> None:
            await storage.set_state(key, "Form:name")

        async def get_data(key: StorageKey) -> dict[str, Any]:
            return await storage.get_data(key)

        async def update_data(key: StorageKey) -> dict[str, Any]:
            return await storage.update_data(key, {"step": "pay"})

        return {"set_state": set_state, "get_data": get_data, "update_data": update_data}

    ours_ops, their_ops = ops(ours), ops(theirs)
    for name in ("set_state", "get_data", "update_data"):
        await bench.compare(
            group,
            f"{backend}: {name}, sequential",
            ours=sequentially(ours_ops[name], keys),
            raw=sequentially(their_ops[name], keys),
            ops=n,
            target=1.0,
            note=f"raw: aiogram's {baseline}" if name == "set_state" else "",
        )
        await bench.compare(
            group,
            f"{backend}: {name}, {TASKS} concurrent",
            ours=concurrently(ours_ops[name], keys, TASKS),  # type: ignore[arg-type]
            raw=concurrently(their_ops[name], keys, TASKS),  # type: ignore[arg-type]
            ops=n,
            target=2.0 if backend == "redis" else 1.0,
        )
