"""Per-key asyncio locks that are freed as soon as nobody holds or awaits them."""

from __future__ import annotations

import asyncio
from types import TracebackType

__all__ = ["KeyedLock"]


class KeyedLock:
    """A lock per key; an entry exists only while a task holds or waits for it.

    >>> locks = KeyedLock()
    >>> async def handler():
    ...     async with locks.hold("chat:1"):
    ...         ...
    """

    def __init__(self) -> None:
        self._locks: dict[str, _Entry] = {}

    def __len__(self) -> int:
        """How many keys currently have a lock object (held or awaited)."""
        return len(self._locks)

    def hold(self, key: str) -> _Hold:
        """An async context manager holding the lock of ``key``."""
        return _Hold(self._locks, key)


class _Entry:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0  # tasks holding or waiting for the lock


class _Hold:
    __slots__ = ("_entry", "_key", "_locks")

    def __init__(self, locks: dict[str, _Entry], key: str) -> None:
        self._locks = locks
        self._key = key
        self._entry: _Entry | None = None

    async def __aenter__(self) -> None:
        entry = self._locks.get(self._key)
        if entry is None:
            entry = self._locks[self._key] = _Entry()
        entry.users += 1
        self._entry = entry
        try:
            await entry.lock.acquire()
        except BaseException:
            self._forget(entry)
            raise

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        entry = self._entry
        assert entry is not None
        entry.lock.release()
        self._forget(entry)

    def _forget(self, entry: _Entry) -> None:
        entry.users -= 1
        if entry.users == 0 and self._locks.get(self._key) is entry:
            del self._locks[self._key]
