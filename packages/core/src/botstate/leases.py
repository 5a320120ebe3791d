"""Distributed lease locks built on ``set_if``/``delete_if`` (any ATOMIC adapter)."""

from __future__ import annotations

import asyncio
import logging
import os
import random
from types import TracebackType

from .capabilities import Capability
from .clock import Clock, system_clock
from .contract import StorageAdapter, Version
from .errors import ConflictError, UnsupportedOperation
from .options import seconds

__all__ = ["Lease"]

logger = logging.getLogger("botstate")


class Lease:
    """A lock on ``key`` held by one holder across processes and hosts, with expiry.

    The lock is an entry whose value is a random token and whose expiry is
    ``now + ttl``; a crashed holder's lock simply expires. While held, a
    background task renews it every ``ttl / 3`` seconds so long handlers keep
    it. ``lost`` turns true if a renewal finds the lock taken over.

    >>> async with Lease(adapter, "locks:chat:1", ttl=30, timeout=10):
    ...     ...  # one holder at a time, everywhere
    """

    def __init__(
        self,
        adapter: StorageAdapter,
        key: str,
        *,
        ttl: float = 30.0,
        timeout: float = 60.0,
        clock: Clock = system_clock,
    ) -> None:
        if Capability.ATOMIC not in adapter.capabilities:
            raise UnsupportedOperation(
                f"distributed locks need an ATOMIC adapter; {type(adapter).__name__} is not"
            )
        ttl = seconds(ttl, "lock ttl")
        timeout = seconds(timeout, "lock timeout", zero=True)
        self.adapter = adapter
        self.key = key
        self.ttl = ttl
        self.timeout = timeout
        self.clock = clock
        self.lost = False
        self._token = os.urandom(16)
        self._version: Version | None = None
        self._renewer: asyncio.Task[None] | None = None

    @property
    def held(self) -> bool:
        return self._version is not None and not self.lost

    async def acquire(self) -> None:
        """Wait until the lock is ours; ``ConflictError`` after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        delay = 0.002
        while True:
            if await self.adapter.set_if(
                self.key, self._token, version=None, expires_at=self.clock() + self.ttl
            ):
                current = await self.adapter.get_versioned(self.key)
                if current is not None and current[0] == self._token:
                    self._version = current[1]
                    self.lost = False
                    self._renewer = asyncio.create_task(self._renew_forever())
                    return
            if loop.time() >= deadline:
                raise ConflictError(
                    f"lock {self.key!r} still held by another after {self.timeout}s"
                )
            await asyncio.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 2, 0.1)

    async def _renew_forever(self) -> None:
        loop = asyncio.get_running_loop()
        renewed = loop.time()
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                if not await self._renew():
                    break  # someone else holds it now
                renewed = loop.time()
            except Exception as err:  # e.g. StorageUnavailable: retry until the lease runs out
                logger.warning("renewing lease %r failed: %s", self.key, err)
                if loop.time() - renewed >= self.ttl:
                    break
        self.lost = True
        logger.warning("lease %r was lost before it was released", self.key)

    async def _renew(self) -> bool:
        version = self._version
        if version is None:
            return False
        ok = await self.adapter.set_if(
            self.key, self._token, version=version, expires_at=self.clock() + self.ttl
        )
        if not ok:
            return False
        current = await self.adapter.get_versioned(self.key)
        if current is None or current[0] != self._token:
            return False
        self._version = current[1]
        return True

    async def release(self) -> None:
        """Give the lock up (only if it is still ours). Safe to call twice."""
        renewer, self._renewer = self._renewer, None
        if renewer is not None:
            renewer.cancel()
            await asyncio.gather(renewer, return_exceptions=True)
        version, self._version = self._version, None
        if version is not None and not self.lost:
            await self.adapter.delete_if(self.key, version=version)

    async def __aenter__(self) -> Lease:
        await self.acquire()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.release()
