"""Blocking twins of the adapter's plain operations, for :mod:`botstate.sync`.

``SyncStorage`` calls these from its callers' threads instead of running the
async methods on botstate's loop thread: one hop (caller -> connection
thread -> caller) instead of two (caller -> loop -> connection thread ->
loop -> caller). Each call is one job on a connection's worker thread (see
:meth:`.worker.Worker.call_blocking`), running the same SQL and op functions
as the async methods, with the same clock and the same error mapping.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from . import writer as w
from .reads import fetch_all, fetch_many
from .worker import Worker

if TYPE_CHECKING:
    from .adapter import SqliteAdapter

__all__ = ["SqliteBlocking"]

T = TypeVar("T")


class SqliteBlocking:
    """The blocking ``get``/``set``/``has``/``delete``/``get_expiry`` and batches of one adapter.

    >>> twins = adapter.blocking()          # None until the adapter has connected
    >>> twins.set("chat:1", b"{}")          # from a thread that runs no event loop

    Results, expiry and errors are those of the async methods of the same
    name. Reads go to the read connection. A write is a transaction of its
    own on the write connection (``BEGIN IMMEDIATE`` ... ``COMMIT``), so it is
    committed when the call returns; it does not join the group commit of the
    async writes (that lives on the event loop), and it is not counted in the
    adapter's ``transactions``/``writes``. Safe from many threads at once:
    each connection runs its jobs one at a time. Once the adapter is closed
    every method raises :class:`~botstate.StorageUnavailable`. An interrupted
    call (``KeyboardInterrupt``) may or may not have been applied, as a
    cancelled async call; the connection threads go on serving.
    """

    __slots__ = ("_adapter", "_reader", "_sql", "_timeout", "_writer")

    def __init__(self, adapter: SqliteAdapter, reader: Worker, writer: Worker) -> None:
        self._adapter = adapter
        self._reader = reader
        self._writer = writer
        self._sql = adapter._sql
        self._timeout = adapter.config.busy_timeout

    def get(self, key: str) -> bytes | None:
        rows = self._read("get", fetch_all, self._sql.get, (key, self._adapter.clock()))
        return rows[0][0] if rows else None

    def has(self, key: str) -> bool:
        return bool(self._read("has", fetch_all, self._sql.has, (key, self._adapter.clock())))

    def get_expiry(self, key: str) -> float | None:
        now = self._adapter.clock()
        rows = self._read("get_expiry", fetch_all, self._sql.get_expiry, (key, now))
        return rows[0][0] if rows else None

    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        return self._read("get_many", fetch_many, self._sql, keys, self._adapter.clock())

    def set(self, key: str, value: bytes, expires_at: float | None = None) -> None:
        self._write(w.op_set, key, value, expires_at)

    def set_many(self, items: Mapping[str, bytes], expires_at: float | None = None) -> None:
        self._adapter.check_open()
        if items:
            self._write(w.op_set_many, [(key, value, expires_at) for key, value in items.items()])

    def delete(self, key: str) -> bool:
        return bool(self._write(w.op_delete, key, self._adapter.clock()))

    def delete_many(self, keys: Sequence[str]) -> int:
        self._adapter.check_open()
        wanted = list(dict.fromkeys(keys))
        return int(self._write(w.op_delete_many, wanted, self._adapter.clock())) if wanted else 0

    def _read(self, doing: str, fn: Callable[..., T], *args: Any) -> T:
        adapter = self._adapter
        adapter.check_open()
        try:
            return self._reader.call_blocking(fn, *args)
        except (sqlite3.Error, ValueError) as err:  # as the async reads
            raise adapter._wrap(err, doing) from err

    def _write(self, fn: w.OpFn, *args: Any) -> Any:
        adapter = self._adapter
        adapter.check_open()
        batch = ((fn, args, False, None),)
        try:
            return self._writer.call_blocking(w.run_batch, self._sql, batch, self._timeout)[0]
        except Exception as err:  # as the group commit's failures
            wrapped = adapter._wrap(err)
            if wrapped is err:
                raise
            raise wrapped from err
