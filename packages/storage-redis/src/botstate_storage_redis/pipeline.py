"""Auto-pipelining: commands issued concurrently leave together in one round trip.

One :class:`AutoPipeline` owns one redis-py connection, made by the client's
connection pool (``ConnectionPool.make_connection``) with the pool's settings:
timeouts, credentials, ``client_name``, ``health_check_interval``. A caller
that finds it idle sends its command at once (no added latency for a lone
sequential caller). Commands issued while a round trip is in flight wait in a
queue and leave together, as one non-transactional pipeline, as soon as the
connection is free; each caller gets its own reply or its own error.

Before a round trip that follows a quiet spell, the connection is checked
the way the pool checks a connection it hands out
(``ConnectionPool.ensure_connection``: connect if needed, and replace a
connection the server closed or that has unread data; redis-py 8 skips that
check on RESP3 connections, so the adapter builds its clients with RESP2).
Every round trip then runs redis-py's health check (a ``PING`` when the
connection has been idle longer than ``health_check_interval``; off when that
is 0). Only redis-py API present from 5.0.8 to 8.x is used.

Replies are the raw protocol values (``b"OK"``, ``bytes``, ``int``, lists),
without redis-py's per-command response callbacks. A Redis error reply
(``ResponseError``) belongs to its command only; a connection error or
timeout fails every command of the round trip and drops the connection, which
is re-opened by the next command. After :meth:`AutoPipeline.aclose` nothing
re-opens it: commands fail with ``ConnectionError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import Any

from redis.asyncio.connection import AbstractConnection, ConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

__all__ = ["AutoPipeline"]

Command = Sequence[Any]
_Waiter = tuple[Command, "asyncio.Future[Any]"]

# A connection idle this long is checked before use, so a server restart that
# happened while we were idle costs a reconnect instead of a failed command.
# Back-to-back round trips skip the check: it costs a tenth to a quarter of a
# local round trip (more with hiredis), and a connection that just answered is fine.
CHECK_AFTER_IDLE = 0.25


class AutoPipeline:
    """Sends commands over one connection, batching those that arrive while it is busy."""

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool
        self._conn: AbstractConnection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: list[_Waiter] = []
        self._busy = False
        self._drainer: asyncio.Task[None] | None = None
        self._last_used = 0.0
        self._closed = False
        self.round_trips = 0
        """Round trips made so far (one per pipeline sent)."""
        self.commands = 0
        """Commands sent so far; ``commands / round_trips`` is the mean batch size."""

    async def execute(self, command: Command) -> Any:
        """Send one command and return its raw reply; raise its error."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._rebind(loop)
        if self._busy:
            future: asyncio.Future[Any] = loop.create_future()
            self._queue.append((command, future))
            reply = await future
        else:
            self._busy = True
            try:
                reply = (await self._round_trip((command,)))[0]
            finally:
                self._after_round_trip(loop)
        if isinstance(reply, ResponseError):
            raise reply
        return reply

    async def execute_many(self, commands: Sequence[Command]) -> list[Any]:
        """Send ``commands`` (in order, in one round trip when idle); return replies or errors.

        A ``ResponseError`` is returned in its command's place; a connection
        error or timeout is raised.
        """
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._rebind(loop)
        if self._busy:
            futures = [loop.create_future() for _ in commands]
            self._queue.extend(zip(commands, futures, strict=True))
            return list(await asyncio.gather(*futures))
        self._busy = True
        try:
            return await self._round_trip(commands)
        finally:
            self._after_round_trip(loop)

    def _after_round_trip(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._queue:
            self._drainer = loop.create_task(self._drain())
        else:
            self._busy = False

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                try:
                    replies = await self._round_trip([command for command, _ in batch])
                except BaseException as err:
                    failure = _closed_error() if self._closed else err
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(failure)
                    if isinstance(err, asyncio.CancelledError):
                        raise
                    continue
                for (_, future), reply in zip(batch, replies, strict=True):
                    if not future.done():
                        future.set_result(reply)
                # Let the callers just woken issue their next commands, so they
                # join the next batch instead of each starting a round trip.
                await asyncio.sleep(0)
        finally:
            self._busy = False
            self._drainer = None
            for _, future in self._queue:  # only left over if we were cancelled
                if future.done():
                    continue
                if self._closed:
                    future.set_exception(_closed_error())
                else:
                    future.cancel()
            self._queue = []

    async def _round_trip(self, commands: Sequence[Command]) -> list[Any]:
        if self._closed:
            raise _closed_error()
        conn = self._conn
        if conn is None:
            conn = self._conn = self._pool.make_connection()  # type: ignore[no-untyped-call]
        try:
            if not conn.is_connected or time.monotonic() - self._last_used > CHECK_AFTER_IDLE:
                # Connects, or replaces a connection the server has closed meanwhile;
                # raises redis-py's ConnectionError/TimeoutError if it cannot.
                await self._pool.ensure_connection(conn)
            # check_health: redis-py's PING after health_check_interval of idleness.
            await conn.send_packed_command(conn.pack_commands(commands), check_health=True)
            self.round_trips += 1
            self.commands += len(commands)
            replies: list[Any] = []
            for _ in commands:
                try:
                    replies.append(await conn.read_response())
                except ResponseError as err:
                    replies.append(err)
        except BaseException:
            # A connect cut short or replies half read:
            # the connection is unusable now.
            await conn.disconnect(nowait=True)
            raise
        self._last_used = time.monotonic()
        return replies

    def _rebind(self, loop: asyncio.AbstractEventLoop) -> None:
        """First use, or use from another event loop: the old connection is unusable there."""
        self._loop = loop
        self._conn = None
        self._queue = []
        self._busy = False
        self._drainer = None

    async def aclose(self) -> None:
        """Close the connection for good; commands still queued fail with ``ConnectionError``."""
        self._closed = True
        drainer, self._drainer = self._drainer, None
        if drainer is not None and not drainer.done():
            drainer.cancel()
            # _drain hands every error to its callers; only our cancel comes back.
            with contextlib.suppress(asyncio.CancelledError):
                await drainer
        conn, self._conn = self._conn, None
        if conn is not None and self._loop is asyncio.get_running_loop():
            await conn.disconnect()


def _closed_error() -> RedisConnectionError:
    return RedisConnectionError("the auto-pipeline connection is closed")
