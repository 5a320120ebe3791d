"""One ``sqlite3`` connection owned by one daemon thread, called from any event loop.

The adapter needs three things a general asyncio wrapper does not give through
a public API: running a whole function (a group-commit batch) on the
connection's thread, a thread that never keeps the process alive (a bot that
crashes without closing its storage must still exit; every acknowledged write
is already committed), and results delivered to whichever event loop called
(one storage used by two successive ``asyncio.run()`` calls). So the adapter
keeps its own small worker instead of reaching into a wrapper's internals.

Calls run one at a time, in submission order. A caller that is cancelled stops
waiting; the call itself still runs (a write may commit). Plain threads (the
blocking twins botstate.sync uses) submit with :meth:`Worker.call_blocking`:
one hop to the worker and back, no event loop involved.
"""

from __future__ import annotations

import asyncio
import os
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["Worker"]

T = TypeVar("T")

# (fn, args, loop, future) from an event loop; (fn, args, None, _Waiter) from a plain thread.
_Job = tuple[Callable[..., Any], tuple[Any, ...], asyncio.AbstractEventLoop | None, Any]
_STOP = None


class Worker:
    """A daemon thread with one ``sqlite3.Connection``; :meth:`call` runs ``fn(conn, *args)``."""

    def __init__(self, path: str, *, timeout: float, name: str) -> None:
        self._path = path
        self._timeout = timeout
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._conn: sqlite3.Connection | None = None
        self._stopped = False
        # Orders blocking submissions with close(): a job is queued before the stop
        # marker or refused, never left behind it with its caller waiting forever.
        self._submitting = threading.Lock()
        self._name = name
        self._thread: threading.Thread | None = None
        self._forks_seen = _forks_seen

    async def open(self) -> None:
        """Start the thread and connect; ``sqlite3.Error`` if the file cannot be opened."""
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        self._thread = threading.Thread(
            target=self._serve, args=(loop, ready), name=self._name, daemon=True
        )
        self._thread.start()
        try:
            await ready
        except BaseException:
            await self.close()
            raise

    def call(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Queue ``fn(connection, *args)`` for the worker thread; await the future for its result.

        A plain method returning the future (no coroutine around it: one frame
        fewer per read, on both the way in and the way back). Raises
        ``ValueError`` at once if the worker is closed. Call it from a running
        event loop; cancelling the wait cancels the future, not the job.
        """
        if self._stopped:
            raise ValueError("the SQLite connection is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((fn, args, loop, future))
        return future

    def call_blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(connection, *args)`` on the worker thread, blocking this thread until done.

        For threads that run no event loop. Raises ``ValueError`` once the
        worker is closed or in a child forked after it started (the thread
        stayed in the parent), and whatever ``fn`` raised. An interrupted wait
        (``KeyboardInterrupt``) abandons the result, not the worker: the job
        still runs, and the next call is served as usual.
        """
        if self._forks_seen != _forks_seen:
            # The thread exists only in the parent: a job queued here would never run.
            raise ValueError(
                "it belongs to the parent process (opened before this process forked); "
                "open the storage again in this process"
            )
        waiter = _Waiter()
        with self._submitting:
            if self._stopped:
                raise ValueError("the SQLite connection is closed")
            self._jobs.put((fn, args, None, waiter))
        return waiter.wait()  # type: ignore[no-any-return]

    async def close(self) -> None:
        """Finish the calls already queued, close the connection and end the thread."""
        with self._submitting:
            if self._stopped:
                return
            self._stopped = True
            if self._thread is None or not self._thread.is_alive():
                return
            loop = asyncio.get_running_loop()
            done: asyncio.Future[None] = loop.create_future()
            self._jobs.put((_noop, (), loop, done))  # resolved once every earlier call ran
            self._jobs.put(_STOP)
        await done
        await asyncio.to_thread(self._thread.join, 5.0)

    def _serve(self, loop: asyncio.AbstractEventLoop, ready: asyncio.Future[None]) -> None:
        try:
            self._conn = sqlite3.connect(
                self._path, timeout=self._timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as err:
            self._stopped = True
            _deliver(loop, ready, None, err)
            self._fail_queued(err)  # a close() may have queued its marker meanwhile
            return
        _deliver(loop, ready, None, None)
        try:
            while True:
                job = self._jobs.get()
                if job is _STOP:
                    return
                fn, args, job_loop, future = job
                try:
                    result = fn(self._conn, *args)
                except BaseException as err:  # delivered to the caller, like a result
                    if job_loop is None:
                        future.settle(None, err)
                    else:
                        _deliver(job_loop, future, None, err)
                else:
                    if job_loop is None:
                        future.settle(result, None)
                    else:
                        _deliver(job_loop, future, result, None)
        finally:
            self._conn.close()

    def _fail_queued(self, err: BaseException) -> None:
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return
            if job is None:
                continue
            if job[2] is None:
                job[3].settle(None, err)
            else:
                _deliver(job[2], job[3], None, err)


class _Waiter:
    """Where a blocking caller waits for its job's outcome.

    ``done`` is a plain lock, taken at creation and released by the worker
    once the outcome is stored: the cheapest handoff between two threads (no
    future, no condition, no event loop).
    """

    __slots__ = ("done", "error", "result")

    def __init__(self) -> None:
        self.done = threading.Lock()
        self.done.acquire()
        self.result: Any = None
        self.error: BaseException | None = None

    def settle(self, result: Any, error: BaseException | None) -> None:
        """On the worker thread: store the outcome and wake the caller (if still waiting)."""
        self.result, self.error = result, error
        self.done.release()

    def wait(self) -> Any:
        """On the calling thread: block until settled; return the result or raise the error."""
        self.done.acquire()
        error = self.error
        if error is not None:
            self.error = None  # no reference cycle through the traceback
            raise error
        return self.result


_forks_seen = 0  # a worker started before the last fork belongs to the parent


def _after_fork_in_child() -> None:
    global _forks_seen
    _forks_seen += 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _noop(conn: sqlite3.Connection) -> None:
    return None


def _deliver(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[Any],
    result: Any,
    error: BaseException | None,
) -> None:
    # Not contextlib.suppress: this runs once per call, and its context manager would
    # cost the worker's CPU time (counted against the reads on a pinned CPU).
    try:
        loop.call_soon_threadsafe(_settle, future, result, error)
    except RuntimeError:  # the caller's event loop is closed: nobody is waiting any more
        return


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return  # the caller was cancelled
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
