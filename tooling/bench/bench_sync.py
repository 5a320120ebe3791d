"""botstate.sync vs the async API: what a blocking call costs on the same kind of adapter.

"ours" is ``SyncStorage.get``/``set`` called in a loop from a plain thread
(each call runs the adapter's blocking twin in that thread: the memory
adapter's under the loop's lock, SQLite's on its connection threads, Redis's
through redis-py's synchronous client); "raw" is the async
``Storage.get``/``set`` awaited in a loop on an event loop, the same work on
the same kind of adapter (memory, SQLite file, the same redis-server). Values
are small JSON dicts through the default codec on both sides. Targets: ≥ 0.8×
on memory and SQLite, ≥ 0.9× on Redis.

Pinned to one CPU by default (see ``one_cpu``): on a small VM a thread waking
another on the other CPU costs far more than on the same one. ``--no-pin``
shows the unpinned figures.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable, Callable
from typing import Any

import botstate
from botstate.storage import Storage
from botstate.sync import SyncStorage
from botstate.sync.loop import LoopThread
from tooling.services.redis import start_redis

from . import Bench, one_cpu

N = {"memory": 20_000, "sqlite": 2_000, "redis": 3_000}
VALUE = {"counter": 1, "step": "menu", "lang": "en"}
TARGET = {"memory": 0.8, "sqlite": 0.8, "redis": 0.9}


async def run(bench: Bench) -> None:
    with one_cpu(bench.pin) as pinned, tempfile.TemporaryDirectory(prefix="botstate-sync-") as tmp:
        print(f"sync     ({pinned})")
        bench.record("sync CPU pinning", pinned)
        # A loop thread of our own, started while pinned so it inherits the affinity.
        runner = LoopThread("botstate-bench-sync")
        await _group(bench, runner, "memory", "memory://", "memory://")
        await _group(
            bench, runner, "sqlite", f"sqlite:///{tmp}/sync.db", f"sqlite:///{tmp}/async.db"
        )
        server = start_redis(tmp)
        try:
            await _group(bench, runner, "redis", server.url, server.url)
        finally:
            server.stop()


async def _group(
    bench: Bench, runner: LoopThread, name: str, sync_url: str, async_url: str
) -> None:
    n = N[name] // 4 if bench.quick else N[name]
    keys = [f"user:{i}" for i in range(n)]

    def build() -> Storage[Any]:
        return botstate.open_storage(sync_url, namespace="bench-sync")

    sync = SyncStorage(await asyncio.to_thread(runner.call, build), runner=runner)
    aio = botstate.open_storage(async_url, namespace="bench-async")
    try:

        def sync_set() -> None:
            for key in keys:
                sync.set(key, VALUE)

        def sync_get() -> None:
            for key in keys:
                sync.get(key)

        async def async_set() -> None:
            for key in keys:
                await aio.set(key, VALUE)

        async def async_get() -> None:
            for key in keys:
                await aio.get(key)

        note = "ours: SyncStorage from a plain thread; raw: Storage awaited on an event loop"
        await bench.compare(
            "sync",
            f"{name}: set (sync / async)",
            ours=_in_thread(sync_set),
            raw=async_set,
            ops=n,
            target=TARGET[name],
            note=note,
        )
        await bench.compare(
            "sync",
            f"{name}: get (sync / async)",
            ours=_in_thread(sync_get),
            raw=async_get,
            ops=n,
            target=TARGET[name],
        )
    finally:
        await asyncio.to_thread(sync.close)
        await aio.close()


def _in_thread(fn: Callable[[], None]) -> Callable[[], Awaitable[None]]:
    """The timed sync work runs on a worker thread: sync calls refuse an event loop's thread."""

    async def run() -> None:
        await asyncio.to_thread(fn)

    return run
