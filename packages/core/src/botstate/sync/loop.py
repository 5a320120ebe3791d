"""botstate's private event loop for synchronous code: one daemon thread per process.

Every object of :mod:`botstate.sync` wraps an async one that lives on this
loop; a blocking call hands a coroutine to the loop's thread and waits for it.

Why one loop per process (not one per ``SyncStorage``): the async objects a
sync bot combines (a ``Sessions`` over a storage, ``MultiSessions`` over two
storages, locks) must share a loop; a thread per storage would add threads
without adding parallelism (the GIL), and a process that opens storages in
many places still has one extra thread. Why a daemon thread: a process that
never calls ``close()`` must still exit. Threads the adapters start from the
loop (aiosqlite's connection thread, the executor of the DynamoDB adapter)
inherit daemon status from it, so they don't hold up exit either.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Generic, TypeVar

from ..errors import UsageError

__all__ = ["LoopThread", "loop_thread"]

T = TypeVar("T")
logger = logging.getLogger("botstate")

_MISSING: Any = object()


class LoopThread:
    """An event loop running forever on a daemon thread, fed from other threads.

    >>> runner = loop_thread()
    >>> runner.run(storage.get("chat:1"))     # blocks this thread, not the loop

    Use :func:`loop_thread` for the shared instance; objects created on it
    must only be used through it.
    """

    def __init__(self, name: str = "botstate-sync") -> None:
        self.loop = asyncio.new_event_loop()
        self.pid = os.getpid()
        self._started = threading.Event()
        self.thread = threading.Thread(target=self._main, name=name, daemon=True)
        self.thread.start()
        self._started.wait()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._started.set)
        self.loop.run_forever()

    def in_loop_thread(self) -> bool:
        """Whether the calling thread is this loop's own thread."""
        return threading.current_thread() is self.thread

    def _check_caller(self) -> None:
        if os.getpid() != self.pid:
            raise UsageError(
                "this botstate.sync object was created before the process forked; its event "
                "loop and connections stayed in the parent. Open storages in each worker "
                "after forking (e.g. on first use, or in a post-fork hook)."
            )
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            return
        if running is self.loop:
            raise UsageError(
                "botstate.sync was called on botstate's own event loop thread (from an "
                "update() function?), where waiting would deadlock; do the work outside "
                "the function, or use the async API"
            )
        raise UsageError(
            "botstate.sync was called from a thread that runs an event loop, where it would "
            "block that loop (and deadlock if botstate shared it); use the async API there: "
            "botstate.open_storage(...) and `await storage.get(...)`"
        )

    def run(
        self,
        coro: Coroutine[Any, Any, T],
        *,
        undo: Callable[[T], Awaitable[object]] | None = None,
    ) -> T:
        """Run ``coro`` on the loop and block until it ends; return or raise its outcome.

        Raises :class:`UsageError` (and runs nothing) when called from a
        thread that runs an event loop, or from a forked child. If the wait is
        interrupted (``KeyboardInterrupt``), ``coro`` is cancelled; if it
        finished anyway, ``undo(result)`` runs on the loop, so an interrupted
        ``__enter__`` never leaves a lock held.
        """
        try:
            self._check_caller()
        except BaseException:
            coro.close()
            raise
        call: _Call[T] = _Call(coro, undo)
        self.loop.call_soon_threadsafe(call.start, self.loop)
        try:
            call.done.acquire()
        except BaseException:
            self.loop.call_soon_threadsafe(call.abandon, self.loop)
            raise
        return call.outcome()

    def call(self, fn: Callable[[], T]) -> T:
        """Run the plain function ``fn()`` on the loop thread and return its result."""

        async def wrapped() -> T:
            return fn()

        return self.run(wrapped())

    def submit(self, coro: Coroutine[Any, Any, object]) -> None:
        """Start ``coro`` on the loop without waiting (safe from any thread, even the loop's)."""
        if os.getpid() != self.pid:
            coro.close()
            return

        def start() -> None:
            task = self.loop.create_task(coro)
            _background.add(task)
            task.add_done_callback(_background.discard)

        self.loop.call_soon_threadsafe(start)


# Fire-and-forget tasks (closing an abandoned iterator) stay referenced until done.
_background: set[asyncio.Task[Any]] = set()


class _Call(Generic[T]):
    """One blocking call: the coroutine, its task on the loop, and its outcome.

    ``done`` is a plain lock, taken at creation and released by the loop
    when the outcome is known: the cheapest way for one thread to wait for
    another (no Future, no Condition).
    """

    __slots__ = ("abandoned", "coro", "done", "error", "result", "task", "undo")

    def __init__(
        self, coro: Coroutine[Any, Any, T], undo: Callable[[T], Awaitable[object]] | None
    ) -> None:
        self.coro = coro
        self.undo = undo
        self.done = threading.Lock()
        self.done.acquire()
        self.task: asyncio.Task[None] | None = None
        self.result: T = _MISSING
        self.error: BaseException | None = None
        self.abandoned = False

    # -- on the loop thread -------------------------------------------------
    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.abandoned:
            self.coro.close()
            return
        self.task = loop.create_task(self._drive())

    async def _drive(self) -> None:
        try:
            self.result = await self.coro
        except BaseException as err:  # handed to the waiting thread, re-raised there
            self.error = err
        finally:
            if self.abandoned:
                await self._undo()
            else:
                self.done.release()

    def abandon(self, loop: asyncio.AbstractEventLoop) -> None:
        """The caller stopped waiting: cancel, and undo a result nobody will use."""
        self.abandoned = True
        if self.task is None:
            return  # start() has not run yet: it will close the coroutine
        if not self.task.done():
            self.task.cancel()
        elif self.error is None:
            task = loop.create_task(self._undo())
            _background.add(task)
            task.add_done_callback(_background.discard)

    async def _undo(self) -> None:
        if self.undo is not None and self.error is None and self.result is not _MISSING:
            undo, self.undo = self.undo, None
            try:
                await undo(self.result)
            except Exception:  # nobody is left to raise it to
                logger.exception("undoing an interrupted call failed")

    # -- on the calling thread -----------------------------------------------
    def outcome(self) -> T:
        if self.error is not None:
            error, self.error = self.error, None  # no reference cycle through the traceback
            raise error
        return self.result


_shared: LoopThread | None = None
_shared_lock = threading.Lock()


def loop_thread() -> LoopThread:
    """The process's shared :class:`LoopThread`, started on first use."""
    global _shared
    shared = _shared
    if shared is not None:
        return shared
    with _shared_lock:
        if _shared is None:
            _shared = LoopThread()
        return _shared


def _forget_after_fork() -> None:
    # The loop's thread does not exist in a forked child: the child gets its own
    # loop on first use, and objects made before the fork refuse to run.
    global _shared, _shared_lock
    _shared = None
    _shared_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)
