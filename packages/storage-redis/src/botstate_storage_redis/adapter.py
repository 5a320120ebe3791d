"""The Redis adapter: one string per entry, native PXAT expiry, Lua compare-and-set.

Key layout: entry ``key`` lives in the Redis string ``<prefix><key>`` whose
value is an 8-byte version header (big-endian, random per write) followed by
the stored bytes. ``get`` is one ``GET``, ``set`` one ``SET ... PXAT``,
``set_many`` without expiry one ``MSET``, ``get_many`` one ``MGET`` (plus an
``EXISTS`` when it finds keys missing, see :meth:`RedisAdapter.get_many`);
``set_if`` and ``delete_if`` are Lua scripts (``EVALSHA``, falling back to
``EVAL`` when the script is not cached).

Event loops: redis-py's connections belong to the loop they were made on, so
the adapter keeps one client per event loop it is used from (see
:class:`_Binding`) and closes that client's connections when its loop shuts
down (``asyncio.run()`` and ``asyncio.Runner`` end with
``loop.shutdown_asyncgens()``, which closes a guard async generator started on
that loop).

``botstate.sync`` calls the plain operations through blocking twins
(:meth:`RedisAdapter.blocking`, :mod:`.blocking`), a synchronous redis-py
client of their own; multi-step operations are plans shared by both (:mod:`.plans`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar, cast

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.connection import (
    BlockingConnectionPool,
    ConnectionPool,
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

from . import plans
from .blocking import BlockingRedis
from .config import RedisOptions, Target, check_mode, client_settings, parse_target, pool_settings
from .layout import (
    DELETE_IF,
    HEADER_BYTES,
    SET_IF,
    Script,
    escape_glob,
    header_of,
    new_header,
    pxat,
)
from .pipeline import AutoPipeline
from .plans import Eval

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
        self._pexpiretime: bool | None = None  # unknown until first get_expiry
        # One _Binding per event loop in use; the client made above serves the first.
        self._bindings: dict[asyncio.AbstractEventLoop, _Binding] = {}
        self._current: _Binding | None = None  # the binding used last (the fast path)
        self._unbound: Redis | RedisCluster | None = self._client
        # The blocking twins (standalone from a URL only); built now, connected on first use.
        self._blocking: BlockingRedis | None = None
        if self._target is not None and not self._cluster:
            self._blocking = BlockingRedis(self, self._target)

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
        """The underlying redis-py client (for commands botstate does not wrap).

        The client of the event loop the adapter was used on last (each loop
        gets its own client; see the module docstring).
        """
        current = self._current
        return current.client if current is not None else self._client

    def blocking(self) -> BlockingRedis | None:
        """Blocking twins of the plain operations, for ``botstate.sync`` (see :mod:`.blocking`).

        The same object every time, for a standalone server opened from a URL
        (it builds a synchronous redis-py client from the same settings on
        first use); ``None`` for a cluster and for a client given with
        ``client=`` (there is nothing to build a synchronous client from).
        """
        return self._blocking

    @property
    def pipeline_stats(self) -> dict[str, int]:
        """``{"round_trips": n, "commands": m}`` sent by the auto-pipeline (zeros when off).

        Counts of the auto-pipeline of the event loop used last.
        """
        lane = self._current.pipeline if self._current is not None else None
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

    def _binding(self) -> _Binding:
        """What the running event loop uses; refuse work once closed."""
        self.check_open()
        loop = asyncio.get_running_loop()
        current = self._current
        if current is not None and current.loop is loop:
            return current
        return self._bind(loop)

    def _bind(self, loop: asyncio.AbstractEventLoop) -> _Binding:
        """The binding of ``loop``, made on its first use there.

        redis-py's connections belong to the event loop they were made on. A
        storage used from a second loop (a second ``asyncio.run()``, a sync
        bridge) gets a fresh client built from the same URL, and keeps it for
        as long as that loop lives: alternating between two live loops reuses
        each loop's client. A client given with ``client=`` cannot be rebuilt:
        using it from another loop is refused clearly.
        """
        for ended in [old for old in self._bindings if old.is_closed()]:
            # Closed without shutdown_asyncgens(): nothing can close those sockets now.
            del self._bindings[ended]
        binding = self._bindings.get(loop)
        if binding is None:
            client, self._unbound = self._unbound, None
            if client is None:
                if self._target is None:
                    raise StorageUnavailable(
                        "the redis client given with client= belongs to the event loop it was "
                        "first used on; open the storage from a URL to use it from another "
                        "event loop"
                    )
                client = _make_client(self._target, self.options)
            pipelined = self.options.autopipeline and not self._cluster
            # Standalone, a client given with client= brings its own pool (and its limit).
            limited = self._cluster or (self._target is not None and not pipelined)
            binding = _Binding(
                loop,
                client,
                pipelined=pipelined,
                limit=self.options.max_connections if limited else None,
                wait=self.options.socket_timeout,
            )
            self._bindings[loop] = binding
            # The binding keeps its guard alive: the loop holds only a weak reference.
            binding.guard = self._guard(binding)
            _start(binding.guard)
        self._current = binding
        return binding

    async def _guard(self, binding: _Binding) -> AsyncGenerator[None, None]:
        """Close ``binding``'s connections when its event loop shuts down.

        Started (stepped to its ``yield``) on the binding's loop, so the loop's
        async-generator hooks track it: ``loop.shutdown_asyncgens()`` (the end
        of ``asyncio.run()``) closes it, and so does the loop if the generator
        is garbage-collected while the loop runs. A loop closed without
        ``shutdown_asyncgens()`` never runs the ``finally``: its sockets are lost.
        """
        try:
            yield
        finally:
            if self._bindings.get(binding.loop) is binding:
                del self._bindings[binding.loop]
            if self._current is binding:
                self._current = None
            with contextlib.suppress(*_DRIVER_ERRORS):
                await binding.aclose(owns_client=self._owns_client)

    async def _raw(self, *args: Any) -> Any:
        """One command; driver errors are left to the caller (see :meth:`_run`).

        Replies are raw on the auto-pipeline, parsed by redis-py otherwise.
        """
        binding = self._binding()
        task = asyncio.current_task()
        pending = _cancel_requests(task)
        if binding.pipeline is not None:
            reply = await binding.pipeline.execute(args)
        elif binding.limit is None:
            reply = await binding.client.execute_command(*args)
        elif self._cluster:
            reply = await self._in_cluster(lambda cluster: cluster.execute_command(*args))
        else:
            await binding.acquire()
            try:
                reply = await binding.client.execute_command(*args)
            finally:
                binding.limit.release()
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
        binding = self._binding()
        cluster = binding.client
        assert isinstance(cluster, RedisCluster) and binding.limit is not None
        if not binding.cluster_ready:
            async with binding.init_lock:
                if not binding.cluster_ready:
                    await cluster.initialize()
                    binding.cluster_ready = True
        await binding.acquire()
        try:
            return await call(cluster)
        finally:
            binding.limit.release()

    async def _run_many(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Several commands in one non-transactional pipeline (split per node in a cluster).

        The first error reply is raised (wrapped), like any driver error.
        """
        binding = self._binding()
        task = asyncio.current_task()
        pending = _cancel_requests(task)
        try:
            if binding.pipeline is not None:
                replies = await binding.pipeline.execute_many(commands)
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
                pipe = binding.client.pipeline(transaction=False)
                for command in commands:
                    pipe.execute_command(*command)
                if binding.limit is None:
                    replies = list(await pipe.execute())
                else:
                    await binding.acquire()
                    try:
                        replies = list(await pipe.execute())
                    finally:
                        binding.limit.release()
        except _DRIVER_ERRORS as err:
            raise self._error(err) from err
        if _cancel_requests(task) > pending:
            raise asyncio.CancelledError  # swallowed by redis-py: see _raw
        return replies

    async def _step(self, requests: list[plans.Request]) -> list[Any]:
        """The replies to one step of a plan (see :mod:`.plans`), driver errors wrapped.

        Several commands go as one pipeline; several scripts run concurrently.
        """
        first = requests[0]
        if len(requests) == 1:
            if isinstance(first, Eval):
                return [await self._eval(first.script, first.keys)]
            return [await self._run(*first)]
        if isinstance(first, Eval):
            return list(await asyncio.gather(*(self._eval(*request) for request in requests)))
        return await self._run_many(requests)

    async def _drive(self, plan: plans.Plan[_T]) -> _T:
        """Run ``plan`` to its result."""
        try:
            step = next(plan)
            while True:
                step = plan.send(await self._step(step))
        except StopIteration as done:
            return cast("_T", done.value)

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

    def _found(self, keys: Sequence[str], raws: Sequence[bytes | None]) -> dict[str, bytes]:
        """``get_many``'s result from the raw values of ``keys`` (nil: missing)."""
        found = {key: raw for key, raw in zip(keys, raws, strict=True) if raw is not None}
        if found and min(map(len, found.values())) < HEADER_BYTES:
            for key, raw in found.items():
                self._value(key, raw)  # raises for the value not written by botstate
        return {key: raw[HEADER_BYTES:] for key, raw in found.items()}

    def _lacks_pexpiretime(self, err: ResponseError) -> bool:
        """Whether ``err`` says the server has no ``PEXPIRETIME`` (Redis < 7); remembered.

        Only before ``PEXPIRETIME`` has worked once: afterwards every error is real.
        """
        if self._pexpiretime or "unknown command" not in str(err).lower():
            return False
        self._pexpiretime = False
        return True

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

        Standalone: the plan :func:`.plans.get_many` (its blocking twin runs the
        same one): the Lua script for fewer than ``MGET_FROM`` keys, one round
        trip; ``MGET`` from there on, plus an ``EXISTS`` when keys come back nil.
        Cluster: a pipeline of ``GET``s (``WRONGTYPE`` on another type).
        """
        if not keys:
            return {}
        prefix = self.prefix
        full = [prefix + key for key in keys] if prefix else list(keys)
        if self._cluster:
            raws = await self._run_many([("GET", name) for name in full])
        else:
            raws = await self._drive(plans.get_many(full))
        return self._found(keys, raws)

    async def set_many(
        self, items: Mapping[str, bytes], *, expires_at: float | None = None
    ) -> None:
        """Without expiry, one ``MSET`` per 1000 entries (each atomic); else one ``SET`` each.

        Every entry gets its own fresh version header. All commands leave in one
        round trip. Cluster: ``SET``s in redis-py's pipeline, split per node.
        """
        if not items:
            return
        if expires_at is not None or self._cluster:
            await self._run_many([self._set_command(k, v, expires_at) for k, v in items.items()])
        else:
            await self._step(plans.mset_commands(self.prefix, items))

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
        binding = self._binding()
        try:
            if self._cluster:
                await self._in_cluster(_nothing)  # initialize the cluster client first
                found = binding.client.scan_iter(match=pattern, count=SCAN_COUNT)
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
                if not self._lacks_pexpiretime(err):
                    raise self._error(err) from err
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
        if self._blocking is not None:
            self._blocking.close()  # closes sockets only: no I/O to wait for
        loop = asyncio.get_running_loop()
        try:
            for binding in list(self._bindings.values()):
                if binding.loop is loop:
                    await binding.aclose(owns_client=self._owns_client)
                elif binding.loop.is_running():
                    # In use by another thread's loop (a sync bridge): close it there,
                    # waiting a bounded time (that loop may be blocked waiting for us).
                    done = asyncio.run_coroutine_threadsafe(
                        binding.aclose(owns_client=self._owns_client), binding.loop
                    )
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(
                            asyncio.wrap_future(done), self.options.socket_timeout
                        )
                # A loop that is not running closes its binding when it shuts down
                # (the guard); one already closed took its connections with it.
            unbound, self._unbound = self._unbound, None
            if unbound is not None and self._owns_client:
                await unbound.aclose()  # never used: nothing connected, but close it as promised
        except _DRIVER_ERRORS:
            pass  # closing a connection to a dead server must not fail
        finally:
            await super().close()

    def _repr_fields(self) -> Mapping[str, Any]:
        return {
            "url": self._where,
            "prefix": self.prefix,
            "cluster": self._cluster,
            "autopipeline": self.options.autopipeline and not self._cluster,
        }


async def _nothing(cluster: RedisCluster) -> None:
    return None


class _Binding:
    """What one event loop owns: its client, auto-pipeline and concurrency limits.

    ``limit`` caps the commands in flight at once (cluster: over all nodes;
    standalone without auto-pipeline: the size of the client's pool, which is
    a plain, non-blocking one); callers beyond it wait up to ``wait`` seconds,
    then fail with redis-py's ``ConnectionError`` (``StorageUnavailable``).
    """

    __slots__ = (
        "client",
        "cluster_ready",
        "guard",
        "init_lock",
        "limit",
        "loop",
        "pipeline",
        "wait",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        client: Redis | RedisCluster,
        *,
        pipelined: bool,
        limit: int | None,
        wait: float,
    ) -> None:
        self.loop = loop
        self.client = client
        self.pipeline: AutoPipeline | None = None
        if pipelined:
            assert isinstance(client, Redis)
            self.pipeline = AutoPipeline(client.connection_pool)
        self.limit = asyncio.Semaphore(limit) if limit is not None else None
        self.wait = wait
        # redis-py's cluster client can break connections when many commands race
        # through its lazy first initialize(); we run it once, alone, first.
        self.init_lock = asyncio.Lock()
        self.cluster_ready = False
        self.guard: AsyncGenerator[None, None] | None = None

    async def acquire(self) -> None:
        """Take a place under ``limit`` (which must be set)."""
        limit = self.limit
        assert limit is not None
        if not limit.locked():
            await limit.acquire()  # free: returns without suspending
            return
        try:
            await asyncio.wait_for(limit.acquire(), self.wait)
        except asyncio.TimeoutError:
            raise RedisConnectionError("no connection became free in time") from None

    async def aclose(self, *, owns_client: bool) -> None:
        """Close the auto-pipeline's connection, and the client if the adapter owns it."""
        if self.pipeline is not None:
            await self.pipeline.aclose()
        if owns_client:
            await self.client.aclose()


def _start(guard: AsyncGenerator[None, None]) -> None:
    """Run ``guard`` to its first ``yield`` now, inside the running event loop.

    Its first step registers it with the loop's async-generator hooks (which is
    what lets ``shutdown_asyncgens()`` close it); it yields before awaiting
    anything, so one synchronous step reaches the ``yield``.
    """
    step = cast("Any", guard.asend(None))
    try:
        step.send(None)
    except StopIteration:
        return
    raise AssertionError("the guard awaited before its yield")  # pragma: no cover


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
    retry = Retry(NoBackoff(), 0)  # no silent retries: see client_settings
    if target.kind == "cluster":
        nodes = [ClusterNode(host, port) for host, port in target.hosts]
        settings = client_settings(target, options)
        if target.ssl:
            settings["ssl"] = True
        return RedisCluster(startup_nodes=nodes, retry=retry, **settings)
    settings = pool_settings(target, options, unix=UnixDomainSocketConnection, ssl=SSLConnection)
    pool: ConnectionPool
    if options.autopipeline:
        # Only adapter.client uses this pool: a blocking one makes its callers
        # beyond max_connections wait (up to the socket timeout), not fail at once.
        pool = BlockingConnectionPool(timeout=options.socket_timeout, retry=retry, **settings)
    else:
        # The adapter's commands wait for a place under the same cap themselves
        # (_Binding.limit), which costs less than the blocking pool's Condition
        # and timeout on every command.
        pool = ConnectionPool(retry=retry, **settings)
    return Redis.from_pool(pool)


def _cancel_requests(task: asyncio.Task[Any] | None) -> int:
    """Cancellations requested of ``task`` and not yet handled (0 where Python cannot tell)."""
    cancelling = getattr(task, "cancelling", None)  # Python 3.11+
    return cancelling() if cancelling is not None else 0
