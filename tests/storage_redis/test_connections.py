"""How many connections the redis adapter opens, and when: counted by the server itself.

botstate 0.1.0 re-opened its auto-pipeline connection after every idle second
on redis-py < 8.1 (it called a method those versions lack and took the error
for a dead connection), and its pool options did not reach that connection.
These tests run on the lowest and the highest redis-py the package allows
(hatch envs ``redis-lowest`` / ``redis-highest``) as well as the default one.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from redis.asyncio import Redis, RedisCluster

import botstate
from botstate.errors import ConfigError
from botstate_storage_redis import RedisAdapter
from botstate_storage_redis.pipeline import CHECK_AFTER_IDLE
from tooling.services.redis import RedisServer

# Longer than 0.1.0's probe threshold (1 s) and than today's CHECK_AFTER_IDLE.
IDLE = 1.1


def _name() -> str:
    return f"botstate-conn-{uuid.uuid4().hex[:8]}"


async def _connection_ids(raw: Redis, name: str) -> set[int]:
    """Ids of the server's open connections that carry this client name."""
    return {int(c["id"]) for c in await raw.client_list() if c.get("name") == name}


async def _connections_received(raw: Redis) -> int:
    """Connections the server has accepted since it started (any client)."""
    return int((await raw.info("stats"))["total_connections_received"])


async def _pings(raw: Redis) -> int:
    stats = await raw.info("commandstats")
    return int(stats.get("cmdstat_ping", {}).get("calls", 0))


@pytest.mark.asyncio
@pytest.mark.parametrize("autopipeline", [True, False])
async def test_idle_connection_is_reused_not_reopened(
    redis_server: Any, raw: Redis, prefix: str, autopipeline: bool
) -> None:
    name = _name()
    adapter = RedisAdapter(
        redis_server.url, prefix=prefix, client_name=name, autopipeline=autopipeline
    )
    try:
        await adapter.set("k", b"v")
        ids = await _connection_ids(raw, name)
        received = await _connections_received(raw)
        assert len(ids) == 1
        await asyncio.sleep(IDLE)
        assert await adapter.get("k") == b"v"
        await adapter.set("k", b"w")
        assert await _connections_received(raw) == received  # nothing re-opened
        assert await _connection_ids(raw, name) == ids  # the very same connection
    finally:
        await adapter.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("autopipeline", [True, False])
async def test_server_restart_while_idle_costs_no_failed_command(
    own_redis: RedisServer, autopipeline: bool
) -> None:
    adapter = RedisAdapter(
        own_redis.url, autopipeline=autopipeline, socket_timeout=2, socket_connect_timeout=2
    )
    try:
        await adapter.set("k", b"before")
        used = time.monotonic()
        own_redis.stop()
        own_redis.start()  # same port, empty (no persistence)
        await asyncio.sleep(max(0.0, used + CHECK_AFTER_IDLE + 0.05 - time.monotonic()))
        assert await adapter.get("k") is None  # answered by the new server, no error
        await adapter.set("k", b"after")
        assert await adapter.get("k") == b"after"
    finally:
        await adapter.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("autopipeline", [True, False])
@pytest.mark.parametrize("interval", [0.0, 0.2])
async def test_health_check_interval_pings_idle_connections(
    redis_server: Any, raw: Redis, prefix: str, autopipeline: bool, interval: float
) -> None:
    # Honoured in both modes: a connection idle longer than the interval is
    # PINGed before its next command; 0 turns the check off.
    adapter = RedisAdapter(
        redis_server.url,
        prefix=prefix,
        autopipeline=autopipeline,
        health_check_interval=interval,
    )
    try:
        await adapter.set("k", b"v")
        before = await _pings(raw)
        assert await adapter.get("k") == b"v"  # just used: no check
        assert await _pings(raw) == before
        await asyncio.sleep(interval + 0.1)
        assert await adapter.get("k") == b"v"
        assert await _pings(raw) == before + (1 if interval else 0)
    finally:
        await adapter.close()


@pytest.mark.asyncio
async def test_autopipeline_uses_one_connection_for_everything(
    redis_server: Any, raw: Redis, prefix: str
) -> None:
    # SCAN included: the adapter's own commands never need a second connection,
    # so max_connections (the pool behind adapter.client) does not limit them.
    name = _name()
    adapter = RedisAdapter(redis_server.url, prefix=prefix, client_name=name, max_connections=1)
    try:
        items = {f"k{i}": str(i).encode() for i in range(300)}
        await adapter.set_many(items)
        received = await _connections_received(raw)

        async def keys() -> list[str]:
            return [key async for key in adapter.scan("k")]

        results = await asyncio.gather(
            keys(),
            *(adapter.get(key) for key in items),
            adapter.get_many(list(items)),
            keys(),
            adapter.set_if("new", b"x", version=None),
        )
        assert sorted(results[0]) == sorted(items) == sorted(results[-2])
        assert results[1:-3] == list(items.values())
        assert results[-3] == items
        assert await _connections_received(raw) == received
        assert len(await _connection_ids(raw, name)) == 1
    finally:
        await adapter.close()


@pytest.mark.asyncio
async def test_max_connections_caps_the_pool(redis_server: Any, raw: Redis, prefix: str) -> None:
    name = _name()
    adapter = RedisAdapter(
        redis_server.url, prefix=prefix, client_name=name, autopipeline=False, max_connections=3
    )
    try:
        await adapter.set("k", b"v")
        received = await _connections_received(raw)
        results = await asyncio.gather(*(adapter.get("k") for _ in range(100)))
        assert results == [b"v"] * 100  # callers beyond the cap waited, none failed
        assert await _connections_received(raw) - received <= 2
        assert 1 <= len(await _connection_ids(raw, name)) <= 3
    finally:
        await adapter.close()


def test_autopipeline_true_on_a_cluster_is_refused() -> None:
    # A cluster never auto-pipelines; asking for it explicitly must not pass silently.
    url = "redis+cluster://127.0.0.1:7000,127.0.0.1:7001"
    with pytest.raises(ConfigError, match="autopipeline"):
        RedisAdapter.from_url(url + "?autopipeline=true")
    with pytest.raises(ConfigError, match="autopipeline"):
        RedisAdapter.from_url(url, autopipeline=True)
    with pytest.raises(ConfigError, match="autopipeline"):
        RedisAdapter(client=RedisCluster(host="127.0.0.1", port=7000), autopipeline=True)
    assert RedisAdapter.from_url(url, autopipeline=False).cluster
    assert RedisAdapter(client=RedisCluster(host="127.0.0.1", port=7000)).cluster


@pytest.mark.asyncio
@pytest.mark.parametrize("autopipeline", [True, False])
async def test_command_cancelled_mid_connect_leaves_no_half_open_connection(
    own_redis: RedisServer, autopipeline: bool
) -> None:
    # A frozen server accepts the TCP connection but never answers the
    # handshake (CLIENT SETNAME, SELECT 3). A caller cancelled there must not
    # leave a connection whose handshake replies are read as the next command's.
    adapter = RedisAdapter(
        own_redis.url.replace("/0", "/3"), client_name=_name(), autopipeline=autopipeline
    )
    probe = Redis(host="127.0.0.1", port=own_redis.port, db=3)
    try:
        own_redis.pause()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(adapter.set("k", b"lost"), 0.3)
        own_redis.resume()
        await adapter.set("k", b"kept")
        assert await adapter.get("k") == b"kept"
        assert await adapter.get("missing") is None
        stored = await probe.get("k")
        assert stored is not None and stored.endswith(b"kept")  # in db 3, as asked
    finally:
        own_redis.resume()
        await probe.aclose()
        await adapter.close()


@pytest.mark.parametrize("name", ["my bot", "", "tab\there", "nl\n"])
def test_a_client_name_redis_refuses_is_a_config_error_at_open(name: str) -> None:
    """'redis://…?client_name=my bot' used to open fine and then fail every command."""
    with pytest.raises(ConfigError, match="client_name"):
        botstate.open_storage("redis://127.0.0.1:6379/0", client_name=name)


def test_a_database_given_twice_must_agree() -> None:
    with pytest.raises(ConfigError, match="give the database once"):
        botstate.open_storage("redis://127.0.0.1:6379/1", db=4)
    assert botstate.open_storage("redis://127.0.0.1:6379/1", db=1) is not None
    assert botstate.open_storage("redis://127.0.0.1:6379", db=4) is not None
