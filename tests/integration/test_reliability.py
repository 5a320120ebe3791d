"""A process never hangs on an unclosed storage, close() is bounded under load, any loop works.

Each test runs on every adapter against its real backend. "Acknowledged" means
the ``await storage.set(...)`` returned: such a write must survive whatever
happens next (for the persistent adapters).
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import botstate

pytestmark = pytest.mark.slow

ADAPTERS = ["memory", "sqlite", "redis", "kv"]
PERSISTENT = {"sqlite", "redis", "kv"}


@pytest.fixture(params=ADAPTERS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    name = request.param
    if name == "memory":
        yield "memory://"
    elif name == "sqlite":
        yield f"sqlite:///{tmp_path}/bot.db"
    elif name == "redis":
        server = request.getfixturevalue("redis_server")
        yield server.url + f"?prefix=rel-{uuid.uuid4().hex[:8]}:"
    else:
        dynamodb = request.getfixturevalue("dynamodb_local")
        yield dynamodb.url(f"rel-{uuid.uuid4().hex[:10]}")


def _adapter_of(url: str) -> str:
    return {"memory": "memory", "sqlite": "sqlite", "redis": "redis", "dynamodb": "kv"}[
        url.partition("://")[0]
    ]


CHILD = textwrap.dedent(
    """
    import asyncio, sys, botstate

    async def main(url, mode):
        storage = botstate.open_storage(url, namespace="child")
        n = 0
        while True:
            await storage.set(f"k{n}", n)
            print(n, flush=True)  # acknowledged
            n += 1
            await asyncio.sleep(0)  # a bot awaits its network between updates
            if mode != "sigint" and n == 30:
                break
        if mode == "raise":
            raise RuntimeError("the bot crashed")
        # mode "return": leave without closing the storage

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)


@pytest.mark.parametrize("mode", ["return", "raise", "sigint"])
def test_unclosed_storage_never_keeps_the_process_alive(url: str, mode: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, url, mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    acked: list[int] = []
    assert proc.stdout is not None
    if mode == "sigint":
        while len(acked) < 20:
            line = proc.stdout.readline()
            assert line, f"child ended early: {proc.stderr.read() if proc.stderr else ''}"
            acked.append(int(line))
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
    else:
        sent = time.monotonic()
    try:
        out, err = proc.communicate(timeout=60 if mode != "sigint" else 5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"child did not exit ({mode}) on {_adapter_of(url)}")
    if mode != "sigint":
        assert proc.returncode == (0 if mode == "return" else 1), err
    assert time.monotonic() - sent < 60
    assert "Exception ignored" not in err, err
    acked += [int(line) for line in out.split()]
    assert len(acked) >= 20
    if _adapter_of(url) in PERSISTENT:
        assert asyncio.run(_read_back(url, "child", [f"k{n}" for n in acked])) == {
            f"k{n}": n for n in acked
        }  # every acknowledged write is there


async def _read_back(url: str, namespace: str, keys: list[str]) -> dict[str, Any]:
    async with botstate.open_storage(url, namespace=namespace) as storage:
        return await storage.get_many(keys)


async def test_close_under_load_is_bounded_and_refuses_later_calls(url: str) -> None:
    storage = botstate.open_storage(url, namespace="load")
    acked: set[str] = set()
    refused = 0
    await storage.set("warm", 0)  # connect first

    async def writer(w: int) -> None:
        nonlocal refused
        n = 0
        while True:
            key = f"w{w}-{n}"
            try:
                await storage.set(key, n)
            except botstate.StorageUnavailable:
                refused += 1
                return
            acked.add(key)
            n += 1
            await asyncio.sleep(0)

    tasks = [asyncio.create_task(writer(w)) for w in range(20)]
    await asyncio.sleep(0.3)
    started = time.monotonic()
    await asyncio.wait_for(storage.close(), 10)
    took = time.monotonic() - started
    _, pending = await asyncio.wait(tasks, timeout=10)
    assert not pending, "writers kept getting through after close()"
    assert refused == 20  # every writer was refused once close() began
    assert took < 10
    with pytest.raises(botstate.StorageUnavailable):
        await storage.get("warm")
    if _adapter_of(url) in PERSISTENT:
        async with botstate.open_storage(url, namespace="load") as again:
            found = await again.get_many(sorted(acked))
        assert set(found) == acked  # in-flight acknowledged writes are durable


def test_one_storage_across_two_event_loops(url: str) -> None:
    """Scripts, PTB's run_polling and sync bridges run successive event loops."""
    storage = botstate.open_storage(url, namespace="loops")

    async def first() -> None:
        await storage.set("a", 1)
        assert await storage.get("a") == 1

    async def second() -> None:
        await storage.set("b", 2)
        assert await storage.get_many(["a", "b"]) == {"a": 1, "b": 2}
        assert await storage.update("a", lambda v: v + 1) == 2

    async def last() -> None:
        assert await storage.get("a") == 2
        await storage.close()

    asyncio.run(first())
    asyncio.run(second())
    asyncio.run(last())


def test_expiry_events_keep_coming_on_a_new_event_loop(tmp_path: Path) -> None:
    """SQLite's purge task followed the first loop and silently stopped with it."""
    from botstate_storage_sqlite import SqliteAdapter

    adapter = SqliteAdapter.from_url(f"sqlite:///{tmp_path}/ev.db", purge_interval=0.05)
    storage: botstate.Storage[Any] = botstate.Storage(adapter)
    seen: list[str] = []
    storage.on_expire(lambda key, value: seen.append(key))

    async def write(key: str) -> None:
        await storage.set(key, 1, ttl=0.05)

    async def wait_for(key: str) -> None:
        for _ in range(100):
            await storage.has("probe")  # any use on this loop
            if key in seen:
                return
            await asyncio.sleep(0.02)

    asyncio.run(write("one"))
    asyncio.run(wait_for("one"))
    asyncio.run(write("two"))
    asyncio.run(wait_for("two"))
    asyncio.run(storage.close())
    assert seen == ["one", "two"]


@pytest.mark.parametrize("autopipeline", ["true", "false"])
def test_redis_across_event_loops_in_both_modes(redis_server: Any, autopipeline: str) -> None:
    """Without the auto-pipeline, a second loop used to raise a raw 'Event loop is closed'."""
    url = f"{redis_server.url}?prefix=loops-{uuid.uuid4().hex[:8]}:&autopipeline={autopipeline}"
    storage = botstate.open_storage(url)

    async def step(n: int) -> None:
        await storage.set("n", n)
        assert await storage.get("n") == n
        assert await storage.update("n", lambda v: v + 1) == n + 1
        assert [k async for k in storage.keys()] == ["n"]

    for n in range(3):
        asyncio.run(step(n))
    asyncio.run(storage.close())


def test_redis_client_given_by_the_caller_refuses_a_second_loop_clearly(
    redis_server: Any,
) -> None:
    from redis.asyncio import Redis

    from botstate_storage_redis import RedisAdapter

    client = Redis.from_url(redis_server.url)
    storage: botstate.Storage[Any] = botstate.Storage(
        RedisAdapter(client=client, autopipeline=False)
    )
    asyncio.run(storage.set("k", 1))

    async def again() -> None:
        with pytest.raises(botstate.StorageUnavailable, match="another event loop"):
            await storage.get("k")

    asyncio.run(again())
