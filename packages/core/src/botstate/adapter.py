"""Layer 1: the contract every storage adapter implements.

An adapter stores **bytes** under **string keys** with an optional absolute
expiry (UNIX seconds, float). Key validation, namespaces, codecs and TTL
defaults live above it, in :class:`botstate.Storage`, so every adapter behaves
the same. :class:`StorageAdapter` is the contract; :class:`BaseAdapter` is an
optional helper that supplies correct fallbacks for the optional methods.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Protocol, TypeAlias, runtime_checkable

from .capabilities import Capability
from .errors import UnsupportedOperation

__all__ = [
    "BaseAdapter",
    "ExpiryCallback",
    "ExpiryEvent",
    "StorageAdapter",
    "Version",
]

logger = logging.getLogger("botstate")

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
        """Release connections and background tasks. Calling it twice is harmless."""
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


class BaseAdapter:
    """Optional base class: loop fallbacks, ``async with``, a secret-free repr.

    Subclasses implement ``get``, ``set``, ``delete`` and whatever their
    capabilities promise; everything else falls back to correct (if slower)
    loops over the required methods, or raises ``UnsupportedOperation``.
    """

    capabilities: frozenset[Capability] = frozenset()

    def __init__(self) -> None:
        self._expiry_callbacks: list[ExpiryCallback] = []
        self._callback_tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    # -- required ---------------------------------------------------------
    async def get(self, key: str) -> bytes | None:
        raise NotImplementedError

    async def set(self, key: str, value: bytes, *, expires_at: float | None = None) -> None:
        raise NotImplementedError

    async def delete(self, key: str) -> bool:
        raise NotImplementedError

    async def close(self) -> None:
        """Mark closed and wait for pending expiry callbacks. Idempotent."""
        self._closed = True
        if self._callback_tasks:
            await asyncio.gather(*self._callback_tasks, return_exceptions=True)

    # -- fallbacks --------------------------------------------------------
    async def has(self, key: str) -> bool:
        return await self.get(key) is not None

    async def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        for key in keys:
            value = await self.get(key)
            if value is not None:
                found[key] = value
        return found

    async def set_many(
        self, items: Mapping[str, bytes], *, expires_at: float | None = None
    ) -> None:
        for key, value in items.items():
            await self.set(key, value, expires_at=expires_at)

    async def delete_many(self, keys: Sequence[str]) -> int:
        removed = 0
        for key in dict.fromkeys(keys):
            removed += await self.delete(key)
        return removed

    def scan(self, prefix: str = "") -> AsyncIterator[str]:
        raise UnsupportedOperation(f"{type(self).__name__} cannot list keys (no SCAN capability)")

    async def get_expiry(self, key: str) -> float | None:
        raise UnsupportedOperation(f"{type(self).__name__} cannot report expiry times")

    async def get_versioned(self, key: str) -> tuple[bytes, Version] | None:
        raise UnsupportedOperation(f"{type(self).__name__} has no atomic operations (no ATOMIC)")

    async def set_if(
        self,
        key: str,
        value: bytes,
        *,
        version: Version | None,
        expires_at: float | None = None,
    ) -> Version | None:
        raise UnsupportedOperation(f"{type(self).__name__} has no atomic operations (no ATOMIC)")

    async def delete_if(self, key: str, *, version: Version) -> bool:
        raise UnsupportedOperation(f"{type(self).__name__} has no atomic operations (no ATOMIC)")

    # -- expiry events ----------------------------------------------------
    def on_expire(self, callback: ExpiryCallback) -> Callable[[], None]:
        if Capability.EXPIRY_EVENTS not in self.capabilities:
            raise UnsupportedOperation(
                f"{type(self).__name__} does not report expiries (no EXPIRY_EVENTS)"
            )
        self._expiry_callbacks.append(callback)

        def unsubscribe() -> None:
            if callback in self._expiry_callbacks:
                self._expiry_callbacks.remove(callback)

        return unsubscribe

    def _emit_expiry(self, event: ExpiryEvent) -> None:
        """Deliver ``event`` to every subscriber; a failing callback is logged, not raised."""
        for callback in list(self._expiry_callbacks):
            try:
                result = callback(event)
            except Exception:
                logger.exception("expiry callback %r failed for key %r", callback, event.key)
                continue
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(_log_failure(result, callback, event.key))
                self._callback_tasks.add(task)
                task.add_done_callback(self._callback_tasks.discard)

    # -- conveniences -----------------------------------------------------
    @staticmethod
    async def _cancel_task(task: asyncio.Task[Any] | None) -> None:
        """Cancel a background task (sweeper, purger) and wait for it to end."""
        if task is None or task.done():
            return
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        except RuntimeError:
            pass  # the task belonged to an event loop that is gone

    async def __aenter__(self) -> BaseAdapter:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _repr_fields(self) -> Mapping[str, Any]:
        """Configuration shown by ``repr``; subclasses list safe fields only."""
        return {}

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self._repr_fields().items())
        return f"{type(self).__name__}({fields})"


async def _log_failure(awaitable: Awaitable[None], callback: object, key: str) -> None:
    try:
        await awaitable
    except Exception:
        logger.exception("expiry callback %r failed for key %r", callback, key)
