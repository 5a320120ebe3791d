"""The SQLite adapter: sqlite3 on daemon worker threads, group-committed writes, TTL purge."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import sqlite3
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from botstate import (
    BotstateError,
    Capability,
    ConfigError,
    InvalidKey,
    StorageError,
    StorageUnavailable,
    ValueTooLarge,
)
from botstate.adapter import BaseAdapter, Clock, ExpiryEvent, Version, int_version, system_clock

from . import writer as w
from .blocking import SqliteBlocking
from .config import SqliteConfig
from .reads import fetch_all, fetch_many, fetch_one
from .schema import Statements, is_busy, prepare
from .worker import Worker

__all__ = ["SqliteAdapter"]

logger = logging.getLogger("botstate.sqlite")

_FILE_CAPABILITIES = frozenset(
    {
        Capability.BATCH,
        Capability.SCAN,
        Capability.ATOMIC,
        Capability.EXPIRY_EVENTS,
        Capability.PERSISTENT,
        Capability.SHARED,
    }
)
_MEMORY_CAPABILITIES = _FILE_CAPABILITIES - {Capability.PERSISTENT, Capability.SHARED}
_SCAN_PAGE = 500
_PURGE_BATCH = 1000
_MAX_INT64 = 2**63 - 1  # versions are SQLite INTEGERs
_MIN_INT64 = -(2**63)
SQLITE_READONLY = 8
SQLITE_IOERR = 10
SQLITE_CANTOPEN = 14
SQLITE_TOOBIG = 18
SQLITE_NOTADB = 26


class SqliteAdapter(BaseAdapter):
    """Entries in one table of a SQLite file, shared by every process that opens it.

    >>> adapter = SqliteAdapter.from_url("sqlite:///bot.db?table=sessions")
    >>> await adapter.set("chat:1", b"{}")

    Options (URL query or keywords, see the README): ``table`` (default
    ``botstate``), ``journal_mode`` (``WAL``), ``synchronous`` (``NORMAL``),
    ``busy_timeout`` (seconds, 5), ``purge_interval`` (seconds, 5; 0 = only on
    open and on :meth:`purge`), and ``clock`` for tests.

    The connections open on first use, each on its own daemon thread (see
    :mod:`.worker`): one for reads (which never return expired rows) and, for
    files, another for group-committed write batches (see :mod:`.writer`), so
    reads never queue behind a write waiting for a lock. Any event loop may
    use the adapter; the purge task follows the loop in use.
    Expired rows are deleted on open and by a background task, and each one
    is reported once to ``on_expire`` subscribers of the process that deleted it.
    ``transactions`` and ``writes`` count committed write batches and their ops.
    """

    capabilities = _FILE_CAPABILITIES

    def __init__(self, config: SqliteConfig, *, clock: Clock = system_clock) -> None:
        super().__init__()
        self.config = config
        self.clock = clock
        if config.in_memory:
            self.capabilities = _MEMORY_CAPABILITIES
        self._sql = Statements.for_config(config)
        self._db: Worker | None = None  # reads
        self._writer_db: Worker | None = None  # group-commit batches
        self._opening: asyncio.Lock | None = None
        self._purger: asyncio.Task[None] | None = None
        self._writer = w.GroupCommit(self._run_batch, self._wrap)
        self._blocking: SqliteBlocking | None = None
        self.journal_mode: str | None = None
        """The journal mode SQLite reported after opening (``None`` before)."""

    @classmethod
    def from_url(cls, url: str | None = None, **options: Any) -> SqliteAdapter:
        """Open from ``sqlite:///relative.db``, ``sqlite:////abs.db`` or ``sqlite://:memory:``.

        Options come from the URL query and keyword arguments (keywords win);
        ``path=...`` may replace the URL. No I/O happens until first use.
        """
        clock = options.pop("clock", system_clock)
        if not callable(clock):
            raise ConfigError(f"clock must be a callable returning UNIX time, got {clock!r}")
        return cls(SqliteConfig.from_options(url, options), clock=clock)

    @property
    def transactions(self) -> int:
        """How many write transactions (group-commit batches) were committed."""
        return self._writer.transactions

    @property
    def writes(self) -> int:
        """How many write operations those transactions carried."""
        return self._writer.writes

    # -- connection -------------------------------------------------------
    async def _reader(self) -> Worker:
        """The read connection, opened on first use; restarts the purger on a new loop."""
        self.check_open()
        db = self._db
        if db is None:
            return await self._open()
        purger = self._purger
        if purger is not None and purger.done():
            self._start_purger()  # its event loop ended (asyncio.run returned): follow this one
        return db

    async def _open(self) -> Worker:
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._db is None:
                await self._connect()
        assert self._db is not None
        return self._db

    async def _connect(self) -> None:
        where = self._where()
        writer = await self._dial()
        reader = writer
        try:
            self.journal_mode = await writer.call(prepare, self.config, self._sql)
            if not self.config.in_memory:
                # Reads get their own connection and thread, so they never queue
                # behind a write batch that waits for another process's lock.
                reader = await self._dial()
                await reader.call(_execute, "PRAGMA query_only = 1", ())
        except BaseException as err:
            await _close_all(writer, reader)
            if isinstance(err, BotstateError):
                raise
            if isinstance(err, sqlite3.Error):
                raise self._wrap(err, "open") from err
            raise
        if self._closed:  # close() ran while we were connecting
            await _close_all(writer, reader)
            raise StorageUnavailable(f"{self!r} is closed")
        if self.journal_mode != self.config.journal_mode and not self.config.in_memory:
            logger.warning(
                "SQLite kept journal_mode=%s for %s (asked for %s)",
                self.journal_mode,
                where,
                self.config.journal_mode,
            )
        self._db, self._writer_db = reader, writer
        self._blocking = SqliteBlocking(self, reader, writer)
        try:
            await self._purge()
        except StorageError as err:  # the periodic purge will try again
            logger.warning("purge on open of %s failed: %s", where, err)
        self._start_purger()

    def blocking(self) -> SqliteBlocking | None:
        """Blocking twins of the plain operations (for ``botstate.sync``), once connected.

        ``None`` until a first async call has opened the connections; then the
        same object for the adapter's whole life (its methods raise
        :class:`StorageUnavailable` once the adapter is closed). Its calls run
        on the adapter's connection threads, straight from the calling thread;
        see :class:`.blocking.SqliteBlocking` (a blocking write commits on its
        own, outside the async group commit).
        """
        return self._blocking

    def _start_purger(self) -> None:
        if self.config.purge_interval and not self._closed:
            self._purger = asyncio.get_running_loop().create_task(
                self._purge_forever(), name="botstate-sqlite-purge"
            )

    async def _dial(self) -> Worker:
        db = Worker(
            self.config.path,
            timeout=self.config.busy_timeout,
            name=f"botstate-sqlite:{self.config.table}",
        )
        try:
            await db.open()
        except sqlite3.Error as err:
            problem = self._path_problem()
            if problem is not None:
                raise ConfigError(
                    f"cannot open SQLite database {self._where()}: {problem} (SQLite says: {err})"
                ) from err
            raise StorageUnavailable(f"cannot open SQLite database {self._where()}: {err}") from err
        return db

    def _path_problem(self) -> str | None:
        """Why this process cannot write the database, when the file system shows it.

        A retry cannot help until someone fixes the path or its permissions,
        so callers raise :class:`ConfigError` with this text (a path, never a secret).
        """
        if self.config.in_memory:
            return None
        path = os.path.abspath(self.config.path)
        folder = os.path.dirname(path)
        if not os.path.isdir(folder):
            return (
                f"the directory {folder!r} does not exist: create it first "
                "(SQLite creates the database file, not its directories)"
            )
        if os.path.exists(path) and not os.access(path, os.W_OK):
            return (
                f"the file {path!r} is read-only for this process: give the user this bot runs "
                "as write permission on it (chmod/chown; check for a read-only mount or volume)"
            )
        if not os.access(folder, os.W_OK | os.X_OK):
            name = os.path.basename(path)
            return (
                f"the directory {folder!r} is not writable by this process: SQLite creates its "
                f"journal files ({name}-wal and {name}-shm, or {name}-journal) next to the "
                "database, so it needs write access to the directory as well as to the file "
                "(chmod/chown the directory, or put the database in a writable one)"
            )
        return None

    def _where(self) -> str:
        return f"{self.config.path!r} (table {self.config.table!r})"

    async def _run_batch(self, ops: list[w.Op]) -> list[Any]:
        db = self._writer_db
        if db is None:
            raise StorageUnavailable(f"{self!r} is closed")
        # One call on the writer thread for the whole batch, not a hop per statement.
        return await db.call(w.run_batch, self._sql, ops, self.config.busy_timeout)

    def _wrap(self, err: BaseException, doing: str = "write") -> BaseException:
        """The botstate error a caller sees for a driver (or aiosqlite) exception."""
        if isinstance(err, BotstateError):
            return err
        if isinstance(err, UnicodeEncodeError):
            return InvalidKey(f"key cannot be stored as UTF-8: {err}")
        if isinstance(err, asyncio.CancelledError):
            return StorageUnavailable(
                f"SQLite {doing} on {self._where()} was cancelled; it may or may not have been "
                "committed"
            )
        code = getattr(err, "sqlite_errorcode", 0) & 0xFF
        if code == SQLITE_TOOBIG or "too big" in str(err):
            return ValueTooLarge(f"value too large for SQLite ({doing} on {self._where()}): {err}")
        if is_busy(err):
            return StorageUnavailable(
                f"SQLite {doing} on {self._where()} gave up: the database stayed locked by "
                f"another connection for more than busy_timeout={self.config.busy_timeout:g}s"
            )
        if code == SQLITE_NOTADB:
            return ConfigError(f"{self.config.path!r} is not a SQLite database: {err}")
        text = str(err)
        if code in (SQLITE_READONLY, SQLITE_CANTOPEN, SQLITE_IOERR) or (
            "readonly database" in text or "unable to open database" in text  # Python 3.10
        ):
            problem = self._path_problem()
            if problem is not None:
                return ConfigError(
                    f"SQLite {doing} on {self._where()} failed: {problem} (SQLite says: {err})"
                )
        if isinstance(err, ValueError) and not isinstance(err, sqlite3.Error):
            return StorageUnavailable(f"SQLite connection to {self._where()} is closed: {err}")
        return StorageUnavailable(f"SQLite {doing} on {self._where()} failed: {err}")

    async def _fetch(self, sql: str, params: Sequence[Any], doing: str) -> list[Any]:
        db = await self._reader()
        try:
            return await db.call(fetch_all, sql, params)
        except (sqlite3.Error, ValueError) as err:
            raise self._wrap(err, doing) from err

    async def _write(self, fn: w.OpFn, args: tuple[Any, ...], savepoint: bool = False) -> Any:
        await self._reader()  # opens, and refuses new writes once close() began
        return await self._writer.submit(fn, args, savepoint)

    # -- expiry -----------------------------------------------------------
    async def purge(self) -> int:
        """Delete expired rows now, reporting each to ``on_expire``; return how many."""
        await self._reader()
        return await self._purge()

    async def _purge(self) -> int:
        removed = 0
        while True:
            now = self.clock()
            if not await self._fetch(self._sql.any_expired, (now,), "purge"):
                return removed  # a cheap read; no write lock when nothing expired
            events = bool(self._expiry_callbacks)
            result = await self._writer.submit(w.op_purge, (now, events, _PURGE_BATCH), True)
            if isinstance(result, int):
                count = result
            else:
                count = len(result)
                for key, value, expires_at in result:
                    self._emit_expiry(ExpiryEvent(key, bytes(value), "expired", expires_at))
            removed += count
            if count < _PURGE_BATCH:
                return removed

    async def _purge_forever(self) -> None:
        while not self._closed:
            await asyncio.sleep(self.config.purge_interval)
            try:
                await self.purge()
            except StorageError as err:
                logger.warning("purge of expired rows in %s failed: %s", self._where(), err)

    # -- the contract -----------------------------------------------------
    async def get(self, key: str) -> bytes | None:
        db = self._db  # the hottest path: _reader() and _fetch inlined, as in get_versioned
        purger = self._purger
        if db is None or self._closed or (purger is not None and purger.done()):
            db = await self._reader()
        try:
            row = await db.call(fetch_one, self._sql.get, (key, self.clock()))
        except (sqlite3.Error, ValueError) as err:
            raise self._wrap(err, "get") from err
        return None if row is None else row[0]

    async def has(self, key: str) -> bool:
        return bool(await self._fetch(self._sql.has, (key, self.clock()), "has"))

    async def set(self, key: str, value: bytes, *, expires_at: float | None = None) -> None:
        await self._write(w.op_set, (key, value, expires_at))

    async def delete(self, key: str) -> bool:
        return bool(await self._write(w.op_delete, (key, self.clock())))

    async def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        db = await self._reader()
        try:  # every chunk in one call on the connection thread
            return await db.call(fetch_many, self._sql, keys, self.clock())
        except (sqlite3.Error, ValueError) as err:
            raise self._wrap(err, "get_many") from err

    async def set_many(
        self, items: Mapping[str, bytes], *, expires_at: float | None = None
    ) -> None:
        if items:
            rows = [(key, value, expires_at) for key, value in items.items()]
            await self._write(w.op_set_many, (rows,), True)

    async def delete_many(self, keys: Sequence[str]) -> int:
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return 0
        return int(await self._write(w.op_delete_many, (wanted, self.clock()), True))

    async def scan(self, prefix: str = "") -> AsyncIterator[str]:
        sql = self._sql
        upper = _upper_bound(prefix)
        rows = await self._fetch(
            sql.scan_first if upper is None else sql.scan_first_bounded,
            _scan_params(prefix, upper, self.clock()),
            "scan",
        )
        while True:
            for row in rows:
                yield row[0]
            if len(rows) < _SCAN_PAGE:
                return
            # Page by key so writes between pages neither repeat nor skip keys.
            rows = await self._fetch(
                sql.scan_next if upper is None else sql.scan_next_bounded,
                _scan_params(rows[-1][0], upper, self.clock()),
                "scan",
            )

    async def get_expiry(self, key: str) -> float | None:
        rows = await self._fetch(self._sql.get_expiry, (key, self.clock()), "get_expiry")
        return rows[0][0] if rows else None

    async def get_versioned(self, key: str) -> tuple[bytes, Version] | None:
        # A session's read on this adapter, so spelled out: _reader() awaited only when
        # the connection is not open yet (or its purger's loop ended), and the row
        # (value, version) is the tuple sqlite3 made (no row factory on the reader).
        db = self._db
        purger = self._purger
        if db is None or self._closed or (purger is not None and purger.done()):
            db = await self._reader()
        try:
            row: tuple[bytes, Version] | None = await db.call(
                fetch_one, self._sql.get_versioned, (key, self.clock())
            )
        except (sqlite3.Error, ValueError) as err:
            raise self._wrap(err, "get_versioned") from err
        return row

    async def set_if(
        self,
        key: str,
        value: bytes,
        *,
        version: Version | None,
        expires_at: float | None = None,
    ) -> Version | None:
        if version is None:
            fresh = random.getrandbits(62)  # as a new row gets from _UPSERT
            args: tuple[Any, ...] = (key, value, expires_at, fresh, self.clock())
            new: int | None = await self._write(w.op_insert_if_absent, args)
            return new
        if int_version(version, low=_MIN_INT64, high=_MAX_INT64) is None:
            return None  # not a version this adapter ever handed out
        args = (key, value, expires_at, version, self.clock())
        new = await self._write(w.op_update_if_version, args)
        return new

    async def delete_if(self, key: str, *, version: Version) -> bool:
        if int_version(version, low=_MIN_INT64, high=_MAX_INT64) is None:
            return False
        return bool(await self._write(w.op_delete_if_version, (key, version, self.clock())))

    async def close(self) -> None:
        """Commit queued writes, stop the purge task and close the connection. Idempotent."""
        self._closed = True
        purger, self._purger = self._purger, None
        await self._cancel_task(purger)
        if self._opening is not None and self._opening.locked():
            async with self._opening:
                pass  # let a connect in progress finish (it sees _closed and closes)
        await self._writer.drain()
        reader, writer = self._db, self._writer_db
        self._db = self._writer_db = None
        await _close_all(writer, reader)
        await super().close()

    def _repr_fields(self) -> Mapping[str, Any]:
        return {"path": self.config.path, "table": self.config.table}


async def _close_all(*connections: Worker | None) -> None:
    for db in dict.fromkeys(connections):
        if db is not None:
            await db.close()


def _execute(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> None:
    conn.execute(sql, params)


def _scan_params(start: str, upper: str | None, now: float) -> tuple[Any, ...]:
    if upper is None:
        return (start, now, _SCAN_PAGE)
    return (start, upper, now, _SCAN_PAGE)


def _upper_bound(prefix: str) -> str | None:
    """The smallest string above every string starting with ``prefix`` (``None``: no bound).

    SQLite compares TEXT bytewise in UTF-8, which orders like code points, so
    ``prefix <= key < upper`` is exactly ``key.startswith(prefix)`` and uses
    the primary key index; LIKE or GLOB wildcards never come into play.
    """
    chars = list(prefix)
    while chars:
        point = ord(chars[-1]) + 1
        if point > 0x10FFFF:
            chars.pop()
            continue
        if 0xD800 <= point <= 0xDFFF:
            point = 0xE000  # surrogates cannot be stored; the next real code point
        chars[-1] = chr(point)
        return "".join(chars)
    return None
