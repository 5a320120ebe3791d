""":class:`BotstateEventIsolation`: aiogram's event isolation on ``Storage.lock``."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Any

from aiogram.fsm.storage.base import BaseEventIsolation, KeyBuilder, StorageKey

from botstate.errors import ConfigError
from botstate.options import seconds
from botstate.storage import Storage

from .keys import BotstateKeyBuilder

__all__ = ["BotstateEventIsolation"]


class BotstateEventIsolation(BaseEventIsolation):
    """One handler at a time per FSM key, as ``Dispatcher(events_isolation=...)`` wants.

    >>> dp = Dispatcher(storage=fsm, events_isolation=fsm.create_isolation())

    Each update's handler runs inside ``storage.lock(key_builder.build(key,
    "lock"))``. On ATOMIC adapters (SQLite, Redis, DynamoDB) that is a lease in
    the storage: one handler per key across every process and host sharing
    it, renewed every ``ttl / 3`` seconds while the handler runs, and freed by
    expiry if a process dies holding it. The memory adapter's store is the
    process, so there the lock is per process; so it is on adapters without
    ATOMIC. An update that waits longer than ``timeout`` seconds for
    its key raises :class:`~botstate.errors.ConflictError` (aiogram logs it
    and drops the update).

    :meth:`close` leaves the storage open: the FSM storage closes it.
    """

    def __init__(
        self,
        storage: Storage[Any],
        *,
        key_builder: KeyBuilder | None = None,
        ttl: float = 30.0,
        timeout: float = 60.0,
    ) -> None:
        if not isinstance(storage, Storage):
            raise ConfigError(f"storage must be a botstate Storage, not {type(storage).__name__}")
        self.storage = storage
        self.key_builder: KeyBuilder = key_builder or BotstateKeyBuilder()
        self.ttl = seconds(ttl, "ttl", error=ConfigError)
        self.timeout = seconds(timeout, "timeout", zero=True, error=ConfigError)

    @asynccontextmanager
    async def lock(self, key: StorageKey) -> AsyncGenerator[None, None]:
        """Hold the lock of ``key`` for the duration of the block."""
        async with self.storage.lock(
            self.key_builder.build(key, "lock"), ttl=self.ttl, timeout=self.timeout
        ):
            yield

    async def close(self) -> None:
        """Nothing to release: locks end with their blocks, the storage is the FSM's."""

    def __repr__(self) -> str:
        return (
            f"BotstateEventIsolation({self.storage!r}, ttl={self.ttl:g}, timeout={self.timeout:g})"
        )
