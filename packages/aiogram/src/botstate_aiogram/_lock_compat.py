"""Until ``Storage.lock`` (branch h/locks) is on main: the same lock from the 0.1 parts.

Delete this module once the core has ``Storage.lock``; :func:`storage_lock`
already prefers it when present.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from botstate.capabilities import Capability
from botstate.errors import ConflictError
from botstate.leases import Lease
from botstate.locks import KeyedLock
from botstate.storage import Storage

__all__ = ["storage_lock"]

_local: weakref.WeakKeyDictionary[Storage[Any], KeyedLock] = weakref.WeakKeyDictionary()


def storage_lock(
    storage: Storage[Any], key: str, *, ttl: float, timeout: float
) -> AbstractAsyncContextManager[Any]:
    lock = getattr(storage, "lock", None)
    if lock is not None:
        return lock(key, ttl=ttl, timeout=timeout)  # type: ignore[no-any-return]
    return _fallback(storage, key, ttl, timeout)


@asynccontextmanager
async def _fallback(
    storage: Storage[Any], key: str, ttl: float, timeout: float
) -> AsyncIterator[None]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    local = _local.setdefault(storage, KeyedLock())
    hold = local.hold(storage.full_key(key))
    try:
        await asyncio.wait_for(hold.__aenter__(), timeout)
    except asyncio.TimeoutError:
        raise ConflictError(f"lock {key!r} still held by another after {timeout}s") from None
    try:
        if Capability.ATOMIC not in storage.adapter.capabilities:
            yield
            return
        locks = storage.with_namespace(f"{storage.namespace or 'botstate'}~lock")
        lease = Lease(
            locks.adapter,
            locks.full_key(key),
            ttl=ttl,
            timeout=max(0.0, deadline - loop.time()),
            clock=storage.clock,
        )
        async with lease:
            yield
    finally:
        await hold.__aexit__(None, None, None)
