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

Inline calls. A hop to the loop thread and back costs two thread switches
(about 30 µs on a small VM, 8 µs for a bare lock ping-pong), ten times a
memory ``get``. So an adapter that only touches in-process state (it declares
the class attribute ``runs_inline = True``, as the memory adapter does) gets
its plain operations started in the calling thread instead: the loop thread
holds ``LoopThread.lock`` whenever it runs callbacks and lends it out only
while it waits in ``select()``, so an inline call runs exactly as if it were
one more callback between two of the loop's own, with the loop set as the
running loop. If the coroutine finishes in that one step (the usual case) no
other thread is involved; if it suspends, the rest of it is handed to the
loop thread and awaited there, so waiting is never done while holding the lock.
"""

from __future__ import annotations

import asyncio
import logging
import os
import selectors
import sys
import threading
import weakref

# Low-level hooks asyncio exports for event loop implementations (since 3.7):
# an inline call marks botstate's loop as running in the calling thread for
# the duration of its step, so code inside finds it (create_task, futures).
from asyncio import _get_running_loop, _set_running_loop
from collections.abc import Awaitable, Callable, Coroutine, Generator
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
        self.lock = threading.Lock()
        """Held by whoever runs code on the loop: its thread, or one inline call."""
        self.try_lock, self.unlock = self.lock.acquire, self.lock.release  # hot path, bound once
        self.loop_wants_lock = False
        """The loop thread waits for :attr:`lock`: no inline call now (for good after a fork)."""
        self.loop = _Loop(_LendingSelector(self))
        self.pid = os.getpid()
        _every.add(self)
        self._started = threading.Event()
        self.thread = threading.Thread(target=self._main, name=name, daemon=True)
        self.thread.start()
        self._started.wait()

    def _main(self) -> None:
        self.lock.acquire()
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
        running = _get_running_loop()
        if running is None:
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
        finish: bool = False,
    ) -> T:
        """Run ``coro`` on the loop and block until it ends; return or raise its outcome.

        Raises :class:`UsageError` (and runs nothing) when called from a
        thread that runs an event loop, or from a forked child. If the wait is
        interrupted (``KeyboardInterrupt``), ``coro`` is cancelled; if it
        finished anyway, ``undo(result)`` runs on the loop, so an interrupted
        ``__enter__`` never leaves a lock held. With ``finish``, an interrupted
        wait leaves ``coro`` to run to its end on the loop instead (an
        ``__exit__`` that releases what the block held must not be cut short).
        """
        try:
            self._check_caller()
        except BaseException:
            coro.close()
            raise
        return self._hand_over(_Call(coro, undo, finish))

    def run_inline(self, coro: Coroutine[Any, Any, T]) -> T:
        """As :meth:`run`, but start ``coro`` in the calling thread when the loop is idle.

        Only for coroutines that touch nothing but in-process state and need
        no current task (operations of an adapter with ``runs_inline = True``).
        ``coro`` runs under :attr:`lock`, so never at the same time as the
        loop's own callbacks or another inline call; when it suspends, the rest
        runs on the loop thread and this thread waits as in :meth:`run`. When
        the loop is busy (or in debug mode, which checks threads) it is a
        plain :meth:`run`.
        """
        loop = self.loop
        if (
            self.loop_wants_lock
            or loop.checks_threads
            or _get_running_loop() is not None
            or not self.try_lock(False)
        ):
            return self.run(coro)  # which raises the UsageError, if any
        _set_running_loop(loop)
        loop.inline = True
        try:
            yielded = coro.send(None)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        finally:
            loop.inline = False
            _set_running_loop(None)
            self.unlock()
            if loop.scheduled_inline:
                # The step left callbacks or timers for the loop, asleep in select().
                loop.scheduled_inline = False
                loop.call_soon_threadsafe(_nothing)
        return self._hand_over(_Call(_Resumed(coro, yielded), None))

    def call_inline(self, fn: Callable[..., T], /, *args: Any) -> T:
        """Run the plain function ``fn(*args)`` in the calling thread under :attr:`lock`.

        For the blocking twins of a ``runs_inline`` adapter: ``fn`` never runs
        beside the loop's own callbacks, but no event loop is running for it,
        so it must not start tasks (a twin that would needs to return
        ``NotImplemented`` having done nothing). Returns ``NotImplemented``
        without running ``fn`` when the lock cannot be taken now (the loop is
        busy), or the caller runs an event loop or forked: the caller then
        falls back to :meth:`run`, which raises the ``UsageError`` if any.
        """
        if self.loop_wants_lock or _get_running_loop() is not None or not self.try_lock(False):
            return NotImplemented  # type: ignore[no-any-return]
        try:
            return fn(*args)
        finally:
            self.unlock()

    def call_here(self, fn: Callable[..., T], /, *args: Any) -> T:
        """Run the blocking function ``fn(*args)`` in the calling thread.

        For thread-safe blocking twins (see ``BlockingOps``): refuses, as
        :meth:`run` does, a forked child and a thread that runs an event loop.
        """
        self._check_caller()
        return fn(*args)

    def _hand_over(self, call: _Call[T]) -> T:
        # Everything up to having the outcome in hand is inside the try, with no
        # function call after the wait (a call is where a pending Ctrl-C is raised):
        # an interrupt while queueing may come after the start was queued (abandon()
        # then runs after it, or in its place), one after the wait undoes the result.
        try:
            self.loop.call_soon_threadsafe(call.start, self.loop)
            call.done.acquire()
            error = call.error
            if error is None:
                return call.result
        except BaseException:
            self.loop.call_soon_threadsafe(call.abandon, self.loop)
            raise
        call.error = None  # no reference cycle through the traceback
        raise error

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


class _LendingSelector(selectors.DefaultSelector):
    """The loop's selector: the loop thread lends out its lock while it waits in ``select``."""

    def __init__(self, owner: LoopThread) -> None:
        super().__init__()
        self._owner = owner

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        owner = self._owner
        owner.lock.release()
        try:
            return super().select(timeout)
        finally:
            # Inline callers back off while the loop asks for its lock, so a
            # stream of inline calls from many threads cannot starve the loop.
            owner.loop_wants_lock = True
            owner.lock.acquire()
            owner.loop_wants_lock = False


class _Loop(asyncio.SelectorEventLoop):
    """The loop of a :class:`LoopThread`; notices when an inline step schedules work.

    The loop thread sleeps in ``select()`` with a timeout computed before the
    inline step ran, so a callback or timer added by the step (a sweeper
    started, an expiry callback's task) needs a wake-up afterwards.
    """

    def __init__(self, selector: selectors.BaseSelector) -> None:
        self.checks_threads = False
        super().__init__(selector)
        self.inline = False
        self.scheduled_inline = False

    def set_debug(self, enabled: bool) -> None:
        # Debug mode makes call_soon() refuse other threads: no inline calls then.
        self.checks_threads = enabled
        super().set_debug(enabled)

    # Typed loosely (typeshed's signatures use TypeVarTuple): arguments pass through as given.
    def call_soon(  # type: ignore[override]
        self, callback: Any, *args: Any, context: Any = None
    ) -> asyncio.Handle:
        if self.inline:
            self.scheduled_inline = True
        return super().call_soon(callback, *args, context=context)

    def call_at(  # type: ignore[override]
        self, when: float, callback: Any, *args: Any, context: Any = None
    ) -> asyncio.TimerHandle:
        if self.inline:
            self.scheduled_inline = True
        return super().call_at(when, callback, *args, context=context)


def _nothing() -> None:
    """A callback whose only purpose is to wake the loop up."""


class _Resumed(Generic[T]):
    """Awaiting this continues ``coro``, whose first step ran elsewhere and yielded ``yielded``.

    What the task awaiting it sends or throws (a future's completion, a
    cancellation) goes on into ``coro``, exactly as if the task had run
    ``coro`` from the start.
    """

    __slots__ = ("coro", "yielded")

    def __init__(self, coro: Coroutine[Any, Any, T], yielded: Any) -> None:
        self.coro = coro
        self.yielded = yielded

    def close(self) -> None:
        """Close ``coro`` without running the rest of it."""
        self.coro.close()

    def __await__(self) -> Generator[Any, Any, T]:
        coro, value = self.coro, self.yielded
        self.yielded = None
        while True:
            try:
                sent = yield value
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as err:  # cancellation, handed on to coro
                try:
                    value = coro.throw(err)
                except StopIteration as stop:
                    return stop.value  # type: ignore[no-any-return]
            else:
                try:
                    value = coro.send(sent)
                except StopIteration as stop:
                    return stop.value  # type: ignore[no-any-return]


# Fire-and-forget tasks (closing an abandoned iterator) stay referenced until done.
_background: set[asyncio.Task[Any]] = set()


class _Call(Generic[T]):
    """One blocking call: the coroutine, its task on the loop, and its outcome.

    ``done`` is a plain lock, taken at creation and released by the loop
    when the outcome is known: the cheapest way for one thread to wait for
    another (no Future, no Condition).
    """

    __slots__ = ("abandoned", "coro", "done", "error", "finish", "result", "task", "undo")

    def __init__(
        self,
        coro: Coroutine[Any, Any, T] | _Resumed[T],
        undo: Callable[[T], Awaitable[object]] | None,
        finish: bool = False,
    ) -> None:
        self.coro = coro
        self.undo = undo
        self.finish = finish
        self.done = threading.Lock()
        self.done.acquire()
        self.task: asyncio.Task[None] | None = None
        self.result: T = _MISSING
        self.error: BaseException | None = None
        self.abandoned = False

    # -- on the loop thread -------------------------------------------------
    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.task is not None:
            return  # abandon() started it already
        if self.abandoned and not self.finish:
            self.coro.close()
            return
        if sys.version_info >= (3, 12):
            # The first step runs now, inside the task, not on the next turn of the
            # loop: a call that needs no I/O skips one select() (a hop costs ~20% less).
            self.task = asyncio.Task(self._drive(), loop=loop, eager_start=True)
        else:
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
        """The caller stopped waiting: cancel, and undo a result nobody will use.

        A ``finish`` call is left to run to its end instead. Runs after
        :meth:`start` if that was queued (the loop keeps the order), else alone.
        """
        self.abandoned = True
        if self.task is None:
            # The interrupt came before start() was queued: it never will be.
            if self.finish:
                self.start(loop)
            else:
                self.coro.close()
            return
        if self.finish:
            return
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


_shared: LoopThread | None = None
_shared_lock = threading.Lock()
_every: weakref.WeakSet[LoopThread] = weakref.WeakSet()  # marked in a forked child


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
    for parents in _every:
        parents.loop_wants_lock = True  # no inline call: each goes to run(), which refuses


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)
