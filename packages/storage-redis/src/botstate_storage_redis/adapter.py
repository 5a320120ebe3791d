"""The Redis adapter: one string per entry, native PXAT expiry, Lua compare-and-set.

Key layout: entry ``key`` lives in the Redis string ``<prefix><key>`` whose
value is an 8-byte version header (big-endian, random per write) followed by
the stored bytes. ``get`` is one ``GET``, ``set`` one ``SET ... PXAT``;
``get_many`` (an ``MGET`` that checks the type of keys it finds missing),
``set_if`` and ``delete_if`` are Lua scripts (``EVALSHA``, falling back to
``EVAL`` when the script is not cached).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.connection import (
    BlockingConnectionPool,
    SSLConnection,
    UnixDomainSocketConnection,
)
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import (
    ConnectionError as RedisConnectionError,
)
from redis.exceptions import (
    NoScriptError,
    RedisClusterException,
    RedisError,
    ResponseError,
)
from redis.exceptions import (
    TimeoutError as RedisTimeoutError,
)

from botstate import BotstateError, Capability, ConfigError, StorageError, StorageUnavailable
from botstate.adapter import BaseAdapter, Version, coerce_options, redact_secrets

from .config import RedisOptions, Target, check_mode, parse_target
from .layout import (
    DELETE_IF,
    GET_MANY,
    GET_MANY_CHUNK,
    HEADER_BYTES,
    SET_IF,
    Script,
    escape_glob,
    header_of,
    new_header,
    pxat,
)
from .pipeline import AutoPipeline

__all__ = ["HEADER_BYTES", "RedisAdapter"]

SCAN_COUNT = 1000
_T = TypeVar("_T")
_DRIVER_ERRORS = (RedisError, RedisClusterException, OSError, asyncio.TimeoutError)
_UNAVAILABLE = (
    RedisConnectionError,
    RedisTimeoutError,
    RedisClusterException,
    OSError,
    asyncio.TimeoutError,
)
# Error replies that mean "the server cannot serve now", not "this request is wrong".
_UNAVAILABLE_REPLIES = ("LOADING", "CLUSTERDOWN", "TRYAGAIN", "MASTERDOWN", "READONLY", "BUSY ")


class RedisAdapter(BaseAdapter):
    """Entries in Redis or Redis Cluster, shared by every process that uses the server.

    >>> adapter = RedisAdapter("redis://:secret@127.0.0.1:6379/0", prefix="bot:")
    >>> adapter = RedisAdapter(client=my_redis_client)        # not closed by us

    Options (query string or keyword, defaults in :class:`RedisOptions`):
    ``prefix`` (prepended to every key inside Redis, separate from the Storage
    namespace), ``socket_timeout`` and ``socket_connect_timeout`` (seconds; every
    call fails with ``StorageUnavailable`` within them when the server is gone),
    ``autopipeline`` (standalone only, on by default: every command goes over one
    connection and concurrent ones share round trips; ``autopipeline=true`` for a
    cluster is a ``ConfigError``), ``max_connections`` (the pool of
    ``autopipeline=false`` and of :attr:`client`; in a cluster, the most commands
    in flight at once across all nodes), ``health_check_interval`` (PING a
    connection idle longer than this before its next command, in every mode),
    ``client_name``, ``db``, ``username``, ``password``, ``ssl_ca_certs``,
    ``ssl_cert_reqs``, ``ssl_check_hostname`` (``rediss://`` only: a
    ``ConfigError`` elsewhere).

    Nothing connects until the first command; a lost connection is re-opened
    by the next command, so the same adapter works again once the server is back.
    After :meth:`close` every operation raises ``StorageUnavailable``.
    """

    capabilities = frozenset(
        {
            Capability.BATCH,
            Capability.SCAN,
            Capability.ATOMIC,
            Capability.PERSISTENT,
            Capability.SHARED,
        }
    )

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Redis | RedisCluster | None = None,
        close_client: bool | None = None,
        **options: Any,
    ) -> None:
        super().__init__()
        self._secrets: tuple[str, ...] = ()
        if client is not None:
            if url is not None:
                raise ConfigError("pass either a redis URL or an existing client, not both")
            if not isinstance(client, (Redis, RedisCluster)):
                raise ConfigError(
                    "client must be a redis.asyncio.Redis or RedisCluster, "
                    f"not {type(client).__name__}"
                )
            self._cluster = isinstance(client, RedisCluster)
            self.options = _options_for_client(options, cluster=self._cluster)
            self._client = client
            self._target: Target | None = None
            self._owns_client = bool(close_client)
            if _decodes_responses(client):
                raise ConfigError("the redis client must be created with decode_responses=False")
            self._where = "an existing client"
        else:
            target, self.options = parse_target(url, options)
            self._target = target
            self._secrets = (target.password,) if target.password else ()
            self.hide_in_logs(self._secrets)
            self._client = _make_client(target, self.options)
            self._owns_client = True if close_client is None else close_client
            self._cluster = target.kind == "cluster"
            self._where = target.shown
        self._pipeline: AutoPipeline | None = None
        if self.options.autopipeline and not self._cluster:
            assert isinstance(self._client, Redis)
            self._pipeline = AutoPipeline(self._client.connection_pool)
        self._pexpiretime: bool | None = None  # unknown until first get_expiry
        # redis-py's cluster client fails at once when a node's pool is exhausted;
        # make callers wait instead, as the standalone pool does. One semaphore for
        # the whole cluster: at most max_connections commands in flight over all
        # nodes, so no node's pool (of the same size) can run out.
        self._limit = asyncio.Semaphore(self.options.max_connections) if self._cluster else None
        # redis-py's cluster client can break connections when many commands race
        # through its lazy first initialize(); we run it once, alone, first.
        self._init_lock = asyncio.Lock()
        self._cluster_ready = False
        self._loop: asyncio.AbstractEventLoop | None = None  # the event loop in use

    @classmethod
    def from_url(cls, url: str | None = None, **options: Any) -> RedisAdapter:
        """The registered factory: ``RedisAdapter.from_url("redis://host:6379/0?prefix=bot:")``."""
        return cls(url, **options)

    @property
    def prefix(self) -> str:
        """The ``prefix`` option: prepended to every key inside Redis."""
        return self.options.prefix

    @property
    def cluster(self) -> bool:
        """Whether this adapter talks to a Redis Cluster."""
        return self._cluster

    @property
    def client(self) -> Redis | RedisCluster:
        """The underlying redis-py client (for commands botstate does not wrap)."""
        return self._client

    @property
    def pipeline_stats(self) -> dict[str, int]:
        """``{"round_trips": n, "commands": m}`` sent by the auto-pipeline (zeros when off)."""
        lane = self._pipeline
        return {
            "round_trips": lane.round_trips if lane else 0,
            "commands": lane.commands if lane else 0,
        }

    # -- plumbing -----------------------------------------------------------
    def _error(self, err: BaseException) -> BotstateError:
        text = redact_secrets(f"{type(err).__name__}: {err}", secrets=self._secrets)
        if isinstance(err, _UNAVAILABLE) or (
            isinstance(err, ResponseError) and str(err).startswith(_UNAVAILABLE_REPLIES)
        ):
            return StorageUnavailable(f"redis at {self._where} is unavailable: {text}")
        return StorageError(f"redis at {self._where} failed: {text}")

    def _ready(self) -> None:
        """Refuse work once closed; follow a new event loop with a new client.

        redis-py's connections belong to the event loop they were made on. A
        storage used from a second loop (a second ``asyncio.run()``, a sync
        bridge) gets a fresh client built from the same URL; the old one's
        connections died with their loop. A client given with ``client=``
        cannot be rebuilt: using it from another loop is refused clearly.
        """
        self.check_open()
        loop = asyncio.get_running_loop()
        if loop is self._loop:
            return
        first, self._loop = self._loop is None, loop
        if first:
            return
        if self._target is None:
            raise StorageUnavailable(
                "the redis client given with client= belongs to the event loop it was first "
                "used on; open the storage from a URL to use it from another event loop"
            )
        self._client = _make_client(self._target, self.options)
        if self._pipeline is not None:
            assert isinstance(self._client, Redis)
            self._pipeline = AutoPipeline(self._client.connection_pool)
        self._init_lock = asyncio.Lock()
        self._cluster_ready = False
        if self._limit is not None:
            self._limit = asyncio.Semaphore(self.options.max_connections)

    async def _raw(self, *args: Any) -> Any:
        """One command; driver errors are left to the caller (see :meth:`_run`).

        Replies are raw on the auto-pipeline, parsed by redis-py otherwise.
        """
        self._ready()
        task = asyncio.current_task()
        pending = _cancel_requests(task)
        if self._pipeline is not None:
            reply = await self._pipeline.execute(args)
        elif self._cluster:
            reply = await self._in_cluster(lambda cluster: cluster.execute_command(*args))
        else:
            reply = await self._client.execute_command(*args)
        if _cancel_requests(task) > pending:
            # redis-py can swallow a cancellation that lands while it sends a command,
            # and the caller would go on as if never cancelled (a bot ignoring Ctrl-C).
            raise asyncio.CancelledError
        return reply

    async def _run(self, *args: Any) -> Any:
        """One command, driver errors wrapped into botstate errors."""
        try:
            return await self._raw(*args)
        except _DRIVER_ERRORS as err:
            raise self._error(err) from err

    async def _in_cluster(self, call: Callable[[RedisCluster], Awaitable[_T]]) -> _T:
        """``call(cluster client)`` once it is initialized, within ``max_connections``."""
        self._ready()
        cluster = self._client
        assert isinstance(cluster, RedisCluster) and self._limit is not None
        if not self._cluster_ready:
            async with self._init_lock:
                if not self._cluster_ready:
                    await cluster.initialize()
                    self._cluster_ready = True
        async with self._limit:
            return await call(cluster)

    async def _run_many(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Several commands in one non-transactional pipeline (split per node in a cluster).

        The first error reply is raised (wrapped), like any driver error.
        """
        self._ready()
        task = asyncio.current_task()
        pending = _cancel_requests(task)
        try:
            if self._pipeline is not None:
                replies = await self._pipeline.execute_many(commands)
                for reply in replies:
                    if isinstance(reply, ResponseError):
                        raise reply
            elif self._cluster:

                async def in_cluster(cluster: RedisCluster) -> list[Any]:
                    pipe = cluster.pipeline()
                    for command in commands:
                        pipe.execute_command(*command)
                    return list(await pipe.execute())

                replies = await self._in_cluster(in_cluster)
            else:
                pipe = self._client.pipeline(transaction=False)
                for command in commands:
                    pipe.execute_command(*command)
                replies = list(await pipe.execute())
        except _DRIVER_ERRORS as err:
            raise self._error(err) from err
        if _cancel_requests(task) > pending:
            raise asyncio.CancelledError  # swallowed by redis-py: see _raw
        return replies

    async def _eval(self, script: Script, keys: Sequence[str], *args: Any) -> Any:
        try:
            try:
                return await self._raw("EVALSHA", script.sha, len(keys), *keys, *args)
            except NoScriptError:
                return await self._raw("EVAL", script.text, len(keys), *keys, *args)
        except _DRIVER_ERRORS as err:
            raise self._error(err) from err

    def _value(self, key: str, raw: bytes) -> bytes:
        if len(raw) < HEADER_BYTES:
            raise StorageError(
                f"redis key {self.prefix + key!r} holds a value not written by botstate"
            )
        return raw[HEADER_BYTES:]

    def _set_command(self, key: str, value: bytes, expires_at: float | None) -> tuple[Any, ...]:
        data = new_header() + value
        if expires_at is None:
            return ("SET", self.prefix + key, data)
        return ("SET", self.prefix + key, data, "PXAT", pxat(expires_at))

    # -- the contract -----------------------------------------------------
    async def get(self, key: str) -> bytes | None:
        raw = await self._run("GET", self.prefix + key)
        return None if raw is None else self._value(key, raw)

    async def has(self, key: str) -> bool:
        return bool(await self._run("EXISTS", self.prefix + key))

    async def set(self, key: str, value: bytes, *, expires_at: float | None = None) -> None:
        await self._run(*self._set_command(key, value, expires_at))

    async def delete(self, key: str) -> bool:
        return bool(await self._run("DEL", self.prefix + key))

    async def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        """Found entries only; a key holding another Redis type raises ``StorageError``.

        Standalone: one Lua call per 1000 keys (MGET, then ``TYPE`` of the keys
        it found missing), sent together. Cluster: a pipeline of ``GET``s.
        """
        if not keys:
            return {}
        prefix = self.prefix
        full = [prefix + key for key in keys] if prefix else list(keys)
        if self._cluster:
            raws = await self._run_many([("GET", name) for name in full])
        elif len(full) <= GET_MANY_CHUNK:
            raws = await self._eval(GET_MANY, full)
        else:
            chunks = [full[i : i + GET_MANY_CHUNK] for i in range(0, len(full), GET_MANY_CHUNK)]
            parts = await asyncio.gather(*(self._eval(GET_MANY, chunk) for chunk in chunks))
            raws = [raw for part in parts for raw in part]
        return {
            key: self._value(key, raw)
            for key, raw in zip(keys, raws, strict=True)
            if raw is not None
        }

    async def set_many(
        self, items: Mapping[str, bytes], *, expires_at: float | None = None
    ) -> None:
        if items:
            await self._run_many([self._set_command(k, v, expires_at) for k, v in items.items()])

    async def delete_many(self, keys: Sequence[str]) -> int:
        full = list(dict.fromkeys(self.prefix + key for key in keys))
        if not full:
            return 0
        if self._cluster:  # redis-py splits the DEL by hash slot
            try:
                return int(await self._in_cluster(lambda cluster: cluster.delete(*full)))
            except _DRIVER_ERRORS as err:
                raise self._error(err) from err
        return int(await self._run("DEL", *full))

    async def scan(self, prefix: str = "") -> AsyncIterator[str]:
        """Yield live keys starting with ``prefix`` (SCAN MATCH, every master in a cluster).

        SCAN may report a key twice; each key is yielded once. Keys written or
        deleted during the scan may or may not be reported. On a standalone
        server the SCAN pages go out like every other command (over the
        auto-pipeline when it is on).
        """
        pattern = escape_glob(self.prefix + prefix) + "*"
        cut = len(self.prefix)
        seen: set[bytes] = set()
        self._ready()
        try:
            if self._cluster:
                await self._in_cluster(_nothing)  # initialize the cluster client first
                found = self._client.scan_iter(match=pattern, count=SCAN_COUNT)
            else:
                found = self._scan_pages(pattern)
            async for raw in found:
                self.check_open()
                if raw in seen:
                    continue
                seen.add(raw)
                yield raw.decode("utf-8", "surrogateescape")[cut:]
        except _DRIVER_ERRORS as err:
            raise self._error(err) from err

    async def _scan_pages(self, pattern: str) -> AsyncIterator[bytes]:
        """``SCAN`` to the end on a standalone server; driver errors are left to the caller."""
        cursor: Any = 0
        while True:
            # Raw reply [b"cursor", keys] on the auto-pipeline, (int, keys) through redis-py.
            cursor, keys = await self._raw("SCAN", cursor, "MATCH", pattern, "COUNT", SCAN_COUNT)
            for key in keys:
                yield key
            if int(cursor) == 0:
                return

    async def get_expiry(self, key: str) -> float | None:
        if self._pexpiretime is not False:
            try:
                ms = int(await self._raw("PEXPIRETIME", self.prefix + key))
                self._pexpiretime = True
                return None if ms < 0 else ms / 1000
            except ResponseError as err:
                if self._pexpiretime or "unknown command" not in str(err).lower():
                    raise self._error(err) from err
                self._pexpiretime = False  # Redis < 7
            except _DRIVER_ERRORS as err:
                raise self._error(err) from err
        now = time.time()
        ms = int(await self._run("PTTL", self.prefix + key))
        return None if ms < 0 else now + ms / 1000

    async def get_versioned(self, key: str) -> tuple[bytes, Version] | None:
        raw = await self._run("GET", self.prefix + key)
        if raw is None:
            return None
        value = self._value(key, raw)
        return value, int.from_bytes(raw[:HEADER_BYTES], "big")

    async def set_if(
        self,
        key: str,
        value: bytes,
        *,
        version: Version | None,
        expires_at: float | None = None,
    ) -> Version | None:
        if version is None:
            expected = b""
        else:
            header = header_of(version)
            if header is None:
                return None  # not a version this adapter hands out: it cannot match
            expected = header
        at = b"" if expires_at is None else pxat(expires_at)
        # The new header is chosen here, so the new version is known without a read.
        fresh = new_header()
        result = await self._eval(SET_IF, [self.prefix + key], expected, fresh + value, at)
        return int.from_bytes(fresh, "big") if result else None

    async def delete_if(self, key: str, *, version: Version) -> bool:
        header = header_of(version)
        if header is None:
            return False
        return bool(await self._eval(DELETE_IF, [self.prefix + key], header))

    async def close(self) -> None:
        """Close our connections (and the client, if this adapter owns it).

        Afterwards every operation raises ``StorageUnavailable``. Idempotent:
        closing again closes anything a command in flight during the first
        close may have re-opened.
        """
        self._closed = True  # before any await: no command starts from now on
        # Connections made on an event loop that has ended died with it: nothing to close.
        same_loop = self._loop is None or self._loop is asyncio.get_running_loop()
        try:
            if self._pipeline is not None:
                await self._pipeline.aclose()
            if self._owns_client and same_loop:
                await self._client.aclose()
        except _DRIVER_ERRORS:
            pass  # closing a connection to a dead server must not fail
        finally:
            await super().close()

    def _repr_fields(self) -> Mapping[str, Any]:
        return {
            "url": self._where,
            "prefix": self.prefix,
            "cluster": self._cluster,
            "autopipeline": self._pipeline is not None,
        }


async def _nothing(cluster: RedisCluster) -> None:
    return None


def _options_for_client(options: dict[str, Any], *, cluster: bool) -> RedisOptions:
    allowed = {"prefix": str, "autopipeline": bool}
    given = coerce_options(options, allowed, adapter="redis (with client=)")
    check_mode(given, cluster=cluster)
    return RedisOptions(**given)


def _decodes_responses(client: Redis | RedisCluster) -> bool:
    if isinstance(client, RedisCluster):
        return bool(client.get_encoder().decode_responses)
    return bool(client.connection_pool.connection_kwargs.get("decode_responses", False))


def _make_client(target: Target, options: RedisOptions) -> Redis | RedisCluster:
    common: dict[str, Any] = {
        "username": target.username,
        "password": target.password,
        "socket_timeout": options.socket_timeout,
        "socket_connect_timeout": options.socket_connect_timeout,
        "health_check_interval": options.health_check_interval,
        "max_connections": options.max_connections,
        "client_name": options.client_name,
        "decode_responses": False,
        # RESP2 on every redis-py version (8.x defaults to RESP3): the same raw
        # replies everywhere, and no RESP3 maintenance notifications, which make
        # redis-py 8's pool skip its check for connections the server has closed.
        "protocol": 2,
        # No silent retries: a retried script could apply twice, and a caller
        # must learn within the timeout that the server is gone.
        "retry": Retry(NoBackoff(), 0),
    }
    if target.ssl:
        common.update(
            ssl=True,
            ssl_ca_certs=options.ssl_ca_certs,
            ssl_cert_reqs=options.ssl_cert_reqs,
            ssl_check_hostname=options.ssl_check_hostname,
        )
    if target.kind == "cluster":
        nodes = [ClusterNode(host, port) for host, port in target.hosts]
        return RedisCluster(startup_nodes=nodes, **common)
    # A blocking pool makes callers beyond max_connections wait (up to the
    # socket timeout) instead of failing at once.
    max_connections = common.pop("max_connections")
    if target.kind == "unix":
        common.update(connection_class=UnixDomainSocketConnection, path=target.path)
    else:
        host, port = target.hosts[0]
        common.update(host=host, port=port)
        if target.ssl:
            del common["ssl"]
            common["connection_class"] = SSLConnection
    pool = BlockingConnectionPool(
        max_connections=max_connections, timeout=options.socket_timeout, db=target.db, **common
    )
    return Redis.from_pool(pool)


def _cancel_requests(task: asyncio.Task[Any] | None) -> int:
    """Cancellations requested of ``task`` and not yet handled (0 where Python cannot tell)."""
    cancelling = getattr(task, "cancelling", None)  # Python 3.11+
    return cancelling() if cancelling is not None else 0
