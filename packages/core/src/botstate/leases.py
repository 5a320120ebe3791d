"""Leases: a lock entry with expiry, held across processes and hosts (any ATOMIC adapter).

Internal to :meth:`botstate.storage.Storage.lock`, which adds the in-process
part and the timeout. A lease is the entry ``key`` holding a random token and
expiring ``ttl`` seconds after it was last written; a crashed holder's lease
simply runs out. Taking it is one ``set_if(version=None)``, renewing one
``set_if`` with the version the last write returned, releasing one
``delete_if``: ``set_if`` returns the new version, so no read is needed.

Cancellation never leaves a lease behind. Every write is shielded: a holder
cancelled while its write is in flight waits for the write's outcome and
undoes it; a holder cancelled while releasing waits until the release is
done. The cleanup runs as a task of its own, and the cancelled holder raises
its cancellation only once the cleanup is over. When a write failed and its
outcome is unknown, the entry is read and deleted only if it still holds our
token.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from .clock import Clock
from .contract import StorageAdapter, Version
from .errors import ConflictError

if TYPE_CHECKING:
    import asyncio
else:
    # Imported by the first Lease (every use of asyncio here is by a Lease), so
    # `import botstate` loads no asyncio; resolved once, not per call.
    asyncio = None

__all__ = ["BUSY", "Busy", "Lease"]

logger = logging.getLogger("botstate")

R = TypeVar("R")

_FIRST_DELAY = 0.002
_MAX_DELAY = 0.1


class Busy:
    """What :meth:`Lease._claim` returns when someone else holds the lease now."""

    __slots__ = ()


BUSY = Busy()


class Lease:
    """One holding of the lease ``key`` in ``adapter``; use it once.

    ``background`` keeps the cleanup tasks alive (and lets their owner wait
    for them before closing the adapter). While held, a task renews the
    lease every ``ttl / 3`` seconds; ``lost`` turns true when a renewal or
    the release finds it expired or taken over, or when renewals kept
    failing for ``ttl`` seconds.
    """

    def __init__(
        self,
        adapter: StorageAdapter,
        key: str,
        *,
        ttl: float,
        clock: Clock,
        background: set[asyncio.Task[Any]],
    ) -> None:
        global asyncio
        if asyncio is None:
            import asyncio
        self.key = key
        self.ttl = ttl
        self._adapter = adapter
        self._clock = clock
        self._background = background
        self._token = os.urandom(16)
        self._version: Version | None = None
        self._version_known = True  # False after a write whose outcome is unknown
        self._renewer: asyncio.Task[None] | None = None
        # The first renewal is a timer: most holders release before it is due, and
        # a timer costs far less than a task to start and to stop.
        self._renewal_due: asyncio.TimerHandle | None = None
        self._renewal: asyncio.Future[Version | None] | None = None  # a renewal in flight
        self._held = False
        self._lost = False

    @property
    def held(self) -> bool:
        """Taken, not yet released, and not known to be lost."""
        return self._held and not self._lost

    @property
    def lost(self) -> bool:
        """The lease expired or was taken over while it was held."""
        return self._lost

    # -- taking -----------------------------------------------------------
    async def acquire(self, timeout: float) -> None:
        """Take the lease, retrying with backoff; ``ConflictError`` after ``timeout`` seconds.

        ``timeout=0`` makes exactly one attempt.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        delay = _FIRST_DELAY
        while not await self._take():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise ConflictError(
                    f"lock {self.key!r} still held by another holder after {timeout}s"
                )
            import random  # only when the lease is busy: not a cost of `import botstate`

            await asyncio.sleep(min(remaining, delay * random.uniform(0.5, 1.5)))
            delay = min(delay * 2, _MAX_DELAY)

    async def _take(self) -> bool:
        against = await self._claim()
        if isinstance(against, Busy):
            return False
        write = self._write(against)
        try:
            version = await asyncio.shield(write)
        except BaseException:
            # Cancelled while the write goes on, or failed after it may have landed.
            await _settle(self._undo(write), self._background)
            raise
        if version is None:
            return False
        # No await from here on: a cancellation cannot fall between the write and the renewer.
        self._version = version
        self._held = True
        self._start_renewing()
        return True

    async def _undo(self, write: asyncio.Future[Version | None]) -> None:
        """Remove the lease a cancelled or failed ``_take`` may have written."""
        try:
            try:
                version = await write
            except BaseException:
                await self._unlock_if_ours()  # the outcome is unknown: look
                return
            if version is not None:
                await self._unlock(version)
        except Exception as err:
            logger.warning(
                "could not check for a lock %r that a cancelled or failed acquire may have "
                "written (if it did, the lock expires by itself in %ss): %s",
                self.key,
                self.ttl,
                err,
            )

    # -- renewing ---------------------------------------------------------
    def _renew_soon(self, written: float) -> None:
        """The first renewal is due (``ttl / 3`` after ``written``): start the renewer."""
        self._renewal_due = None
        self._renewer = asyncio.get_running_loop().create_task(self._renew_forever(written))

    async def _renew_forever(self, renewed: float) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                if not await self._renew():
                    break  # expired or taken over
                renewed = loop.time()
            except asyncio.CancelledError:
                raise  # release() settles the renewal in flight
            except Exception as err:  # e.g. StorageUnavailable: retry until the lease runs out
                logger.warning("renewing lock %r failed: %s", self.key, err)
                if loop.time() - renewed >= self.ttl:
                    break
            await asyncio.sleep(self.ttl / 3)
        self._lost = True
        logger.warning("lock %r was lost before it was released", self.key)

    async def _renew(self) -> bool:
        current = await self._current()
        if current is None:
            return False
        renewal = self._renewal = self._write(current)
        try:
            version = await asyncio.shield(renewal)
        except asyncio.CancelledError:
            raise  # keep self._renewal: release() waits for its outcome
        except Exception:
            self._renewal = None
            self._version_known = False  # it may have landed: find out next time
            raise
        self._renewal = None
        if version is None:
            return False
        self._version = version
        return True

    # -- releasing --------------------------------------------------------
    async def release(self, then: Callable[[], None] | None = None) -> None:
        """Give the lease up if it is still ours, then call ``then()``; safe to call twice.

        Runs to the end even if the caller is cancelled meanwhile. A storage
        error while releasing is raised after ``then()`` ran (the lease then
        expires by itself after ``ttl``); a lease found lost sets ``lost``.
        """
        await _settle(self._release(then), self._background)

    async def _release(self, then: Callable[[], None] | None) -> None:
        try:
            if not self._held:
                return
            self._held = False
            await self._stop_renewing()
            if self._lost:
                return
            current = await self._current()
            if current is None or not await self._unlock(current):
                self._lost = True
        finally:
            if then is not None:
                then()

    async def _stop_renewing(self) -> None:
        """Stop the renewer and settle a write it left in flight (its version, or lost)."""
        due, self._renewal_due = self._renewal_due, None
        if due is not None:
            due.cancel()
        renewer, self._renewer = self._renewer, None
        if renewer is not None:
            renewer.cancel()
            await asyncio.gather(renewer, return_exceptions=True)
        renewal, self._renewal = self._renewal, None
        if renewal is not None:  # cancelled mid-renewal: learn the version it wrote
            try:
                renewed = await renewal
            except BaseException:
                self._version_known = False
            else:
                if renewed is None:
                    self._lost = True
                else:
                    self._version = renewed

    async def rewrite(self) -> bool:
        """Write the lease again now (a subclass changed what it holds); ``False`` if lost.

        The renewer pauses meanwhile. Like :meth:`release`, it runs to the end
        even if the caller is cancelled: the write's outcome is known afterwards.
        """
        return await _settle(self._rewrite(), self._background)

    async def _rewrite(self) -> bool:
        if not self.held:
            return False
        await self._stop_renewing()
        try:
            if self._lost or not await self._renew():
                self._lost = True
                return False
        finally:
            if not self._lost:
                self._start_renewing()
        return True

    def _start_renewing(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        self._renewal_due = loop.call_at(now + self.ttl / 3, self._renew_soon, now)

    # -- hooks: what the entry holds --------------------------------------
    async def _claim(self) -> Version | Busy | None:
        """The version to take the lease against (``None``: absent), or :data:`BUSY`."""
        return None

    def _put(self, version: Version | None, expires_at: float) -> Awaitable[Version | None]:
        """Write the lease, held until ``expires_at``, if the entry still has ``version``."""
        return self._adapter.set_if(self.key, self._token, version=version, expires_at=expires_at)

    async def _unlock(self, version: Version) -> bool:
        """Give the lease up if the entry still has ``version``; ``False`` if it had not."""
        return await self._adapter.delete_if(self.key, version=version)

    def _is_ours(self, stored: bytes) -> bool:
        """Whether ``stored`` (the entry's bytes, read back) is our lease."""
        return stored == self._token

    # -- helpers ----------------------------------------------------------
    def _write(self, version: Version | None) -> asyncio.Future[Version | None]:
        """Start writing the lease (take: the claimed version; renew: the current one)."""
        return asyncio.ensure_future(self._put(version, self._clock() + self.ttl))

    async def _current(self) -> Version | None:
        """Our version (read back if a failed write left it unknown); ``None`` if not ours."""
        if self._version_known:
            return self._version
        got = await self._adapter.get_versioned(self.key)
        self._version = got[1] if got is not None and self._is_ours(got[0]) else None
        self._version_known = True
        return self._version

    async def _unlock_if_ours(self) -> None:
        got = await self._adapter.get_versioned(self.key)
        if got is not None and self._is_ours(got[0]):
            await self._unlock(got[1])


async def _settle(work: Coroutine[Any, Any, R], background: set[asyncio.Task[Any]]) -> R:
    """Run ``work`` to its end even if the caller is cancelled meanwhile.

    The caller waits for the end in any case (so once a cancelled holder's
    task is over, its lock is free) and then raises its cancellation. The
    work runs as a task in ``background``: only the loop shutting down can
    stop it, and then the caller sees that cancellation at once.
    """
    task = asyncio.ensure_future(work)
    background.add(task)
    task.add_done_callback(background.discard)
    cancelled: asyncio.CancelledError | None = None
    while True:
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError as err:
            if task.cancelled():
                raise
            cancelled = err
            if not task.done():
                continue
        except Exception:
            pass  # the work failed: raised below, unless a cancellation wins
        break
    if cancelled is not None:
        if task.exception() is not None:
            logger.warning("lock cleanup failed after a cancellation: %s", task.exception())
        raise cancelled
    return task.result()
