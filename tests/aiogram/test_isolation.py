"""BotstateEventIsolation: one handler per FSM key, across processes on ATOMIC backends."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiogram.fsm.storage.base import DefaultKeyBuilder, StorageKey

from botstate.errors import ConfigError, ConflictError
from botstate.storage import Storage
from botstate_aiogram import BotstateEventIsolation, BotstateStorage

ROOT = Path(__file__).resolve().parents[2]
KEY = StorageKey(bot_id=42, chat_id=1, user_id=1)
OTHER = StorageKey(bot_id=42, chat_id=2, user_id=2)


async def test_one_holder_per_key_others_run(fsm: BotstateStorage) -> None:
    isolation = fsm.create_isolation()
    inside: list[int] = []
    overlaps: list[int] = []

    async def handler(n: int, key: StorageKey) -> None:
        async with isolation.lock(key):
            if inside:
                overlaps.append(n)
            inside.append(n)
            await asyncio.sleep(0.01)
            inside.remove(n)

    await asyncio.gather(*(handler(n, KEY) for n in range(8)))
    assert overlaps == []

    # different keys do not wait for each other
    order: list[str] = []

    async def slow() -> None:
        async with isolation.lock(KEY):
            order.append("slow in")
            await asyncio.sleep(0.2)
            order.append("slow out")

    async def fast() -> None:
        await asyncio.sleep(0.02)
        async with isolation.lock(OTHER):
            order.append("fast")

    await asyncio.gather(slow(), fast())
    assert order == ["slow in", "fast", "slow out"]
    await isolation.close()


async def test_lock_is_released_when_the_handler_raises_or_is_cancelled(
    fsm: BotstateStorage,
) -> None:
    isolation = fsm.create_isolation(timeout=2)
    with pytest.raises(RuntimeError):
        async with isolation.lock(KEY):
            raise RuntimeError("handler failed")

    entered = asyncio.Event()

    async def stuck() -> None:
        async with isolation.lock(KEY):
            entered.set()
            await asyncio.sleep(60)

    task = asyncio.create_task(stuck())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with isolation.lock(KEY):  # free again, no wait for a lease to expire
        pass


async def test_waiting_longer_than_timeout_is_a_conflict(fsm: BotstateStorage) -> None:
    isolation = fsm.create_isolation(timeout=0.2)
    held = asyncio.Event()
    release = asyncio.Event()

    async def holder() -> None:
        async with isolation.lock(KEY):
            held.set()
            await release.wait()

    task = asyncio.create_task(holder())
    await held.wait()
    start = time.monotonic()
    with pytest.raises(ConflictError):
        async with isolation.lock(KEY):
            pass
    assert time.monotonic() - start < 5
    release.set()
    await task


async def test_lock_key_follows_the_key_builder(
    botstate_storage: Storage[Any], namespace: str
) -> None:
    builder = DefaultKeyBuilder(prefix="bot7", with_bot_id=True)
    fsm = BotstateStorage(botstate_storage, key_builder=builder)
    isolation = fsm.create_isolation()
    assert isolation.key_builder is builder
    # two isolations over one storage and key builder exclude each other
    second = BotstateEventIsolation(botstate_storage, key_builder=builder, timeout=0.1)
    # Storage.lock's lease for the FSM key (the public API hides lock entries: look below it)
    adapter, lease = botstate_storage.adapter, f":lock:{namespace}:bot7:42:1:1:lock"
    async with isolation.lock(KEY):
        assert await adapter.has(lease)  # all three backends are ATOMIC: a lease in the store
        with pytest.raises(ConflictError):
            async with second.lock(KEY):
                pass
    assert not await adapter.has(lease)  # released
    async with second.lock(KEY):
        pass


@pytest.mark.parametrize(
    "kwargs", [{"ttl": 0}, {"ttl": "30"}, {"timeout": -1}, {"timeout": float("nan")}]
)
def test_bad_settings(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        BotstateStorage("memory://").create_isolation(**kwargs)
    with pytest.raises(ConfigError, match="botstate Storage"):
        BotstateEventIsolation("memory://")  # type: ignore[arg-type]


HOLDER = """
import asyncio, sys, time
from aiogram.fsm.storage.base import StorageKey
from botstate_aiogram import BotstateStorage

async def main(url, namespace, hold):
    fsm = BotstateStorage.from_url(url, namespace=namespace)
    isolation = fsm.create_isolation(ttl=1, timeout=60)
    async with isolation.lock(StorageKey(bot_id=42, chat_id=1, user_id=1)):
        print("locked", time.time(), flush=True)
        await asyncio.sleep(hold)
        print("unlocking", time.time(), flush=True)
    await fsm.close()

asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
"""


@pytest.mark.slow
def test_excludes_another_process(
    backend: str, storage_url: str, namespace: str, open_botstate: Callable[[], Storage[Any]]
) -> None:
    """A handler in another process holds the key (for longer than the lease ttl, which is
    renewed): ours waits until that process lets go, on SQLite and Redis."""
    if backend == "memory":
        pytest.skip("memory stores are per process: there is no other process to exclude")
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, storage_url, namespace, "2.5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("locked"), proc.stderr.read() if proc.stderr else ""

        async def take() -> float:
            storage = open_botstate()
            try:
                isolation = BotstateStorage(storage).create_isolation(timeout=60)
                async with isolation.lock(KEY):
                    return time.time()
            finally:
                await storage.close()

        got = asyncio.run(take())
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        unlocking = float(out.split()[-1])
        assert got >= unlocking - 0.05  # not before the other process let go (ttl=1 < 2.5s held)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
