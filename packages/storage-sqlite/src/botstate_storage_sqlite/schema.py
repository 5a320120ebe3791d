"""The table layout, its stored schema version, and the SQL run against it.

One data table per adapter (``table`` option, default ``botstate``)::

    CREATE TABLE botstate (
        key        TEXT PRIMARY KEY NOT NULL,   -- full key, namespace included
        value      BLOB NOT NULL,
        expires_at REAL,                        -- absolute UNIX seconds, NULL = never
        version    INTEGER NOT NULL             -- changes on every write (compare-and-set)
    );
    CREATE INDEX "botstate~expires_at" ON botstate (expires_at) WHERE expires_at IS NOT NULL;

and one shared row per data table in ``botstate_meta(name, schema_version)``,
so a later release can migrate old files and an older release refuses a newer
file instead of misreading it. The functions here run on the connection's own
thread (inside aiosqlite's worker), never on the event loop.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from botstate import ConfigError

from .config import META_TABLE, SqliteConfig

__all__ = ["SCHEMA_VERSION", "Statements", "begin_immediate", "is_busy", "prepare"]

SCHEMA_VERSION = 1
"""The layout this release reads and writes; stored per table in ``botstate_meta``."""

_LIVE = "(expires_at IS NULL OR expires_at > ?)"
# A fresh row gets a random 62-bit version and every update adds one, so a
# version never repeats while a key exists (and across delete and re-create
# only with odds of 2**-62), so compare-and-set cannot be fooled by ABA.
_UPSERT = (
    "INSERT INTO {t} (key, value, expires_at, version) "
    "VALUES (?, ?, ?, (random() & 4611686018427387903)) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
    "expires_at = excluded.expires_at, version = {t}.version + 1"
)
_COLUMNS = {"key", "value", "expires_at", "version"}
T = TypeVar("T")
SQLITE_BUSY = 5
SQLITE_LOCKED = 6


@dataclass(frozen=True)
class Statements:
    """Every SQL statement of one table, built once from the validated name."""

    name: str
    """The table name as configured (checked by :class:`SqliteConfig`)."""
    table: str
    """The quoted name, as it appears in SQL text."""
    get: str
    has: str
    get_versioned: str
    get_expiry: str
    scan_first: str
    scan_first_bounded: str
    scan_next: str
    scan_next_bounded: str
    any_expired: str
    upsert: str
    insert_if_absent: str
    update_if_version: str
    delete: str
    delete_if_version: str
    select_expired: str
    delete_expired: str
    table_info: str
    create_table: str
    create_index: str

    @classmethod
    def for_config(cls, config: SqliteConfig) -> Statements:
        """The statements for ``config.table`` (a plain identifier: SqliteConfig checked it)."""
        t = f'"{config.table}"'
        scan = f"SELECT key FROM {t} WHERE key {{op}} ?{{bound}} AND {_LIVE} ORDER BY key LIMIT ?"
        return cls(
            name=config.table,
            table=t,
            get=f"SELECT value FROM {t} WHERE key = ? AND {_LIVE}",
            has=f"SELECT 1 FROM {t} WHERE key = ? AND {_LIVE}",
            get_versioned=f"SELECT value, version FROM {t} WHERE key = ? AND {_LIVE}",
            get_expiry=f"SELECT expires_at FROM {t} WHERE key = ? AND {_LIVE}",
            scan_first=scan.format(op=">=", bound=""),
            scan_first_bounded=scan.format(op=">=", bound=" AND key < ?"),
            scan_next=scan.format(op=">", bound=""),
            scan_next_bounded=scan.format(op=">", bound=" AND key < ?"),
            any_expired=f"SELECT 1 FROM {t} WHERE expires_at <= ? LIMIT 1",
            upsert=_UPSERT.format(t=t),
            # Only an expired row may be replaced (it is absent: it gets a fresh version
            # like a new row); a live one makes this a no-op (rowcount 0).
            insert_if_absent=(
                f"INSERT INTO {t} (key, value, expires_at, version) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
                "expires_at = excluded.expires_at, version = excluded.version "
                f"WHERE {t}.expires_at IS NOT NULL AND {t}.expires_at <= ?"
            ),
            update_if_version=(
                f"UPDATE {t} SET value = ?, expires_at = ?, version = version + 1 "
                f"WHERE key = ? AND version = ? AND {_LIVE}"
            ),
            delete=f"DELETE FROM {t} WHERE key = ? AND {_LIVE}",
            delete_if_version=f"DELETE FROM {t} WHERE key = ? AND version = ? AND {_LIVE}",
            select_expired=(
                f"SELECT key, value, expires_at FROM {t} WHERE expires_at <= ? "
                "ORDER BY expires_at LIMIT ?"
            ),
            delete_expired=(
                f"DELETE FROM {t} WHERE key IN (SELECT key FROM {t} WHERE expires_at <= ? LIMIT ?)"
            ),
            table_info=f"PRAGMA table_info({t})",
            create_table=(
                f"CREATE TABLE IF NOT EXISTS {t} (key TEXT PRIMARY KEY NOT NULL, "
                "value BLOB NOT NULL, expires_at REAL, version INTEGER NOT NULL)"
            ),
            # "~" cannot occur in a table name, so no table's index can take another
            # table's name (0.1 named it "<table>_expires_at": table=bot_expires_at collided).
            create_index=(
                f'CREATE INDEX IF NOT EXISTS "{config.table}~expires_at" ON {t} (expires_at) '
                "WHERE expires_at IS NOT NULL"
            ),
        )

    def select_many(self, count: int) -> str:
        marks = ",".join("?" * count)
        return f"SELECT key, value FROM {self.table} WHERE key IN ({marks}) AND {_LIVE}"

    def delete_many(self, count: int) -> str:
        marks = ",".join("?" * count)
        return f"DELETE FROM {self.table} WHERE key IN ({marks}) AND {_LIVE}"

    def delete_keys(self, count: int) -> str:
        """Delete ``count`` keys whatever their expiry (the purge, under the write lock)."""
        marks = ",".join("?" * count)
        return f"DELETE FROM {self.table} WHERE key IN ({marks})"


def is_busy(err: BaseException) -> bool:
    """Whether ``err`` means another connection holds a lock we need (retry later)."""
    if not isinstance(err, sqlite3.OperationalError):
        return False
    code = getattr(err, "sqlite_errorcode", None)  # Python 3.11+
    if code is not None:
        return code & 0xFF in (SQLITE_BUSY, SQLITE_LOCKED)
    text = str(err)
    return "locked" in text or "busy" in text


def begin_immediate(conn: sqlite3.Connection, timeout: float) -> None:
    """Take the write lock, retrying SQLITE_BUSY with backoff for up to ``timeout`` seconds.

    The connection's busy handler already waits inside SQLite; the loop also
    covers the cases where SQLite answers BUSY without calling it (WAL
    recovery, a snapshot that cannot be upgraded).
    """
    _retry_busy(lambda: conn.execute("BEGIN IMMEDIATE"), timeout)


def commit(conn: sqlite3.Connection, timeout: float) -> None:
    """COMMIT, retrying while readers block it (rollback-journal modes); roll back on failure."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        try:
            conn.execute("COMMIT")
            return
        except sqlite3.OperationalError as err:
            left = deadline - time.monotonic()
            if is_busy(err) and left > 0 and conn.in_transaction:
                time.sleep(min(delay, left))
                delay = min(delay * 2, 0.05)
                continue
            rollback_quietly(conn)
            raise


def _retry_busy(fn: Callable[[], T], timeout: float) -> T:
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        try:
            return fn()
        except sqlite3.OperationalError as err:
            left = deadline - time.monotonic()
            if not is_busy(err) or left <= 0:
                raise
            time.sleep(min(delay, left))
            delay = min(delay * 2, 0.05)


def rollback_quietly(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):  # the original error is the one to report
            conn.execute("ROLLBACK")


def prepare(conn: sqlite3.Connection, config: SqliteConfig, sql: Statements) -> str:
    """Apply the pragmas and create or check the schema; return the journal mode in effect.

    Raises :class:`ConfigError` for a file written by a newer release or a
    foreign table of the same name.
    """
    conn.execute(f"PRAGMA busy_timeout = {int(config.busy_timeout * 1000)}")
    mode = config.journal_mode
    if not config.in_memory:
        row = _retry_busy(
            lambda: conn.execute(f"PRAGMA journal_mode = {config.journal_mode}").fetchone(),
            config.busy_timeout,
        )
        mode = str(row[0]).upper() if row else mode
    conn.execute(f"PRAGMA synchronous = {config.synchronous}")
    if _stored_version(conn, config.table) == SCHEMA_VERSION:
        return mode  # the usual case: no write lock needed to open
    begin_immediate(conn, config.busy_timeout)
    try:
        _create_or_check(conn, sql)
        commit(conn, config.busy_timeout)
    except BaseException:
        rollback_quietly(conn)
        raise
    return mode


def _stored_version(conn: sqlite3.Connection, table: str) -> int | None:
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (META_TABLE,)
    ).fetchone()
    if not exists:
        return None
    row = conn.execute(
        f"SELECT schema_version FROM {META_TABLE} WHERE name = ?", (table,)
    ).fetchone()
    return None if row is None else int(row[0])


def _create_or_check(conn: sqlite3.Connection, sql: Statements) -> None:
    table = sql.name
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {META_TABLE} "
        "(name TEXT PRIMARY KEY COLLATE NOCASE, schema_version INTEGER NOT NULL)"
    )
    stored = _stored_version(conn, table)
    if stored is not None and stored > SCHEMA_VERSION:
        raise ConfigError(
            f"table {table!r} uses botstate SQLite schema version {stored}, but this "
            f"botstate-storage-sqlite only knows version {SCHEMA_VERSION}; upgrade the package"
        )
    if stored == SCHEMA_VERSION:
        return  # another process created it while we waited for the lock
    if stored is not None:  # pragma: no cover - no older layout exists yet
        raise ConfigError(f"table {table!r} has schema version {stored}, which cannot be migrated")
    columns = {row[1] for row in conn.execute(sql.table_info)}
    if columns and columns != _COLUMNS:
        raise ConfigError(
            f"table {table!r} already exists with columns {sorted(columns)}, which is not a "
            "botstate table; choose another name with the 'table' option"
        )
    try:
        conn.execute(sql.create_table)
        conn.execute(sql.create_index)
    except sqlite3.OperationalError as err:
        if "already" not in str(err):
            raise
        # Another object (an index or view of another program, or a 0.1 index named
        # "<table>_expires_at") holds the name: retrying can never succeed.
        raise ConfigError(
            f"cannot create table {table!r}: {err}; choose another name with the 'table' option"
        ) from err
    conn.execute(
        f"INSERT INTO {META_TABLE} (name, schema_version) VALUES (?, ?)", (table, SCHEMA_VERSION)
    )
