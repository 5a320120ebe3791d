"""Locks: per-key asyncio locks, and the one-holder-per-key lock ``Storage.lock`` returns."""

from __future__ import annotations

import logging
import math
import time
from types import TracebackType
from typing import TYPE_CHECKING

from .errors import ConflictError, UsageError
from .leases import Lease

if TYPE_CHECKING:
    import asyncio  # imported where used: `import botstate` loads no asyncio

__all__ = ["KeyedLock", "Lock"]

logger = logging.getLogger("botstate")


class KeyedLock:
    """A lock per key; an entry exists only while a task holds or waits for it.

    >>> locks = KeyedLock()
    >>> async def handler():
    ...     async with locks.hold("chat:1"):
    ...         ...

    Taking a free key is one dict insert, with no await and no lock object
    (sessions take one per handler); waiters queue first come, first served,
    and a release hands the lock straight to the first of them.
    """

    def __init__(self) -> None:
        # A held key's waiters: a future per waiting task, first come first served,
        # resolved when the lock is handed to it.
        self._locks: dict[str, list[asyncio.Future[None]]] = {}

    def __len__(self) -> int:
        """How many keys currently have a lock object (held or awaited)."""
        return len(self._locks)

    def hold(self, key: str) -> Hold:
        """The lock of ``key``: ``async with`` it, or ``acquire()``/``release()`` it once."""
        return Hold(self._locks, key)

    def take(self, key: str) -> list[asyncio.Future[None]] | None:
        """Hold the lock of ``key`` if it is free (no await, no lock object): the key's
        waiter list, to pass to :meth:`give_back` once; ``None`` if it is taken."""
        locks = self._locks
        if key in locks:
            return None
        waiters: list[asyncio.Future[None]] = []
        locks[key] = waiters
        return waiters

    def give_back(self, key: str, waiters: list[asyncio.Future[None]]) -> None:
        """Release the lock of ``key`` taken by :meth:`take` (``waiters`` is what it returned)."""
        if waiters:
            _hand_over(self._locks, key, waiters)
        else:
            del self._locks[key]  # nobody waits: the usual case, without a call

    def try_hold(self, key: str) -> Hold | None:
        """The lock of ``key``, held, if it was free (no await); ``None`` if it is taken."""
        if key in self._locks:
            return None
        hold = Hold(self._locks, key)
        hold._held = self._locks[key] = []
        return hold


def _time_out(handed: asyncio.Future[None]) -> None:
    """End a wait for the lock (a timer's callback), unless it was handed over meanwhile."""
    if not handed.done():
        handed.set_exception(TimeoutError())


class Hold:
    """One task's use of the lock of one key (from :meth:`KeyedLock.hold`)."""

    __slots__ = ("_held", "_key", "_locks")

    def __init__(self, locks: dict[str, list[asyncio.Future[None]]], key: str) -> None:
        self._locks = locks
        self._key = key
        self._held: list[asyncio.Future[None]] | None = None  # the key's waiters, once held

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it (no await); ``False`` if it is taken."""
        if self._key in self._locks:
            return False
        self._held = self._locks[self._key] = []
        return True

    async def acquire(self, timeout: float = math.inf) -> bool:
        """Wait up to ``timeout`` seconds for the lock; ``False`` if it stayed taken."""
        if self.try_acquire():
            return True  # at once when nobody else holds or waits
        if timeout <= 0:
            return False
        import asyncio  # only when waiting: a free key is taken without it

        waiters = self._locks[self._key]
        loop = asyncio.get_running_loop()
        handed: asyncio.Future[None] = loop.create_future()
        waiters.append(handed)
        # Not asyncio.wait_for: before Python 3.12 it returns the result instead of
        # raising when the task is cancelled just as the lock is handed to it, so a
        # cancelled task would go on holding the lock.
        timer = None if timeout == math.inf else loop.call_later(timeout, _time_out, handed)
        try:
            await handed
        except BaseException as err:
            if handed.done() and not handed.cancelled() and handed.exception() is None:
                # Handed the lock just as the wait ended: pass it on.
                self._held = waiters
                self.release()
            elif handed in waiters:  # a release may have dropped it already
                handed.cancel()
                waiters.remove(handed)
            if isinstance(err, TimeoutError):  # from _time_out; a cancellation is raised
                return False
            raise
        finally:
            if timer is not None:
                timer.cancel()
        self._held = waiters
        return True

    def release(self) -> None:
        """Release the lock (no-op if this hold does not have it)."""
        waiters, self._held = self._held, None
        if waiters is not None:
            _hand_over(self._locks, self._key, waiters)

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _hand_over(
    locks: dict[str, list[asyncio.Future[None]]], key: str, waiters: list[asyncio.Future[None]]
) -> None:
    """Pass the held lock of ``key`` to its first waiter still waiting, or free the key."""
    while waiters:
        handed = waiters.pop(0)  # waiters are few: a list beats a deque to create
        if not handed.done():
            handed.set_result(None)  # the lock is that waiter's now
            return
    del locks[key]


class Lock:
    """One holder of ``key`` at a time: what :meth:`Storage.lock` returns.

    Use it once, as ``async with storage.lock(key) as lock:`` (or
    ``acquire()`` then ``release()``). In-process waiters queue on a per-key
    asyncio lock; on ATOMIC storages the holder then takes a lease in the
    store, so the lock also holds across processes and hosts. ``held`` says
    whether it is held now; ``lost`` whether its lease expired or was taken
    over while held (then leaving the ``async with`` block raises
    :class:`~botstate.errors.ConflictError`).
    """

    def __init__(self, key: str, local: Hold, lease: Lease | None, *, timeout: float) -> None:
        self.key = key
        self.timeout = timeout
        self._local = local
        self._lease = lease
        self._state = "new"  # -> "acquiring" -> "held" -> "released"

    @property
    def held(self) -> bool:
        """Acquired, not released, and (for a lease) not lost."""
        return self._state == "held" and (self._lease is None or self._lease.held)

    @property
    def lost(self) -> bool:
        """The lease expired or was taken over while held (always ``False`` in-process)."""
        return self._lease is not None and self._lease.lost

    async def acquire(self) -> None:
        """Wait for the lock; ``ConflictError`` after ``timeout`` seconds (``0``: one try)."""
        if self._state != "new":
            raise UsageError(f"lock {self.key!r} was already acquired once; get a new one")
        self._state = "acquiring"
        started = time.monotonic() if self._lease is not None else 0.0
        try:
            if not await self._local.acquire(self.timeout):
                raise ConflictError(
                    f"lock {self.key!r} still held by another task of this process "
                    f"after {self.timeout}s"
                )
            if self._lease is not None:
                try:
                    await self._lease.acquire(max(0.0, self.timeout - time.monotonic() + started))
                except BaseException:
                    self._local.release()
                    raise
        except BaseException:
            self._state = "released"
            raise
        self._state = "held"

    async def release(self) -> None:
        """Release the lock; a no-op unless it is held.

        It runs to the end even if the caller is cancelled meanwhile. A storage
        error while giving up the lease is raised (the lease then expires by
        itself after ``ttl``); a lost lease only sets :attr:`lost`.
        """
        if self._state != "held":
            return
        self._state = "released"
        if self._lease is None:
            self._local.release()
        else:
            await self._lease.release(then=self._local.release)

    async def __aenter__(self) -> Lock:
        await self.acquire()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.release()
        except Exception as err:
            if exc is None:
                raise
            logger.warning("releasing lock %r failed: %s", self.key, err)
            return
        if self.lost and exc is None:
            raise ConflictError(
                f"lock {self.key!r} was lost while held (its lease expired or was taken over, "
                "e.g. after renewals failed for ttl seconds): another holder may have run "
                "at the same time"
            )

    def __repr__(self) -> str:
        return f"Lock({self.key!r}, {self._state}{', lost' if self.lost else ''})"
