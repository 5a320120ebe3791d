"""Layer 2: :class:`Storage`, the typed key-value API applications use."""

from __future__ import annotations

import builtins
import copy
import inspect
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeAlias, TypeVar, cast, overload

from .capabilities import Capability
from .clock import Clock, system_clock
from .codecs import Codec, for_type, type_name
from .contract import ExpiryEvent, StorageAdapter, Version
from .entry import Entry, require_capability
from .errors import (
    ConfigError,
    ConflictError,
    DecodeError,
    EncodeError,
    InvalidArgument,
    InvalidKey,
)
from .keys import NAMESPACE_SEPARATOR, validate_key, validate_namespace
from .leases import Lease
from .locks import KeyedLock, Lock
from .options import MAX_SECONDS, seconds
from .plugins import get_codec

if TYPE_CHECKING:
    import asyncio  # imported where used: `import botstate` loads no asyncio

__all__ = ["FOREVER", "LOCK_PREFIX", "TTL", "Storage"]

logger = logging.getLogger("botstate")

T = TypeVar("T")

FOREVER = math.inf
"""Pass as ``ttl`` to store without expiry even when the storage has a default TTL."""

TTL: TypeAlias = "float | timedelta | None"

LOCK_PREFIX = NAMESPACE_SEPARATOR + "lock" + NAMESPACE_SEPARATOR
"""Adapter keys of :meth:`Storage.lock` leases: ``":lock:" + <the locked entry's full key>``.

A namespace is never empty and has no ``":"``, so no namespaced key starts
with it; a storage without namespace refuses user keys that do, and hides
lease entries from ``keys()``, ``clear()`` and ``on_expire()``.
"""

_ABSENT = object()
_ATOMIC = Capability.ATOMIC  # an enum member looked up on its class costs ~100 ns
# What update()'s fn usually returns, known not to be awaitable: inspect.isawaitable
# ends in an ABC isinstance check that costs ~0.3 µs, a twentieth of an update in memory.
_NOT_AWAITABLE = frozenset({dict, list, str, int, float, bool, bytes, tuple, type(None)})


class Storage(Generic[T]):
    """Typed values under validated keys, on top of any :class:`StorageAdapter`.

    >>> storage = botstate.open_storage("memory://", namespace="mybot", ttl=3600)
    >>> await storage.set("user:1", {"name": "Ann"}, ttl=60)
    >>> await storage.get("user:1")
    {'name': 'Ann'}

    Keys are validated (:class:`~botstate.errors.InvalidKey`) and prefixed with
    ``namespace + ":"``; values go through ``codec`` (JSON by default). ``ttl``
    arguments are seconds (or ``timedelta``): ``None`` means the storage's
    default TTL and :data:`FOREVER` means no expiry.

    With ``type`` (a dataclass, pydantic model, msgspec Struct, TypedDict,
    enum, ``list[Cart]``, …) values are decoded into that type, and a value
    that does not fit raises :class:`~botstate.errors.DecodeError` naming the
    key and the field; the codec (``json`` or ``msgpack``) is the wire format.
    See :mod:`botstate.typed`.
    """

    @overload
    def __init__(
        self: Storage[T],
        adapter: StorageAdapter,
        *,
        type: builtins.type[T],
        namespace: str | None = None,
        ttl: TTL = None,
        codec: Codec[Any] | str = "json",
        clock: Clock = system_clock,
        max_retries: int = 100,
    ) -> None: ...

    @overload
    def __init__(
        self,
        adapter: StorageAdapter,
        *,
        namespace: str | None = None,
        ttl: TTL = None,
        codec: Codec[T] | str = "json",
        type: object = None,
        clock: Clock = system_clock,
        max_retries: int = 100,
    ) -> None: ...

    def __init__(
        self,
        adapter: StorageAdapter,
        *,
        namespace: str | None = None,
        ttl: TTL = None,
        codec: Codec[Any] | str = "json",
        type: Any = None,
        clock: Clock = system_clock,
        max_retries: int = 100,
    ) -> None:
        if isinstance(codec, str):
            codec = get_codec(codec)
        if type is not None:
            codec = for_type(codec, type)
        self.adapter = adapter
        self.codec: Codec[T] = codec
        # A typed codec (one offering for_type) says which type it decodes into.
        declared = getattr(codec, "type", None) if hasattr(codec, "for_type") else None
        self.type: Any = None if declared is Any else declared
        """The type values are decoded into, or ``None`` for plain decoded data."""
        self.namespace = validate_namespace(namespace)
        self.default_ttl = (
            None if ttl is None else seconds(ttl, "ttl", forever=True, error=ConfigError)
        )
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigError(f"max_retries must be an int >= 0, got {max_retries!r}")
        self.clock = clock
        self.max_retries = max_retries
        self._prefix = f"{self.namespace}{NAMESPACE_SEPARATOR}" if self.namespace else ""
        # Shared with the views of with_namespace(): same adapter, same keys.
        self._local_locks = KeyedLock()
        self._lock_tasks: set[asyncio.Task[Any]] = set()  # lease cleanups still running

    # -- helpers ----------------------------------------------------------
    def full_key(self, key: str) -> str:
        """The adapter-level key for ``key``: validated, with the namespace prefix."""
        if self._prefix:
            return self._prefix + validate_key(key)
        if validate_key(key).startswith(LOCK_PREFIX):
            raise InvalidKey(
                f"keys starting with {LOCK_PREFIX!r} are reserved for Storage.lock() in a "
                f"storage without namespace: {key[:40]!r}",
                key,
            )
        return key

    def expires_at(self, ttl: TTL = None) -> float | None:
        """The absolute expiry a write with ``ttl`` gets now (``None``: never)."""
        if ttl is None:
            duration = self.default_ttl
        elif type(ttl) is float and 0 < ttl <= MAX_SECONDS:
            duration = ttl  # already valid (e.g. a Sessions ttl): skip the full check
        else:
            duration = seconds(ttl, "ttl", forever=True)
        if duration is None or duration == math.inf:
            return None
        return self.clock() + duration

    def entry(self, key: str) -> Entry:
        """``key`` validated once, to read and write its stored bytes (see :class:`Entry`)."""
        return Entry(self, key)

    def encode(self, key: str, value: T) -> bytes:
        """Encode ``value`` with the codec; ``EncodeError`` names ``key``."""
        try:
            data = self.codec.encode(value)
        except Exception as err:
            raise EncodeError(
                f"cannot encode value for key {key!r} with codec {self.codec.name!r}: {err}", key
            ) from err
        if not isinstance(data, bytes):
            raise EncodeError(f"codec {self.codec.name!r} returned {type(data).__name__}", key)
        return data

    def decode(self, key: str, data: bytes) -> T:
        """Decode stored bytes with the codec; ``DecodeError`` names ``key``."""
        try:
            return self.codec.decode(data)
        except Exception as err:
            raise DecodeError(
                f"cannot decode value of key {key!r} with codec {self.codec.name!r}: {err}", key
            ) from err

    def _require(self, capability: Capability, what: str) -> None:
        require_capability(self.adapter, capability, what)

    # -- single keys ------------------------------------------------------
    async def get(self, key: str, default: T | None = None) -> T | None:
        """Return the value of ``key``, or ``default`` if it is absent or expired."""
        full = self.full_key(key)
        data = await self.adapter.get(full)
        return default if data is None else self.decode(key, data)

    async def has(self, key: str) -> bool:
        """Return ``True`` if ``key`` holds a live value."""
        return await self.adapter.has(self.full_key(key))

    async def set(self, key: str, value: T, *, ttl: TTL = None) -> None:
        """Store ``value`` under ``key``. Nothing is written if encoding fails."""
        full = self.full_key(key)
        data = self.encode(key, value)
        await self.adapter.set(full, data, expires_at=self.expires_at(ttl))

    async def delete(self, key: str) -> bool:
        """Delete ``key``; return ``True`` if it held a live value."""
        return await self.adapter.delete(self.full_key(key))

    async def ttl(self, key: str) -> float | None:
        """Remaining seconds before ``key`` expires.

        :data:`FOREVER` (``math.inf``) if it never expires, ``None`` if it is absent.
        """
        full = self.full_key(key)
        expires_at = await self.adapter.get_expiry(full)
        if expires_at is None:
            return FOREVER if await self.adapter.has(full) else None
        return max(0.0, expires_at - self.clock())

    # -- batches ----------------------------------------------------------
    async def get_many(self, keys: Iterable[str]) -> dict[str, T]:
        """Return ``{key: value}`` for the keys that hold live values."""
        wanted = {self.full_key(key): key for key in keys}
        if not wanted:
            return {}
        found = await self.adapter.get_many(list(wanted))
        return {wanted[full]: self.decode(wanted[full], data) for full, data in found.items()}

    async def set_many(self, items: Mapping[str, T], *, ttl: TTL = None) -> None:
        """Store every item with one expiry. Nothing is written if any value fails to encode."""
        encoded = {self.full_key(key): self.encode(key, value) for key, value in items.items()}
        if encoded:
            await self.adapter.set_many(encoded, expires_at=self.expires_at(ttl))

    async def delete_many(self, keys: Iterable[str]) -> int:
        """Delete ``keys``; return how many held live values."""
        fulls = list(dict.fromkeys(self.full_key(key) for key in keys))
        return await self.adapter.delete_many(fulls) if fulls else 0

    def keys(self, prefix: str = "") -> AsyncIterator[str]:
        """Yield the keys starting with ``prefix`` in this namespace (namespace stripped).

        ``async for key in storage.keys("user:")``. A bad ``prefix`` or an
        adapter without ``SCAN`` raises here, at the call, not at the first key.
        """
        self._require(Capability.SCAN, "keys()")
        if not isinstance(prefix, str):
            raise InvalidArgument(f"prefix must be str, not {type(prefix).__name__}")
        return self._keys(prefix)

    async def _keys(self, prefix: str) -> AsyncIterator[str]:
        cut = len(self._prefix)
        async for full in self.adapter.scan(self._prefix + prefix):
            if cut or not full.startswith(LOCK_PREFIX):
                yield full[cut:]

    async def clear(self) -> int:
        """Delete every key of this namespace (of the whole store if there is none).

        Held locks (:meth:`lock`) are left alone.
        """
        self._require(Capability.SCAN, "clear()")
        doomed = [
            full
            async for full in self.adapter.scan(self._prefix)
            if self._prefix or not full.startswith(LOCK_PREFIX)
        ]
        removed = 0
        for start in range(0, len(doomed), 500):
            removed += await self.adapter.delete_many(doomed[start : start + 500])
        return removed

    # -- atomic update ----------------------------------------------------
    async def update(
        self,
        key: str,
        fn: Callable[[T | None], T | None] | Callable[[T | None], Awaitable[T | None]],
        *,
        ttl: TTL = None,
    ) -> T | None:
        """Replace the value of ``key`` with ``fn(old)`` atomically; return the new value.

        ``fn`` receives ``None`` for an absent key and may be async. Returning
        ``None`` deletes the key. On ATOMIC adapters this is compare-and-set,
        retried when another writer got in between (``fn`` may then run more
        than once), raising :class:`ConflictError` after ``max_retries``. On
        other adapters it is atomic only among callers of this ``Storage``.

        >>> await storage.update("hits", lambda v: (v or 0) + 1)
        1
        """
        full = self.full_key(key)
        if _ATOMIC not in self.adapter.capabilities:
            async with self._local_locks.hold(full):
                data = await self.adapter.get(full)
                new: Any = fn(None if data is None else self.decode(key, data))
                if type(new) not in _NOT_AWAITABLE and inspect.isawaitable(new):
                    new = await new
                if new is None:
                    await self.adapter.delete(full)
                else:
                    await self.adapter.set(
                        full, self.encode(key, new), expires_at=self.expires_at(ttl)
                    )
                return cast("T | None", new)
        for attempt in range(self.max_retries + 1):
            current = await self.adapter.get_versioned(full)
            old = None if current is None else self.decode(key, current[0])
            new = fn(old)
            if type(new) not in _NOT_AWAITABLE and inspect.isawaitable(new):
                new = await new
            if new is None:
                if current is None or await self.adapter.delete_if(full, version=current[1]):
                    return None
            else:
                data = self.encode(key, new)
                version = None if current is None else current[1]
                written = await self.adapter.set_if(
                    full, data, version=version, expires_at=self.expires_at(ttl)
                )
                if written is not None:
                    return cast("T | None", new)
            # Lost the race: back off a little, with jitter, so writers spread out.
            import asyncio
            import random

            await asyncio.sleep(random.uniform(0, min(0.05, 0.001 * 2 ** min(attempt, 6))))
        raise ConflictError(f"update of key {key!r} lost to other writers {self.max_retries} times")

    # -- versions (compare-and-set) ---------------------------------------
    async def get_versioned(self, key: str) -> tuple[T, Version] | None:
        """Return ``(value, version)`` of ``key``, or ``None`` if absent. Needs ATOMIC.

        The version is an opaque token for :meth:`set_if`/:meth:`delete_if`:

        >>> got = await storage.get_versioned("cart:1")
        >>> if got is not None:
        ...     cart, version = got
        ...     await storage.set_if("cart:1", cart | {"paid": True}, version=version)
        """
        got = await self.entry(key).get_versioned()
        return None if got is None else (self.decode(key, got[0]), got[1])

    async def set_if(
        self, key: str, value: T, *, version: Version | None, ttl: TTL = None
    ) -> Version | None:
        """Store ``value`` only if ``key`` still has ``version`` (``None``: only if absent).

        Return the new version when it wrote (use it at once for the next
        ``set_if``/``delete_if``, no read needed), ``None`` when it did not.
        Exactly one of many concurrent writers holding one version wins.
        Nothing is written if encoding fails. Needs ATOMIC.
        """
        entry = self.entry(key)
        return await entry.set_if(self.encode(key, value), version=version, ttl=ttl)

    async def delete_if(self, key: str, *, version: Version) -> bool:
        """Delete ``key`` only if it still has ``version``; ``True`` if deleted. Needs ATOMIC."""
        return await self.entry(key).delete_if(version=version)

    # -- locks ------------------------------------------------------------
    def lock(
        self, key: str, *, ttl: float | timedelta = 30.0, timeout: float | timedelta = 60.0
    ) -> Lock:
        """One holder of ``key`` at a time; ``ConflictError`` if not got within ``timeout`` s.

        >>> async with storage.lock("chat:1"):
        ...     ...  # no other holder of "chat:1" runs now, in any process or host

        On ATOMIC adapters the lock is a lease in the store (a ``set_if``
        with expiry ``ttl`` under ``":lock:" + full key``, see
        :data:`LOCK_PREFIX`), renewed every ``ttl / 3`` seconds while held
        and released with ``delete_if``: one round trip each. It holds across
        processes and hosts; a crashed holder's lease runs out after ``ttl``.
        Waiters in this process queue on a per-key asyncio lock first (shared
        by the ``with_namespace`` views of this storage), so only one of them
        polls the store. On other adapters the lock is that in-process lock
        alone and ``ttl`` is unused. Its bookkeeping is freed when nobody
        holds or waits for the key.

        ``timeout=0`` tries once. Cancelling the holder at any point (while
        acquiring, holding, renewing or releasing) never leaves the lock
        held: a write in flight is awaited and undone. If the lease is lost
        while held (it expired, e.g. after renewals failed for ``ttl``
        seconds, and someone took it), ``lock.lost`` turns true and leaving
        the block raises ``ConflictError``. Not re-entrant: a holder asking
        for the same key again waits for itself until ``timeout``. A ``ttl``
        that is not a positive number of seconds (at most 100 years), or a
        negative ``timeout``, raises ``InvalidArgument``.
        """
        lease_ttl = seconds(ttl, "lock ttl")
        wait = seconds(timeout, "lock timeout", zero=True, forever=True)  # inf: wait forever
        name = LOCK_PREFIX + self.full_key(key)
        lease = None
        if Capability.ATOMIC in self.adapter.capabilities:
            lease = Lease(
                self.adapter, name, ttl=lease_ttl, clock=self.clock, background=self._lock_tasks
            )
        return Lock(key, self._local_locks.hold(name), lease, timeout=wait)

    # -- events and lifecycle ---------------------------------------------
    def on_expire(
        self,
        callback: Callable[[str, T | None], Awaitable[None] | None],
        *,
        evictions: bool = False,
    ) -> Callable[[], None]:
        """Call ``callback(key, last_value)`` when a key of this namespace expires.

        Entries pushed out by a size cap (the memory adapter's ``max_entries``)
        are reported too only with ``evictions=True``: an evicted session did
        not time out. Needs an adapter with ``EXPIRY_EVENTS``. Returns an
        unsubscribe function.
        """
        self._require(Capability.EXPIRY_EVENTS, "on_expire()")
        prefix, cut = self._prefix, len(self._prefix)

        def relay(event: ExpiryEvent) -> Awaitable[None] | None:
            if not event.key.startswith(prefix) or (event.reason != "expired" and not evictions):
                return None
            if not cut and event.key.startswith(LOCK_PREFIX):
                return None  # a lease of lock(), not a value
            key = event.key[cut:]
            try:
                value: T | None = self.decode(key, event.value)
            except DecodeError:
                logger.warning("expired key %r held undecodable bytes", key)
                value = None
            return callback(key, value)

        return self.adapter.on_expire(relay)

    def with_namespace(self, namespace: str | None) -> Storage[T]:
        """A view of the same adapter under another namespace (same codec, TTL and clock)."""
        view = copy.copy(self)
        view._set_namespace(namespace)
        return view

    def _set_namespace(self, namespace: str | None) -> None:
        self.namespace = validate_namespace(namespace)
        self._prefix = f"{self.namespace}{NAMESPACE_SEPARATOR}" if self.namespace else ""

    async def close(self) -> None:
        """Close the adapter (shared with any views), after pending lock releases."""
        if self._lock_tasks:
            import asyncio

            await asyncio.gather(*self._lock_tasks, return_exceptions=True)
        await self.adapter.close()

    async def __aenter__(self) -> Storage[T]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        typed = "" if self.type is None else f", type={type_name(self.type)}"
        return (
            f"Storage({self.adapter!r}, namespace={self.namespace!r}, "
            f"ttl={self.default_ttl!r}, codec={self.codec.name!r}{typed})"
        )
