"""An optional base class for adapters: fallbacks, the closed check, expiry events.

Subclass :class:`BaseAdapter` and implement ``get``, ``set``, ``delete`` and
whatever your capabilities promise; call :meth:`BaseAdapter.check_open` at the
start of every operation so a closed adapter raises ``StorageUnavailable``.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .capabilities import Capability
from .contract import BlockingOps, ExpiryCallback, ExpiryEvent, Version
from .errors import StorageUnavailable, UnsupportedOperation
from .logs import hide_in_logs

if TYPE_CHECKING:
    import asyncio  # imported where used: `import botstate` loads no asyncio

__all__ = ["BaseAdapter", "int_version"]

logger = logging.getLogger("botstate")


def int_version(version: object, *, low: int = 0, high: int = 2**64 - 1) -> int | None:
    """``version`` as an ``int`` if it is one an integer-versioned adapter could hand out.

    For adapters whose version tokens are integers in ``[low, high]``: a bool,
    another type or an out-of-range number can never match a stored entry, so
    ``set_if``/``delete_if`` given one must simply not write (return ``None``).
    """
    if isinstance(version, int) and not isinstance(version, bool) and low <= version <= high:
        return version
    return None


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
        self._forget_secrets: list[Callable[[], None]] = []

    # -- required ---------------------------------------------------------
    async def get(self, key: str) -> bytes | None:
        raise NotImplementedError

    async def set(self, key: str, value: bytes, *, expires_at: float | None = None) -> None:
        raise NotImplementedError

    async def delete(self, key: str) -> bool:
        raise NotImplementedError

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._closed

    def check_open(self) -> None:
        """Raise :class:`StorageUnavailable` if the adapter was closed.

        Every operation of a subclass calls this first: a closed adapter must
        refuse work instead of reconnecting or answering from stale state.
        """
        if self._closed:
            raise StorageUnavailable(f"{self!r} is closed")

    def blocking(self) -> BlockingOps | None:
        """Blocking twins of the plain operations, or ``None`` (the default: none).

        Override to let :mod:`botstate.sync` skip its loop thread for ``get``,
        ``set``, ``has``, ``delete``, ``get_expiry`` and the batches (see
        :class:`~botstate.adapter.BlockingOps`). Return ``None`` while they
        cannot be offered (before a first async call has connected, say): the
        sync API then uses the async method. Called once per sync call until it
        returns an object, which is then used for the adapter's whole life.
        """
        return None

    def hide_in_logs(self, secrets: Iterable[str | None]) -> None:
        """Keep ``secrets`` out of every log record (drivers' too) until :meth:`close`."""
        self._forget_secrets.append(hide_in_logs(secrets))

    async def close(self) -> None:
        """Mark closed and wait for pending expiry callbacks. Idempotent."""
        self._closed = True
        while self._forget_secrets:
            self._forget_secrets.pop()()
        if self._callback_tasks:
            import asyncio

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
                import asyncio

                task = asyncio.ensure_future(_log_failure(result, callback, event.key))
                self._callback_tasks.add(task)
                task.add_done_callback(self._callback_tasks.discard)

    # -- conveniences -----------------------------------------------------
    @staticmethod
    async def _cancel_task(task: asyncio.Task[Any] | None) -> None:
        """Cancel a background task (sweeper, purger) and wait for it to end."""
        if task is None or task.done():
            return
        import asyncio

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
