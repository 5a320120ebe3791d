"""Group commit: concurrent writes share one transaction, each caller learns its own result.

A write is queued as an :data:`Op` and the caller awaits its future. When no
batch is in flight, a flush starts at once (an idle writer adds no delay);
writes that arrive while a batch is being committed wait for it and then go
together in the next one. A batch is one function call on the connection's
thread: ``BEGIN IMMEDIATE``, every op, ``COMMIT``. A future is resolved only
after that ``COMMIT`` returned, so no caller hears "done" for an uncommitted
write. A failing op is rolled back alone (statement or savepoint) and fails
only its caller; when the transaction itself fails, every op of the batch fails.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeAlias

from .schema import Statements, begin_immediate, commit, rollback_quietly

__all__ = ["GroupCommit", "Op", "run_batch"]

OpFn: TypeAlias = Callable[..., Any]
Op: TypeAlias = "tuple[OpFn, tuple[Any, ...], bool, asyncio.Future[Any]]"
"""``(function, args, needs_savepoint, future)``; the function runs on the connection thread."""

CHUNK = 500  # keys per IN (...) list, far below SQLite's variable limit


def run_batch(
    conn: sqlite3.Connection,
    sql: Statements,
    ops: Sequence[tuple[OpFn, tuple[Any, ...], bool, object]],
    timeout: float,
) -> list[Any]:
    """Run ``ops`` in one transaction on the connection thread; return one result per op.

    ``ops`` are :data:`Op` tuples (the last item, the caller's future, is not
    used here: a blocking caller passes ``None``). A result is the op's return
    value, or the exception that op raised (its changes rolled back, the
    others kept); a batch of one op raises that op's exception instead. An
    exception out of this function means nothing of the batch was committed.
    """
    begin_immediate(conn, timeout)
    results: list[Any] = []
    try:
        if len(ops) == 1:
            fn, args, _, _ = ops[0]
            results.append(fn(conn, sql, *args))
        else:
            for fn, args, savepoint, _ in ops:
                if savepoint:
                    conn.execute("SAVEPOINT botstate_op")
                try:
                    results.append(fn(conn, sql, *args))
                except Exception as err:
                    if not conn.in_transaction:
                        raise  # SQLite rolled the whole transaction back (disk full, I/O)
                    if savepoint:
                        conn.execute("ROLLBACK TO botstate_op")
                    results.append(err)
                if savepoint:
                    conn.execute("RELEASE botstate_op")
        commit(conn, timeout)
    except BaseException:
        rollback_quietly(conn)
        raise
    return results


# -- ops: each runs inside the batch transaction, on the connection thread ---
def op_set(
    conn: sqlite3.Connection, sql: Statements, key: str, value: bytes, expires_at: float | None
) -> None:
    conn.execute(sql.upsert, (key, value, expires_at))


def op_set_many(
    conn: sqlite3.Connection, sql: Statements, rows: list[tuple[str, bytes, float | None]]
) -> None:
    conn.executemany(sql.upsert, rows)


def op_delete(conn: sqlite3.Connection, sql: Statements, key: str, now: float) -> bool:
    return conn.execute(sql.delete, (key, now)).rowcount > 0


def op_delete_many(conn: sqlite3.Connection, sql: Statements, keys: list[str], now: float) -> int:
    removed = 0
    for start in range(0, len(keys), CHUNK):
        chunk = keys[start : start + CHUNK]
        removed += conn.execute(sql.delete_many(len(chunk)), (*chunk, now)).rowcount
    return removed


def op_insert_if_absent(
    conn: sqlite3.Connection,
    sql: Statements,
    key: str,
    value: bytes,
    expires_at: float | None,
    version: int,
    now: float,
) -> int | None:
    """Insert with the fresh ``version`` if ``key`` is absent or expired; return it or ``None``."""
    params = (key, value, expires_at, version, now)
    return version if conn.execute(sql.insert_if_absent, params).rowcount > 0 else None


def op_update_if_version(
    conn: sqlite3.Connection,
    sql: Statements,
    key: str,
    value: bytes,
    expires_at: float | None,
    version: int,
    now: float,
) -> int | None:
    """Update a live row still at ``version``; return its new version (+1) or ``None``."""
    params = (value, expires_at, key, version, now)
    return version + 1 if conn.execute(sql.update_if_version, params).rowcount > 0 else None


def op_delete_if_version(
    conn: sqlite3.Connection, sql: Statements, key: str, version: int, now: float
) -> bool:
    return conn.execute(sql.delete_if_version, (key, version, now)).rowcount > 0


def op_purge(
    conn: sqlite3.Connection, sql: Statements, now: float, with_values: bool, limit: int
) -> list[tuple[str, bytes, float]] | int:
    """Delete up to ``limit`` expired rows; return them (for events) or just how many."""
    if not with_values:
        return conn.execute(sql.delete_expired, (now, limit)).rowcount
    rows: list[tuple[str, bytes, float]] = conn.execute(sql.select_expired, (now, limit)).fetchall()
    keys = [row[0] for row in rows]
    for start in range(0, len(keys), CHUNK):
        chunk = keys[start : start + CHUNK]
        # The write lock is held since BEGIN IMMEDIATE, so these rows are still the expired ones.
        conn.execute(sql.delete_keys(len(chunk)), chunk)
    return rows


class GroupCommit:
    """Queues writes and commits whatever is queued in one transaction at a time.

    ``run`` executes a list of ops (see :func:`run_batch`) on the connection
    thread. ``wrap`` turns a driver exception into the botstate error a
    caller sees. ``transactions`` and ``writes`` count committed batches and
    the ops in them (``writes / transactions`` is the mean batch size).
    """

    def __init__(
        self,
        run: Callable[[list[Op]], Awaitable[list[Any]]],
        wrap: Callable[[BaseException], BaseException],
    ) -> None:
        self._run = run
        self._wrap = wrap
        self._pending: list[Op] = []
        self._flusher: asyncio.Task[None] | None = None
        self.transactions = 0
        self.writes = 0

    async def submit(self, fn: OpFn, args: tuple[Any, ...], savepoint: bool = False) -> Any:
        """Queue one op and wait until its batch is committed; return the op's result."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((fn, args, savepoint, future))
        if self._flusher is None:
            self._flusher = loop.create_task(self._flush(), name="botstate-sqlite-group-commit")
        return await future

    async def drain(self) -> None:
        """Wait until every queued write has been committed or failed."""
        while self._flusher is not None:
            await asyncio.shield(self._flusher)

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    results = await self._run(batch)
                except BaseException as err:
                    for *_, future in batch:
                        if not future.done():
                            future.set_exception(self._failure(err))
                    if isinstance(err, asyncio.CancelledError):
                        raise
                    continue
                self.transactions += 1
                self.writes += len(batch)
                for (*_, future), result in zip(batch, results, strict=True):
                    if future.done():
                        continue  # the caller was cancelled; the write is committed anyway
                    if isinstance(result, BaseException):
                        future.set_exception(self._failure(result))
                    else:
                        future.set_result(result)
        finally:
            self._flusher = None

    def _failure(self, err: BaseException) -> BaseException:
        wrapped = self._wrap(err)
        if wrapped is not err:
            wrapped.__cause__ = err
        return wrapped
