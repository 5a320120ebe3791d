"""One adapter used from several event loops: each loop's connections are closed with it.

redis-py's connections belong to the loop they were made on. 0.2.0 made a new
client when the loop changed and dropped the old one unclosed: its sockets
stayed open on the server until garbage collection, which then warned
``unclosed Connection`` / ``unclosed transport`` (ResourceWarning). The server's
own ``CLIENT LIST`` tells whether a connection was really closed.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import pytest
import redis

from botstate_storage_redis import RedisAdapter

T = TypeVar("T")


def _name() -> str:
    return f"botstate-loops-{uuid.uuid4().hex[:8]}"


def _open_connections(ports: list[int], name: str) -> int:
    """Connections carrying client name ``name``, counted by the servers on ``ports``."""
    count = 0
    for port in ports:
        with redis.Redis(host="127.0.0.1", port=port) as client:
            count += sum(1 for c in client.client_list() if c.get("name") == name)
    return count


def _settled(ports: list[int], name: str, expected: int, within: float = 3.0) -> int:
    """The count once it equals ``expected`` (a server notices a close a moment later)."""
    deadline = time.monotonic() + within
    while True:
        count = _open_connections(ports, name)
        if count == expected or time.monotonic() > deadline:
            return count
        time.sleep(0.02)


@contextmanager
def _no_resource_warnings() -> Iterator[None]:
    """Fail if anything in the block (or garbage collected after it) warns of a leak."""
    gc.collect()  # earlier tests' garbage is not ours
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
        gc.collect()
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert leaks == []


def _use(adapter: RedisAdapter, ports: list[int], name: str) -> Callable[[int], None]:
    """One ``asyncio.run()`` that writes and reads through several connections at once."""

    async def work(n: int) -> None:
        items = {f"k{i}": b"%d" % n for i in range(30)}
        await asyncio.gather(*(adapter.set(key, value) for key, value in items.items()))
        assert await adapter.get_many(list(items)) == items
        assert await asyncio.to_thread(_open_connections, ports, name) >= 1

    return lambda n: asyncio.run(work(n))


@pytest.mark.parametrize("autopipeline", [True, False])
def test_connections_close_when_their_loop_ends(
    redis_server: Any, prefix: str, autopipeline: bool
) -> None:
    name = _name()
    ports = [redis_server.port]
    adapter = RedisAdapter(
        redis_server.url, prefix=prefix, client_name=name, autopipeline=autopipeline
    )
    run = _use(adapter, ports, name)
    with _no_resource_warnings():
        run(1)
        assert _settled(ports, name, 0) == 0  # closed on the server, storage still open
        run(2)
        assert _settled(ports, name, 0) == 0
        run(3)
        asyncio.run(adapter.close())
        assert _settled(ports, name, 0) == 0


def test_cluster_connections_close_when_their_loop_ends(redis_cluster: Any, prefix: str) -> None:
    name = _name()
    ports = list(redis_cluster.ports)
    adapter = RedisAdapter(redis_cluster.url, prefix=prefix, client_name=name)
    run = _use(adapter, ports, name)
    with _no_resource_warnings():
        run(1)
        assert _settled(ports, name, 0) == 0
        run(2)
        assert _settled(ports, name, 0) == 0
        asyncio.run(adapter.close())
        assert _settled(ports, name, 0) == 0


def test_closed_adapter_also_closes_what_its_loop_still_held(
    redis_server: Any, prefix: str
) -> None:
    # close() on the loop that ends anyway: nothing left for the loop's end to do twice.
    name = _name()
    ports = [redis_server.port]
    adapter = RedisAdapter(redis_server.url, prefix=prefix, client_name=name)

    async def once() -> None:
        await adapter.set("k", b"v")
        await adapter.close()
        assert await asyncio.to_thread(_settled, ports, name, 0) == 0

    with _no_resource_warnings():
        asyncio.run(once())


class _OtherLoop:
    """An event loop running in a thread of its own (as botstate.sync's is)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()


def test_two_live_loops_keep_one_client_each_and_close_closes_both(
    redis_server: Any, prefix: str
) -> None:
    name = _name()
    ports = [redis_server.port]
    adapter = RedisAdapter(redis_server.url, prefix=prefix, client_name=name)
    other = _OtherLoop()

    async def main() -> None:
        for i in range(5):  # alternating: no new client (connection) per switch
            await adapter.set("k", b"%d" % i)
            assert other.run(adapter.get("k")) == b"%d" % i
        assert await asyncio.to_thread(_open_connections, ports, name) == 2
        await adapter.close()  # closes the other loop's connection too, on that loop
        assert await asyncio.to_thread(_settled, ports, name, 0) == 0

    try:
        with _no_resource_warnings():
            asyncio.run(main())
    finally:
        other.stop()
