"""The Redis adapter's blocking twins (``RedisAdapter.blocking()``, used by ``botstate.sync``).

They run in the calling thread over redis-py's synchronous client: the same
results, errors and versions as the async operations, thread-safe, failing
within ``socket_timeout`` on a frozen server, releasing every socket on
``close()``. A cluster and a client given with ``client=`` have no twins and
keep working through the async path.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import redis
from redis.asyncio import Redis

from botstate import Storage, StorageError, StorageUnavailable
from botstate.sync import SyncStorage, open_storage
from botstate_storage_redis import HEADER_BYTES, RedisAdapter
from botstate_storage_redis.blocking import BlockingRedis
from tooling.services import ServiceError, missing
from tooling.services.redis import RedisServer

THREADS, PER_THREAD = 8, 500


def own_server(start: Callable[[], RedisServer]) -> RedisServer:
    try:
        return start()
    except (ServiceError, OSError) as err:
        missing(f"redis-server could not be started: {err}")


def twins_of(adapter: RedisAdapter) -> BlockingRedis:
    twins = adapter.blocking()
    assert twins is not None
    return twins


@pytest_asyncio.fixture(params=[True, False], ids=["autopipeline", "pool"])
async def adapter(
    request: pytest.FixtureRequest, redis_server: Any, prefix: str
) -> AsyncIterator[RedisAdapter]:
    adapter = RedisAdapter(redis_server.url, prefix=prefix, autopipeline=request.param)
    yield adapter
    await adapter.close()


def run_in_threads(work: Callable[[int], None], threads: int = THREADS) -> None:
    """``work(i)`` on ``threads`` threads at once; the first error of any is raised here."""
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            work(i)
        except BaseException as err:  # re-raised below, in the test's thread
            errors.append(err)

    started = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for thread in started:
        thread.start()
    for thread in started:
        thread.join()
    if errors:
        raise errors[0]


def named_connections(url: str, name: str) -> int:
    """Server-side connections with this client name (waits a little for them to go)."""
    with redis.Redis.from_url(url) as raw:
        for _ in range(50):
            count = sum(1 for c in raw.client_list() if c.get("name") == name)
            if count == 0:
                return 0
            time.sleep(0.02)
    return count


# -- the twins do what the async operations do ---------------------------------------
@pytest.mark.asyncio
async def test_twins_and_async_operations_see_each_others_writes(adapter: RedisAdapter) -> None:
    twins = twins_of(adapter)
    assert adapter.blocking() is twins  # one object for the adapter's life

    await asyncio.to_thread(twins.set, "a", b"1")
    assert await adapter.get("a") == b"1"
    await adapter.set("b", b"2", expires_at=time.time() + 60)
    assert await asyncio.to_thread(twins.get, "b") == b"2"
    assert await asyncio.to_thread(twins.has, "b") is True
    assert await asyncio.to_thread(twins.get_expiry, "b") == await adapter.get_expiry("b")
    assert await asyncio.to_thread(twins.get_expiry, "a") is None
    assert await asyncio.to_thread(twins.get_expiry, "nothing") is None

    # A write by a twin changes the version like an async write.
    before = await adapter.get_versioned("a")
    await asyncio.to_thread(twins.set, "a", b"1")
    after = await adapter.get_versioned("a")
    assert before is not None and after is not None and before[1] != after[1]

    # An expiry in the past is never returned.
    await asyncio.to_thread(lambda: twins.set("old", b"x", expires_at=time.time() - 1))
    assert await asyncio.to_thread(twins.get, "old") is None
    assert await asyncio.to_thread(twins.has, "old") is False
    assert await adapter.get("old") is None

    assert await asyncio.to_thread(twins.delete, "a") is True
    assert await asyncio.to_thread(twins.delete, "a") is False
    assert await adapter.get("a") is None


@pytest.mark.asyncio
@pytest.mark.parametrize("count", [5, 40, 2500])  # the script; MGET; several MGET chunks
async def test_batches_match_the_async_ones(adapter: RedisAdapter, count: int) -> None:
    twins = twins_of(adapter)
    keys = [f"k{i}" for i in range(count)]
    written = {key: key.encode() for key in keys[::2]}
    await asyncio.to_thread(twins.set_many, written)
    asked = [*keys, "never"]
    assert await asyncio.to_thread(twins.get_many, asked) == written
    assert await adapter.get_many(asked) == written
    assert await asyncio.to_thread(twins.get_many, []) == {}

    later = time.time() + 60
    await asyncio.to_thread(lambda: twins.set_many({"x": b"1", "y": b"2"}, expires_at=later))
    assert await adapter.get_many(["x", "y"]) == {"x": b"1", "y": b"2"}
    expiry = await adapter.get_expiry("y")
    assert expiry is not None and later - 1 < expiry <= later
    await asyncio.to_thread(lambda: twins.set_many({"x": b"1"}, expires_at=time.time() - 1))
    assert await asyncio.to_thread(twins.get_many, ["x", "y"]) == {"y": b"2"}

    # Duplicates count once, missing keys not at all.
    deleting = [keys[0], keys[0], keys[1], keys[2], "never"]
    assert await asyncio.to_thread(twins.delete_many, deleting) == 2
    assert await asyncio.to_thread(twins.delete_many, []) == 0
    assert await adapter.get_many(keys[:3]) == {}


@pytest.mark.asyncio
@pytest.mark.parametrize("count", [3, 40])
async def test_foreign_values_are_errors_not_missing(
    adapter: RedisAdapter, raw: Redis, prefix: str, count: int
) -> None:
    twins = twins_of(adapter)
    await raw.set(prefix + "short", b"abc")  # shorter than the version header
    await raw.rpush(prefix + "list", b"x")
    keys = [f"k{i}" for i in range(count)]
    for key in ("short", "list"):
        with pytest.raises(StorageError):
            await asyncio.to_thread(twins.get, key)
        with pytest.raises(StorageError):
            await asyncio.to_thread(twins.get_many, [*keys, key])
    assert await asyncio.to_thread(twins.has, "list") is True


# -- threads ---------------------------------------------------------------------------
def test_threads_mixing_update_set_and_get_stay_exact(redis_server: Any) -> None:
    with open_storage(redis_server.url, namespace=f"sync-{uuid.uuid4().hex[:8]}") as storage:

        def work(n: int) -> None:
            for i in range(PER_THREAD):
                storage.update("counter", lambda value: (value or 0) + 1)
                storage.set(f"mine:{n}", {"i": i})
                assert storage.get(f"mine:{n}") == {"i": i}
                assert storage.has(f"mine:{n}")

        run_in_threads(work)
        assert storage.get("counter") == THREADS * PER_THREAD
        assert storage.get_many(f"mine:{n}" for n in range(THREADS)) == {
            f"mine:{n}": {"i": PER_THREAD - 1} for n in range(THREADS)
        }


def test_twins_from_many_threads_at_once(redis_server: Any, prefix: str) -> None:
    adapter = RedisAdapter(redis_server.url, prefix=prefix, max_connections=4)
    twins = twins_of(adapter)
    try:

        def work(n: int) -> None:
            for i in range(PER_THREAD):
                value = f"{n}:{i}".encode()
                twins.set(f"k{n}", value)
                assert twins.get(f"k{n}") == value
                if i % 50 == 0:
                    assert twins.get_many([f"k{n}", "missing"]) == {f"k{n}": value}

        # 8 threads over 4 connections: the others wait for one, none fails.
        run_in_threads(work)
        assert twins.get_many([f"k{n}" for n in range(THREADS)]) == {
            f"k{n}": f"{n}:{PER_THREAD - 1}".encode() for n in range(THREADS)
        }
    finally:
        asyncio.run(adapter.close())


# -- faults --------------------------------------------------------------------------
def test_paused_server_fails_within_the_timeout_and_works_after_resume(
    own_redis: RedisServer,
) -> None:
    timeout = 0.5
    options = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    with open_storage(own_redis.url, namespace="ns", **options) as storage:
        adapter = storage.storage.adapter
        assert isinstance(adapter, RedisAdapter)
        twins = twins_of(adapter)
        storage.set("k", 1)
        twins.set("raw", b"v")
        own_redis.pause()
        try:
            for call in (lambda: storage.get("k"), lambda: twins.get("raw")):
                started = time.monotonic()
                with pytest.raises(StorageUnavailable):
                    call()
                assert time.monotonic() - started < timeout * 3
        finally:
            own_redis.resume()
        assert storage.get("k") == 1
        assert twins.get("raw") == b"v"


def test_interrupted_call_leaves_no_half_read_connection(own_redis: RedisServer) -> None:
    # A KeyboardInterrupt while the reply is awaited: that connection must be dropped,
    # or its late reply would answer the next command.
    adapter = RedisAdapter(own_redis.url, socket_timeout=5)
    twins = twins_of(adapter)
    try:
        twins.set("a", b"1")
        twins.set("b", b"2")

        def interrupt(signum: int, frame: Any) -> None:
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGALRM, interrupt)
        own_redis.pause()
        try:
            signal.setitimer(signal.ITIMER_REAL, 0.2)
            with pytest.raises(KeyboardInterrupt):
                twins.get("a")
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
            own_redis.resume()
        assert twins.get("b") == b"2"
        assert twins.get_many(["a", "b"]) == {"a": b"1", "b": b"2"}
    finally:
        asyncio.run(adapter.close())


# -- close ---------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_close_releases_every_connection_and_refuses_later_calls(
    redis_server: Any, prefix: str
) -> None:
    name = f"botstate-blocking-{uuid.uuid4().hex[:8]}"
    adapter = RedisAdapter(redis_server.url, prefix=prefix, client_name=name)
    twins = twins_of(adapter)
    await adapter.set("k", b"v")

    def work(n: int) -> None:
        for _ in range(50):
            assert twins.get("k") == b"v"

    await asyncio.to_thread(run_in_threads, work, 4)
    assert await asyncio.to_thread(named_connections, redis_server.url, name) > 1
    await adapter.close()
    assert await asyncio.to_thread(named_connections, redis_server.url, name) == 0
    calls: list[Callable[[], object]] = [
        lambda: twins.get("k"),
        lambda: twins.has("k"),
        lambda: twins.set("k", b"w"),
        lambda: twins.delete("k"),
        lambda: twins.get_expiry("k"),
        lambda: twins.get_many(["k", "l"]),
        lambda: twins.set_many({"k": b"w"}),
        lambda: twins.set_many({"k": b"w"}, expires_at=time.time() + 9),
        lambda: twins.delete_many(["k"]),
    ]
    for call in calls:
        with pytest.raises(StorageUnavailable, match="is closed"):
            await asyncio.to_thread(call)
    assert await asyncio.to_thread(named_connections, redis_server.url, name) == 0
    with redis.Redis.from_url(redis_server.url) as raw:
        assert raw.exists(prefix + "k") == 1  # close removes nothing


def test_close_during_calls_from_threads(redis_server: Any, prefix: str) -> None:
    # Each call gets its value or StorageUnavailable; nothing stays connected.
    name = f"botstate-blocking-{uuid.uuid4().hex[:8]}"
    adapter = RedisAdapter(redis_server.url, prefix=prefix, client_name=name)
    twins = twins_of(adapter)
    twins.set("k", b"v")
    stop = threading.Event()
    outcomes: list[object] = []

    def work(n: int) -> None:
        while not stop.is_set():
            try:
                outcomes.append(twins.get("k"))
            except StorageUnavailable as err:
                outcomes.append(err)
                return

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.1)
    asyncio.run(adapter.close())
    stop.set()
    for thread in threads:
        thread.join()
    assert outcomes and all(o == b"v" or isinstance(o, StorageUnavailable) for o in outcomes)
    assert named_connections(redis_server.url, name) == 0


# -- no twins: the async path ---------------------------------------------------------
def test_client_given_with_client_has_no_twins_but_works_synchronously(
    redis_server: Any, prefix: str
) -> None:
    adapter = RedisAdapter(client=Redis.from_url(redis_server.url), prefix=prefix)
    assert adapter.blocking() is None
    storage = SyncStorage(Storage(adapter, namespace="ns"))
    try:
        storage.set("k", {"a": 1})
        assert storage.get("k") == {"a": 1}
        assert storage.update("n", lambda value: (value or 0) + 1) == 1
        assert storage.get_many(["k", "n", "x"]) == {"k": {"a": 1}, "n": 1}
    finally:
        storage.close()


def test_cluster_has_no_twins_but_works_synchronously(redis_cluster: Any) -> None:
    with open_storage(redis_cluster.url, namespace=f"sync-{uuid.uuid4().hex[:8]}") as storage:
        assert storage.storage.adapter.blocking() is None  # type: ignore[attr-defined]
        storage.set_many({f"k{i}": i for i in range(20)})
        assert storage.get_many(f"k{i}" for i in range(21)) == {f"k{i}": i for i in range(20)}
        assert storage.update("k0", lambda value: (value or 0) + 1) == 1


def test_twins_use_the_adapters_connection_settings(tmp_path: Path) -> None:
    # Unix socket, database 3, password and client name, as the async client has them.
    secret = "twin-s3cret"
    sock = tmp_path / "redis.sock"
    server = own_server(
        RedisServer(tmp_path, unixsocket=sock, extra_args=("--requirepass", secret)).start
    )
    name = f"botstate-twins-{uuid.uuid4().hex[:8]}"
    adapter = RedisAdapter(f"unix://{sock}?db=3", password=secret, client_name=name)
    wrong = RedisAdapter(f"unix://{sock}?db=3", password="not-" + secret)
    try:
        twins = twins_of(adapter)
        twins.set("k", b"over unix")
        assert asyncio.run(adapter.get("k")) == b"over unix"
        with redis.Redis(unix_socket_path=str(sock), db=3, password=secret) as probe:
            assert probe.get("k")[HEADER_BYTES:] == b"over unix"
            assert name in {c.get("name") for c in probe.client_list()}
        with pytest.raises(StorageUnavailable) as info:
            twins_of(wrong).get("k")
        assert secret not in str(info.value)
    finally:
        asyncio.run(adapter.close())
        asyncio.run(wrong.close())
        server.stop()
