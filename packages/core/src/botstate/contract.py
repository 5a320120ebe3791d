"""Layer 1: the contract every storage adapter implements.

An adapter stores **bytes** under **string keys** with an optional absolute
expiry (UNIX seconds, float). Key validation, namespaces, codecs and TTL
defaults live above it, in :class:`botstate.Storage`, so every adapter behaves
the same. :class:`StorageAdapter` is the contract; :class:`~botstate.adapter.BaseAdapter`
(in ``base.py``) is an optional helper with correct fallbacks and a closed check.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, TypeAlias, runtime_checkable

from .capabilities import Capability

__all__ = [
    "BlockingOps",
    "ExpiryCallback",
    "ExpiryEvent",
    "StorageAdapter",
    "Version",
]

Version: TypeAlias = "int | str | bytes"
"""An opaque token that changes on every write of a key (ATOMIC adapters)."""


@dataclass(frozen=True)
class ExpiryEvent:
    """An entry that left the store without being deleted by a caller.

    ``reason`` is ``"expired"`` (its ``expires_at`` passed) or ``"evicted"``
    (a size cap pushed it out). ``value`` is the last stored bytes.
    """

    key: str
    value: bytes
    reason: Literal["expired", "evicted"] = "expired"
    expires_at: float | None = None


ExpiryCallback: TypeAlias = Callable[[ExpiryEvent], "Awaitable[None] | None"]


@runtime_checkable
class StorageAdapter(Protocol):
    """What a backend must provide. Keys and values arrive already validated.

    Required: ``capabilities``, ``get``, ``set``, ``delete``, ``close``.
    Optional methods are gated by :class:`~botstate.Capability`; an adapter
    that cannot do one raises :class:`~botstate.errors.UnsupportedOperation`
    (never a silent no-op). Driver errors are wrapped in botstate errors, and
    a failed read raises: it is never reported as a missing key.
    """

    capabilities: frozenset[Capability]

    async def get(self, key: str) -> bytes | None:
        """Return the stored bytes, or ``None`` if absent or expired."""
        ...

    async def set(self, key: str, value: bytes, *, expires_at: float | None = None) -> None:
        """Store ``value``, replacing any previous entry and its expiry.

        ``expires_at`` is absolute UNIX time in seconds; ``None`` means never.
        An entry whose ``expires_at`` has passed MUST NOT be returned by any read.
        """
        ...

    async def delete(self, key: str) -> bool:
        """Remove ``key``; return ``True`` if a live entry was removed."""
        ...

    async def close(self) -> None:
        """Release connections and background tasks. Calling it twice is harmless.

        After ``close()`` every other method MUST raise
        :class:`~botstate.errors.StorageUnavailable` (never reconnect silently).
        """
        ...

    async def has(self, key: str) -> bool:
        """Return ``True`` if a live (unexpired) entry exists."""
        ...

    async def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        """Return the live entries among ``keys``; missing keys are absent from the dict."""
        ...

    async def set_many(
        self, items: Mapping[str, bytes], *, expires_at: float | None = None
    ) -> None:
        """Store every item with the same expiry."""
        ...

    async def delete_many(self, keys: Sequence[str]) -> int:
        """Remove ``keys``; return how many live entries were removed."""
        ...

    def scan(self, prefix: str = "") -> AsyncIterator[str]:
        """Yield every live key starting with ``prefix`` (taken literally). ``SCAN``."""
        ...

    async def get_expiry(self, key: str) -> float | None:
        """Return the absolute expiry of a live entry, ``None`` if it has none or is absent."""
        ...

    async def get_versioned(self, key: str) -> tuple[bytes, Version] | None:
        """Return ``(value, version)`` of a live entry, or ``None``. ``ATOMIC``."""
        ...

    async def set_if(
        self,
        key: str,
        value: bytes,
        *,
        version: Version | None,
        expires_at: float | None = None,
    ) -> Version | None:
        """Write only if the entry still has ``version`` (``None``: only if absent).

        Return the entry's new version when it wrote, ``None`` when it did not.
        The returned token MUST be the one a following ``get_versioned`` would
        report, so it can be passed at once to the next ``set_if``/``delete_if``
        without reading the entry again (a lease renews in one round trip).
        Exactly one of many concurrent writers holding the same version wins.
        An expired entry counts as absent. ``ATOMIC``.
        """
        ...

    async def delete_if(self, key: str, *, version: Version) -> bool:
        """Delete only if the entry still has ``version``; ``True`` if deleted. ``ATOMIC``."""
        ...

    def on_expire(self, callback: ExpiryCallback) -> Callable[[], None]:
        """Call ``callback(event)`` for each entry removed by expiry. ``EXPIRY_EVENTS``.

        Returns a function that unsubscribes the callback.
        """
        ...


class BlockingOps(Protocol):
    """Blocking twins of an adapter's plain operations, for :mod:`botstate.sync`.

    Optional. An adapter offers them from ``blocking()`` (see
    :meth:`~botstate.adapter.BaseAdapter.blocking`); a ``SyncStorage`` then
    calls them in the calling thread instead of running the async method on
    its loop thread, which saves two thread switches per call. Each method
    does exactly what the async method of the same name does (results, expiry,
    versions, errors), as a plain call that returns when the work is done;
    ``expires_at`` is passed by position (a keyword costs a dict per call).

    They are called from any thread that runs no event loop, several at once,
    so they must be thread-safe; an adapter with ``runs_inline = True`` is the
    exception (its twins run under botstate.sync's loop lock, one at a time and
    never beside the loop's own callbacks, but with no event loop running).
    A twin that cannot do a call now (it would need an event loop, to start a
    task) returns ``NotImplemented`` having changed nothing, and the async
    method runs instead. Once the adapter is closed, every method raises
    ``StorageUnavailable``.
    """

    def get(self, key: str) -> bytes | None: ...
    def has(self, key: str) -> bool: ...
    def set(self, key: str, value: bytes, expires_at: float | None = None) -> None: ...
    def delete(self, key: str) -> bool: ...
    def get_expiry(self, key: str) -> float | None: ...
    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]: ...
    def set_many(self, items: Mapping[str, bytes], expires_at: float | None = None) -> None: ...
    def delete_many(self, keys: Sequence[str]) -> int: ...
