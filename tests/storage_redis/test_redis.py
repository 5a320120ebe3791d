"""Redis-specific behaviour: URLs, options, secrets, layout, auto-pipelining, faults."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from redis.asyncio import Redis

import botstate
from botstate import ConfigError, InvalidURL, Storage, StorageError, StorageUnavailable
from botstate_storage_redis import HEADER_BYTES, RedisAdapter
from tooling.services import ServiceError, missing
from tooling.services.redis import RedisServer, start_redis

SECRET = "s3cr3t-pw"


def own_server(start: Callable[[], RedisServer]) -> RedisServer:
    """A server started for one test; skipped locally (failed under CI) if it cannot start.

    (tests/conftest.py's ``start_or_skip`` cannot be imported under importlib mode.)
    """
    try:
        return start()
    except (ServiceError, OSError) as err:
        missing(f"redis-server could not be started: {err}")


@pytest_asyncio.fixture
async def adapter(redis_server: Any, prefix: str) -> AsyncIterator[RedisAdapter]:
    adapter = RedisAdapter(redis_server.url, prefix=prefix)
    yield adapter
    await adapter.close()


# -- URLs and options -------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "cluster"),
    [
        ("redis://127.0.0.1:6379/0", False),
        ("redis://127.0.0.1", False),
        ("redis://user:pw@127.0.0.1:6379/3", False),
        ("rediss://:pw@example.invalid:6380/0?ssl_cert_reqs=none", False),
        ("unix:///tmp/redis.sock?db=2", False),
        ("redis+cluster://127.0.0.1:7000,127.0.0.1:7001", True),
    ],
)
def test_url_forms_open_without_io(url: str, cluster: bool) -> None:
    adapter = RedisAdapter.from_url(url)
    assert adapter.cluster is cluster


@pytest.mark.parametrize(
    ("url", "options"),
    [
        ("redis://127.0.0.1/0?bogus=1", {}),
        ("redis://127.0.0.1/0", {"nope": 1}),
        ("redis://127.0.0.1/0?socket_timeout=0", {}),
        ("redis://127.0.0.1/0?socket_timeout=soon", {}),
        ("redis://127.0.0.1/0", {"socket_connect_timeout": -1}),
        ("redis://127.0.0.1/0?max_connections=0", {}),
        ("redis://127.0.0.1/0?autopipeline=maybe", {}),
        ("redis://127.0.0.1/0?health_check_interval=-1", {}),
        ("redis://127.0.0.1/0?ssl_cert_reqs=sometimes", {}),
        ("redis://127.0.0.1:99999/0", {}),
        ("redis://127.0.0.1/zero", {}),
        ("redis://127.0.0.1:1,127.0.0.1:2/0", {}),
        ("redis+cluster://127.0.0.1:7000/1", {}),
        ("redis+cluster://", {}),
        ("unix://", {}),
        ("unix://host/path.sock", {}),
        ("memcached://127.0.0.1", {}),
    ],
)
def test_bad_urls_and_options_raise_config_error(url: str, options: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        RedisAdapter.from_url(url, **options)


@pytest.mark.parametrize(
    ("url", "options"),
    [
        ("redis://127.0.0.1/0?socket_timeout=inf", {}),
        ("redis://127.0.0.1/0?socket_timeout=nan", {}),
        ("redis://127.0.0.1/0", {"socket_timeout": float("inf")}),
        ("redis://127.0.0.1/0?socket_connect_timeout=inf", {}),
        ("redis://127.0.0.1/0", {"socket_connect_timeout": float("nan")}),
        ("redis://127.0.0.1/0?health_check_interval=inf", {}),
        ("redis://127.0.0.1/0", {"health_check_interval": float("nan")}),
        ("redis://127.0.0.1/0", {"socket_timeout": True}),
    ],
)
def test_timeouts_must_be_finite(url: str, options: dict[str, Any]) -> None:
    # An infinite timeout would let a call against a frozen server hang forever.
    with pytest.raises(ConfigError, match="finite"):
        RedisAdapter.from_url(url, **options)


def test_zero_health_check_interval_means_off() -> None:
    adapter = RedisAdapter.from_url("redis://127.0.0.1/0?health_check_interval=0")
    assert adapter.options.health_check_interval == 0


@pytest.mark.parametrize(
    ("url", "options"),
    [
        ("redis://127.0.0.1/0?ssl_ca_certs=/etc/ca.pem", {}),
        ("redis://127.0.0.1/0", {"ssl_cert_reqs": "required"}),
        ("redis://127.0.0.1/0?ssl_check_hostname=true", {}),
        ("unix:///tmp/redis.sock?ssl_cert_reqs=none", {}),
        ("redis+cluster://127.0.0.1:7000,127.0.0.1:7001?ssl_ca_certs=/etc/ca.pem", {}),
        ("redis+cluster://127.0.0.1:7000", {"ssl_check_hostname": False}),
    ],
)
def test_tls_options_without_rediss_are_refused(url: str, options: dict[str, Any]) -> None:
    # Asking for TLS settings on a plaintext URL must not silently connect in plaintext.
    with pytest.raises(ConfigError, match="rediss://"):
        RedisAdapter.from_url(url, **options)


def test_tls_options_with_rediss_are_kept() -> None:
    adapter = RedisAdapter.from_url(
        "rediss://127.0.0.1/0?ssl_ca_certs=/etc/ca.pem", ssl_check_hostname=False
    )
    assert adapter.options.ssl_ca_certs == "/etc/ca.pem"
    assert adapter.options.ssl_check_hostname is False


def test_options_from_query_and_keywords() -> None:
    adapter = RedisAdapter.from_url(
        "redis://127.0.0.1/0?socket_timeout=2.5&autopipeline=false&prefix=bot:", max_connections=7
    )
    assert adapter.options.socket_timeout == 2.5
    assert adapter.options.max_connections == 7
    assert adapter.prefix == "bot:"
    assert "autopipeline=False" in repr(adapter)


def test_password_never_shown() -> None:
    adapter = RedisAdapter.from_url(f"redis://ann:{SECRET}@127.0.0.1:6379/0")
    assert SECRET not in repr(adapter) and SECRET not in str(adapter)
    storage = botstate.open_storage(f"redis://ann:{SECRET}@127.0.0.1:6379/0?prefix=x")
    assert SECRET not in repr(storage)
    with pytest.raises(ConfigError) as info:
        RedisAdapter.from_url(f"redis://ann:{SECRET}@127.0.0.1:6379/0?bad=1")
    assert SECRET not in str(info.value)
    with pytest.raises(ConfigError) as info:
        RedisAdapter.from_url(f"redis://ann:{SECRET}@127.0.0.1:6379/x")
    assert SECRET not in str(info.value)


def test_registered_with_schemes_and_plugin_imports_no_driver() -> None:
    info = {a.name: a for a in botstate.list_adapters()}["redis"]
    assert set(info.schemes) == {"redis", "rediss", "unix", "redis+cluster"}
    code = (
        "import sys, botstate; botstate.list_adapters(); "
        "botstate.open_storage('redis://127.0.0.1:1/0') if False else None; "
        "print('redis' in sys.modules, 'botstate_storage_redis.adapter' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.asyncio
async def test_open_storage_by_url(redis_server: Any, prefix: str) -> None:
    storage = botstate.open_storage(redis_server.url + f"?prefix={prefix}", namespace="bot")
    try:
        await storage.set("user:1", {"name": "Ann"}, ttl=60)
        assert await storage.get("user:1") == {"name": "Ann"}
        assert [k async for k in storage.keys()] == ["user:1"]
    finally:
        await storage.close()


@pytest.mark.asyncio
async def test_password_auth_and_wrong_password(tmp_path: Path) -> None:
    server = own_server(RedisServer(tmp_path, extra_args=("--requirepass", SECRET)).start)
    try:
        good = RedisAdapter(f"redis://:{SECRET}@127.0.0.1:{server.port}/0")
        await good.set("k", b"v")
        assert await good.get("k") == b"v"
        await good.close()
        for url in (
            f"redis://:wrong-{SECRET}@127.0.0.1:{server.port}/0",
            f"redis://127.0.0.1:{server.port}/0",
        ):
            bad = RedisAdapter(url)
            with pytest.raises(StorageUnavailable) as info:
                await bad.get("k")
            assert SECRET not in str(info.value)
            await bad.close()
    finally:
        server.stop()


@pytest.mark.asyncio
async def test_unix_socket(tmp_path: Path) -> None:
    server = own_server(lambda: start_redis(tmp_path, unixsocket=True))
    try:
        assert server.unix_url is not None
        adapter = RedisAdapter(server.unix_url.replace("db=0", "db=3"))
        await adapter.set("k", b"over unix")
        assert await adapter.get("k") == b"over unix"
        probe = Redis(host="127.0.0.1", port=server.port, db=3)
        assert (await probe.get("k"))[HEADER_BYTES:] == b"over unix"
        await probe.aclose()
        await adapter.close()
    finally:
        server.stop()


@pytest.fixture
def tls_cert(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with the openssl CLI."""
    if shutil.which("openssl") is None:
        missing("openssl CLI needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    made = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        capture_output=True, check=False,
    )  # fmt: skip
    if made.returncode != 0:
        missing(f"openssl could not make a certificate: {made.stderr[-200:]!r}")
    return cert, key


@pytest.mark.asyncio
async def test_rediss_tls(tmp_path: Path, tls_cert: tuple[Path, Path]) -> None:
    cert, key = tls_cert
    server = RedisServer(tmp_path)
    server.extra_args = (
        "--port", "0", "--tls-port", str(server.port), "--tls-cert-file", str(cert),
        "--tls-key-file", str(key), "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no",
    )  # fmt: skip
    own_server(server.start)
    try:
        adapter = RedisAdapter(f"rediss://127.0.0.1:{server.port}/0?ssl_ca_certs={cert}")
        await adapter.set("k", b"over tls")
        assert await adapter.get("k") == b"over tls"
        await adapter.close()
        untrusted = RedisAdapter(f"rediss://127.0.0.1:{server.port}/0", socket_timeout=2)
        with pytest.raises(StorageUnavailable):
            await untrusted.get("k")  # self-signed cert not in the default trust store
        await untrusted.close()
        plain = RedisAdapter(f"redis://127.0.0.1:{server.port}/0", socket_timeout=1)
        with pytest.raises(StorageUnavailable):
            await plain.get("k")
        await plain.close()
    finally:
        server.stop()


# -- layout, expiry, scan -------------------------------------------------------
@pytest.mark.asyncio
async def test_key_layout(adapter: RedisAdapter, raw: Redis, prefix: str) -> None:
    await adapter.set("chat:1", b"hello")
    stored = await raw.get(prefix + "chat:1")
    assert stored is not None and len(stored) == HEADER_BYTES + 5 and stored.endswith(b"hello")
    got = await adapter.get_versioned("chat:1")
    assert got is not None and got[1] == int.from_bytes(stored[:HEADER_BYTES], "big")
    assert await raw.exists("chat:1") == 0  # the prefix is always applied


@pytest.mark.asyncio
async def test_foreign_values_are_errors_not_missing(
    adapter: RedisAdapter, raw: Redis, prefix: str
) -> None:
    await raw.set(prefix + "short", b"abc")
    await raw.hset(prefix + "hash", "f", "v")
    with pytest.raises(StorageError):
        await adapter.get("short")
    with pytest.raises(StorageError):
        await adapter.get("hash")
    with pytest.raises(StorageError):
        await adapter.get_many(["hash", "short"])


@pytest.mark.asyncio
@pytest.mark.parametrize("autopipeline", [True, False])
async def test_get_many_reports_foreign_types_like_get(
    redis_server: Any, raw: Redis, prefix: str, autopipeline: bool
) -> None:
    # MGET answers nil for a key of another type: that must not read as "missing".
    adapter = RedisAdapter(redis_server.url, prefix=prefix, autopipeline=autopipeline)
    try:
        await raw.hset(prefix + "hash", "f", "v")
        await raw.rpush(prefix + "list", "x")
        await adapter.set("ok", b"fine")
        for keys in (["hash"], ["ok", "hash", "missing"], ["missing", "list"]):
            with pytest.raises(StorageError) as info:
                await adapter.get_many(keys)
            assert not isinstance(info.value, StorageUnavailable)
        assert await adapter.get_many(["ok", "missing"]) == {"ok": b"fine"}
        # Enough keys for MGET (then EXISTS of the missing ones, then the script).
        forty = {f"f{i}": b"v" for i in range(40)}
        await adapter.set_many(forty)
        assert await adapter.get_many([*forty, "missing"]) == forty
        for keys in ([*forty, "hash"], ["missing", *forty, "list", "missing2"]):
            with pytest.raises(StorageError) as info:
                await adapter.get_many(keys)
            assert not isinstance(info.value, StorageUnavailable)
        # More keys than one script call takes, the foreign one in a later chunk.
        many = {f"m{i}": b"v" for i in range(2500)}
        await adapter.set_many(many)
        assert await adapter.get_many([*many, "missing"]) == many
        with pytest.raises(StorageError):
            await adapter.get_many([*many, "hash"])
    finally:
        await adapter.close()


async def _calls(raw: Redis, command: str) -> int:
    """How many times the server has run ``command`` (INFO commandstats)."""
    stats = await raw.info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


@pytest.mark.asyncio
@pytest.mark.parametrize("autopipeline", [True, False])
async def test_set_many_without_expiry_is_one_write_with_a_version_per_entry(
    redis_server: Any, raw: Redis, prefix: str, autopipeline: bool
) -> None:
    # One MSET per 1000 entries: each entry still gets its own fresh version,
    # a previous expiry is dropped (as SET does), and other entries are untouched.
    adapter = RedisAdapter(redis_server.url, prefix=prefix, autopipeline=autopipeline)
    try:
        await adapter.set("old", b"o", expires_at=time.time() + 60)
        await adapter.set("other", b"x")
        items = {f"k{i}": b"v%d" % i for i in range(2500)} | {"old": b"new"}
        before = await _calls(raw, "mset")
        await adapter.set_many(items)
        assert await _calls(raw, "mset") - before == 3
        assert await adapter.get_many([*items, "other"]) == items | {"other": b"x"}
        assert await adapter.get_expiry("old") is None
        versions = [await adapter.get_versioned(key) for key in ("k0", "k1", "k2499", "old")]
        assert len({found[1] for found in versions if found is not None}) == 4
        assert [len(raw_value) for raw_value in await raw.mget([prefix + "k0", prefix + "k9"])] == [
            HEADER_BYTES + 2
        ] * 2
    finally:
        await adapter.close()


@pytest.mark.asyncio
async def test_callers_beyond_max_connections_fail_within_the_timeout(tmp_path: Path) -> None:
    # Without the auto-pipeline, callers beyond max_connections wait for a free
    # connection; on a server that stopped answering they too must fail in time.
    await _gets_fail_in_time_while_paused(tmp_path, 10, autopipeline=False, max_connections=2)


@pytest.mark.asyncio
async def test_millisecond_expiry(adapter: RedisAdapter) -> None:
    at = time.time() + 0.3
    await adapter.set("k", b"v", expires_at=at)
    await adapter.set_many({"m": b"v"}, expires_at=at)
    expiry = await adapter.get_expiry("k")
    assert expiry is not None and abs(expiry - at) <= 0.002
    await asyncio.sleep(max(0.0, at - time.time()) - 0.1)
    assert await adapter.get("k") == b"v"
    await asyncio.sleep(max(0.0, at - time.time()) + 0.05)
    assert await adapter.get("k") is None
    assert await adapter.get_many(["k", "m"]) == {}


@pytest.mark.asyncio
async def test_stored_expiry_is_never_later_than_asked(adapter: RedisAdapter) -> None:
    # Expiries with a sub-millisecond part must not round up: a fresh ttl(300) that
    # reads 300.0004 breaks callers that check 0 < ttl <= 300.
    base = float(int(time.time()) + 60)
    for fraction in (0.0004, 0.0005, 0.0009, 0.9996):
        at = base + fraction
        await adapter.set("k", b"v", expires_at=at)
        await adapter.set_if("c", b"v", version=None, expires_at=at)
        await adapter.set_many({"m": b"v"}, expires_at=at)
        for key in ("k", "c", "m"):
            expiry = await adapter.get_expiry(key)
            assert expiry is not None and at - 0.001 < expiry <= at, (fraction, key, expiry)
        await adapter.delete_many(["c"])


@pytest.mark.asyncio
async def test_scan_many_keys_with_glob_characters(redis_server: Any, raw: Redis) -> None:
    prefix = f"g*?[x]\\{uuid.uuid4().hex[:6]}:"
    adapter = RedisAdapter(redis_server.url, prefix=prefix)
    try:
        mine = {f"u*{i}?[a]\\": b"1" for i in range(1500)}
        mine.update({f"v{i}": b"1" for i in range(1500)})
        await adapter.set_many(mine)
        # Lookalikes the patterns would match if glob characters were not escaped.
        await raw.set(prefix.replace("*", "Z") + "u*1?[a]\\", b"x" * 9)
        await raw.set(prefix + "uX1?[a]\\", b"x" * 9)
        found = [k async for k in adapter.scan("")]
        assert len(found) == len(set(found)) == 3001
        stars = [k async for k in adapter.scan("u*")]
        assert sorted(stars) == sorted(k for k in mine if k.startswith("u*"))
        assert [k async for k in adapter.scan("u*1?[a]\\")] == ["u*1?[a]\\"]
    finally:
        await adapter.close()


# -- auto-pipelining ----------------------------------------------------------
@pytest.mark.asyncio
async def test_concurrent_commands_share_round_trips(adapter: RedisAdapter, raw: Redis) -> None:
    await adapter.set_many({f"k{i}": str(i).encode() for i in range(200)})
    before = adapter.pipeline_stats
    clients_before = (await raw.info("clients"))["connected_clients"]
    results = await asyncio.gather(*(adapter.get(f"k{i}") for i in range(200)))
    assert results == [str(i).encode() for i in range(200)]
    after = adapter.pipeline_stats
    assert after["commands"] - before["commands"] == 200
    assert after["round_trips"] - before["round_trips"] <= 3  # one alone, then the rest together
    # All of it went over the adapter's single pipeline connection.
    assert (await raw.info("clients"))["connected_clients"] == clients_before


@pytest.mark.asyncio
async def test_one_failing_command_does_not_fail_its_batch(
    adapter: RedisAdapter, raw: Redis, prefix: str
) -> None:
    await raw.hset(prefix + "hash", "f", "v")
    await adapter.set("ok", b"fine")
    results = await asyncio.gather(
        *(adapter.get("hash" if i == 25 else "ok") for i in range(50)), return_exceptions=True
    )
    assert isinstance(results[25], StorageError)
    assert results[:25] + results[26:] == [b"fine"] * 49


@pytest.mark.asyncio
async def test_cancelled_callers_do_not_break_the_pipeline(adapter: RedisAdapter) -> None:
    await adapter.set("k", b"v")
    tasks = [asyncio.ensure_future(adapter.get("k")) for _ in range(100)]
    await asyncio.sleep(0)
    for task in tasks[::3]:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert await asyncio.gather(*(adapter.get("k") for _ in range(20))) == [b"v"] * 20


# -- an existing client -------------------------------------------------------------
@pytest.mark.asyncio
async def test_existing_client_is_not_closed_unless_told(redis_server: Any, prefix: str) -> None:
    client = Redis.from_url(redis_server.url)
    adapter = RedisAdapter(client=client, prefix=prefix)
    await adapter.set("k", b"v")
    assert await adapter.get("k") == b"v"
    await adapter.close()
    assert await client.ping() is True  # still usable
    owned = RedisAdapter(client=client, close_client=True, prefix=prefix)
    assert await owned.get("k") == b"v"
    await owned.close()
    await client.aclose()


def test_existing_client_checks() -> None:
    with pytest.raises(ConfigError):
        RedisAdapter(client=Redis(decode_responses=True))
    with pytest.raises(ConfigError):
        RedisAdapter("redis://127.0.0.1/0", client=Redis())
    with pytest.raises(ConfigError):
        RedisAdapter(client=Redis(), socket_timeout=1)  # configure the client instead
    with pytest.raises(ConfigError):
        RedisAdapter(client="redis://127.0.0.1")  # type: ignore[arg-type]


# -- close ---------------------------------------------------------------------------
async def _connections_named(raw: Redis, name: str) -> int:
    """Server-side connections with this client name (waits a little for them to go)."""
    for _ in range(50):
        count = sum(1 for c in await raw.client_list() if c.get("name") == name)
        if count == 0:
            return 0
        await asyncio.sleep(0.02)
    return count


async def _every_operation_fails_closed(adapter: RedisAdapter) -> None:
    calls = [
        adapter.get("k"),
        adapter.has("k"),
        adapter.set("k", b"v"),
        adapter.delete("k"),
        adapter.get_many(["k", "l"]),
        adapter.set_many({"k": b"v"}),
        adapter.delete_many(["k"]),
        adapter.get_expiry("k"),
        adapter.get_versioned("k"),
        adapter.set_if("k", b"v", version=None),
        adapter.delete_if("k", version=1),
        _drain(adapter.scan("")),
    ]
    for call in calls:
        with pytest.raises(StorageUnavailable, match="is closed"):
            await call


async def _drain(keys: AsyncIterator[str]) -> list[str]:
    return [key async for key in keys]


@pytest.mark.asyncio
@pytest.mark.parametrize("autopipeline", [True, False])
async def test_closed_adapter_refuses_work_and_keeps_no_connection(
    redis_server: Any, raw: Redis, prefix: str, autopipeline: bool
) -> None:
    name = f"botstate-close-{uuid.uuid4().hex[:8]}"
    adapter = RedisAdapter(
        redis_server.url, prefix=prefix, autopipeline=autopipeline, client_name=name
    )
    await adapter.set("k", b"v")
    assert await asyncio.gather(*(adapter.get("k") for _ in range(20))) == [b"v"] * 20
    assert await _connections_named(raw, name) > 0
    await adapter.close()
    assert await _connections_named(raw, name) == 0
    await _every_operation_fails_closed(adapter)
    assert await _connections_named(raw, name) == 0  # nothing silently reconnected
    await adapter.close()  # again: fine
    await _every_operation_fails_closed(adapter)
    assert await raw.exists(prefix + "k") == 1  # close removes nothing


@pytest.mark.asyncio
async def test_close_during_concurrent_commands(redis_server: Any, raw: Redis, prefix: str) -> None:
    name = f"botstate-close-{uuid.uuid4().hex[:8]}"
    adapter = RedisAdapter(redis_server.url, prefix=prefix, client_name=name)
    await adapter.set("k", b"v")
    tasks = [asyncio.ensure_future(adapter.get("k")) for _ in range(200)]
    await asyncio.sleep(0)
    await adapter.close()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    # Each caller gets its value or StorageUnavailable, never a stray cancellation.
    assert all(r == b"v" or isinstance(r, StorageUnavailable) for r in results), {
        type(r).__name__ for r in results
    }
    await _every_operation_fails_closed(adapter)
    assert await _connections_named(raw, name) == 0


@pytest.mark.asyncio
async def test_closed_adapter_over_existing_client(redis_server: Any, prefix: str) -> None:
    client = Redis.from_url(redis_server.url)
    try:
        adapter = RedisAdapter(client=client, prefix=prefix)
        await adapter.set("k", b"v")
        await adapter.close()
        await _every_operation_fails_closed(adapter)
        assert (await client.get(prefix + "k"))[HEADER_BYTES:] == b"v"  # client still usable
    finally:
        await client.aclose()


# -- cluster ------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_cluster_batches_span_every_node(redis_cluster: Any, prefix: str) -> None:
    adapter = RedisAdapter(redis_cluster.url, prefix=prefix)
    try:
        items = {f"k{i}": str(i).encode() for i in range(600)}
        await adapter.set_many(items)
        per_node = []
        for port in redis_cluster.ports:
            node = Redis(host="127.0.0.1", port=port)
            per_node.append(await node.dbsize())
            await node.aclose()
        assert all(n > 0 for n in per_node)  # the keys really are spread out
        assert await adapter.get_many([*items, "missing"]) == items
        assert sorted([k async for k in adapter.scan("k")]) == sorted(items)
        assert await adapter.delete_many(list(items)) == 600
        assert await adapter.get_many(list(items)) == {}
    finally:
        await adapter.close()


@pytest.mark.asyncio
async def test_cluster_get_many_foreign_type_and_close(redis_cluster: Any, prefix: str) -> None:
    adapter = RedisAdapter(redis_cluster.url, prefix=prefix)
    try:
        items = {f"k{i}": b"v" for i in range(50)}
        await adapter.set_many(items)
        cluster = adapter.client
        await cluster.hset(prefix + "hash", "f", "v")  # type: ignore[misc]
        with pytest.raises(StorageError) as info:
            await adapter.get_many([*items, "hash", "missing"])
        assert not isinstance(info.value, StorageUnavailable)
        assert await adapter.get_many([*items, "missing"]) == items
    finally:
        await adapter.close()
    await _every_operation_fails_closed(adapter)


# -- faults -------------------------------------------------------------------------
@pytest.mark.asyncio
@pytest.mark.parametrize("autopipeline", [True, False])
async def test_server_crash_and_restart(tmp_path: Path, autopipeline: bool) -> None:
    server = own_server(lambda: start_redis(tmp_path))
    timeout = 1.0
    storage: Storage[int] = Storage(
        RedisAdapter(
            server.url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            autopipeline=autopipeline,
        ),
        namespace="fault",
    )
    try:
        failures: list[float] = []

        async def writer(n: int) -> None:
            for i in range(10_000):
                started = time.monotonic()
                try:
                    await storage.set(f"w{n}", i)
                except StorageUnavailable:
                    failures.append(time.monotonic() - started)
                    return

        tasks = [asyncio.ensure_future(writer(n)) for n in range(10)]
        await asyncio.sleep(0.2)
        server.kill()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout + 2)
        assert len(failures) == 10 and max(failures) < timeout + 1
        started = time.monotonic()
        with pytest.raises(StorageUnavailable):
            await storage.get("w0")  # down: fails fast, never hangs
        assert time.monotonic() - started < timeout + 1

        server.start()  # same port
        await storage.set("after", 1)
        assert await storage.get("after") == 1
        assert await asyncio.gather(*(storage.get("after") for _ in range(20))) == [1] * 20
    finally:
        await storage.close()
        server.stop()


@pytest.mark.asyncio
@pytest.mark.parametrize("autopipeline", [True, False])
async def test_unresponsive_server_times_out(tmp_path: Path, autopipeline: bool) -> None:
    await _gets_fail_in_time_while_paused(tmp_path, 5, autopipeline=autopipeline)


async def _gets_fail_in_time_while_paused(tmp_path: Path, callers: int, **options: Any) -> None:
    """With the server paused, ``callers`` concurrent gets all fail with
    StorageUnavailable within a few socket timeouts; resumed, they all work again."""
    server = own_server(lambda: start_redis(tmp_path))
    timeout = 0.5
    adapter = RedisAdapter(
        server.url, socket_timeout=timeout, socket_connect_timeout=timeout, **options
    )
    try:
        await adapter.set("k", b"v")
        server.pause()
        started = time.monotonic()
        results = await asyncio.wait_for(
            asyncio.gather(*(adapter.get("k") for _ in range(callers)), return_exceptions=True),
            timeout * (callers + 1),
        )
        assert all(isinstance(r, StorageUnavailable) for r in results), results
        assert time.monotonic() - started < timeout * 4
        server.resume()
        await asyncio.sleep(0.05)
        assert await asyncio.gather(*(adapter.get("k") for _ in range(callers))) == [b"v"] * callers
    finally:
        server.resume()
        await adapter.close()
        server.stop()


def test_bad_url_raises_invalid_url_subclass() -> None:
    with pytest.raises(InvalidURL):
        RedisAdapter.from_url("redis://127.0.0.1:notaport/0")
