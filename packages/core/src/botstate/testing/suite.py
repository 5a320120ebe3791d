"""Tests every adapter must pass, gated by the capabilities it declares."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio

from ..capabilities import Capability
from ..contract import BlockingOps, ExpiryEvent, StorageAdapter
from ..errors import StorageUnavailable, UnsupportedOperation, ValueTooLarge
from ..options import MAX_SECONDS
from ..storage import Storage

__all__ = ["AdapterSuite"]

asyncio_test = pytest.mark.asyncio

# Characters that are wildcards or escapes in LIKE, glob and regex patterns.
SPECIAL_KEYS = ["a%b", "a_b", "a*b", "a?b", "a[b]", "a\\b", "aé€😀", "a.b", "a^$b", "a{b}"]


class AdapterSuite:
    """Base class of the conformance tests; override :meth:`adapter`.

    The ``adapter`` fixture yields a ready adapter and closes it afterwards.
    Tests write only keys under a fresh random prefix, so a shared server
    need not be emptied between tests. Class attributes tune the suite:
    """

    max_value_bytes: int | None = None
    """The backend's size limit for one value, if it has one (then over it → ValueTooLarge)."""

    expiry_event_timeout: float = 5.0
    """How long to wait for an expiry event after an entry's expiry passed."""

    concurrency: int = 100
    """How many concurrent set_if calls race for one key."""

    @pytest_asyncio.fixture
    async def adapter(self) -> AsyncIterator[StorageAdapter]:
        raise NotImplementedError("override the `adapter` fixture in your AdapterSuite subclass")
        yield  # pragma: no cover

    @pytest.fixture
    def ns(self) -> str:
        return f"t{uuid.uuid4().hex[:12]}:"

    async def trigger_expiry(self, adapter: StorageAdapter) -> None:
        """Give the adapter a chance to notice expired entries (override to force a sweep)."""
        await asyncio.sleep(0.05)

    @staticmethod
    def require(adapter: StorageAdapter, capability: Capability) -> None:
        if capability not in adapter.capabilities:
            pytest.skip(f"adapter does not declare {capability.name}")

    # -- declarations -----------------------------------------------------
    def test_capabilities_declared(self, adapter: StorageAdapter) -> None:
        assert isinstance(adapter.capabilities, frozenset)
        assert all(isinstance(c, Capability) for c in adapter.capabilities)

    # -- round trips ------------------------------------------------------
    @asyncio_test
    async def test_roundtrip_empty_and_binary(self, adapter: StorageAdapter, ns: str) -> None:
        await adapter.set(ns + "empty", b"")
        await adapter.set(ns + "bin", bytes(range(256)))
        assert await adapter.get(ns + "empty") == b""
        assert await adapter.get(ns + "bin") == bytes(range(256))
        assert await adapter.has(ns + "empty") is True

    @asyncio_test
    async def test_roundtrip_large(self, adapter: StorageAdapter, ns: str) -> None:
        size = 1024 * 1024 if self.max_value_bytes is None else self.max_value_bytes
        blob = os.urandom(size)
        await adapter.set(ns + "big", blob)
        assert await adapter.get(ns + "big") == blob

    @asyncio_test
    async def test_value_over_limit_raises(self, adapter: StorageAdapter, ns: str) -> None:
        if self.max_value_bytes is None:
            pytest.skip("adapter declares no value size limit")
        with pytest.raises(ValueTooLarge):
            await adapter.set(ns + "huge", b"x" * (self.max_value_bytes + 1024))
        assert await adapter.get(ns + "huge") is None

    @asyncio_test
    async def test_missing_key_is_none(self, adapter: StorageAdapter, ns: str) -> None:
        assert await adapter.get(ns + "nope") is None
        assert await adapter.has(ns + "nope") is False
        assert await adapter.delete(ns + "nope") is False

    @asyncio_test
    async def test_overwrite(self, adapter: StorageAdapter, ns: str) -> None:
        await adapter.set(ns + "k", b"one")
        await adapter.set(ns + "k", b"two")
        assert await adapter.get(ns + "k") == b"two"

    @asyncio_test
    async def test_delete_reports_whether_removed(self, adapter: StorageAdapter, ns: str) -> None:
        await adapter.set(ns + "k", b"v")
        assert await adapter.delete(ns + "k") is True
        assert await adapter.delete(ns + "k") is False
        assert await adapter.get(ns + "k") is None
        assert await adapter.has(ns + "k") is False

    @asyncio_test
    async def test_unicode_and_long_keys(self, adapter: StorageAdapter, ns: str) -> None:
        long_key = ns + "L" * (1024 - len(ns.encode()))
        keys = [ns + k for k in SPECIAL_KEYS] + [long_key]
        for i, key in enumerate(keys):
            await adapter.set(key, str(i).encode())
        for i, key in enumerate(keys):
            assert await adapter.get(key) == str(i).encode()

    # -- expiry -----------------------------------------------------------
    @asyncio_test
    async def test_past_expiry_is_never_returned(self, adapter: StorageAdapter, ns: str) -> None:
        past = time.time() - 5
        await adapter.set(ns + "gone", b"v", expires_at=past)
        await adapter.set_many({ns + "gone2": b"v"}, expires_at=past)
        await adapter.set(ns + "live", b"v")
        for key in (ns + "gone", ns + "gone2"):
            assert await adapter.get(key) is None
            assert await adapter.has(key) is False
        assert await adapter.get_many([ns + "gone", ns + "gone2", ns + "live"]) == {
            ns + "live": b"v"
        }
        assert await adapter.delete(ns + "gone") is False
        if Capability.SCAN in adapter.capabilities:
            assert [k async for k in adapter.scan(ns)] == [ns + "live"]
        if Capability.ATOMIC in adapter.capabilities:
            assert await adapter.get_versioned(ns + "gone") is None

    @asyncio_test
    async def test_entry_expires_at_expires_at(self, adapter: StorageAdapter, ns: str) -> None:
        expires_at = time.time() + 1.0
        await adapter.set(ns + "soon", b"v", expires_at=expires_at)
        await adapter.set(ns + "later", b"w", expires_at=expires_at + 60)
        assert await adapter.get(ns + "soon") == b"v"
        await asyncio.sleep(max(0.0, expires_at - time.time()) + 0.25)
        assert await adapter.get(ns + "soon") is None
        assert await adapter.has(ns + "soon") is False
        assert await adapter.get_many([ns + "soon", ns + "later"]) == {ns + "later": b"w"}
        if Capability.SCAN in adapter.capabilities:
            assert [k async for k in adapter.scan(ns)] == [ns + "later"]

    @asyncio_test
    async def test_set_replaces_expiry(self, adapter: StorageAdapter, ns: str) -> None:
        await adapter.set(ns + "k", b"v", expires_at=time.time() + 100)
        await adapter.set(ns + "k", b"v2")
        try:
            assert await adapter.get_expiry(ns + "k") is None
        except UnsupportedOperation:
            pytest.skip("adapter cannot report expiry")

    @asyncio_test
    async def test_get_expiry(self, adapter: StorageAdapter, ns: str) -> None:
        at = time.time() + 100
        await adapter.set(ns + "k", b"v", expires_at=at)
        await adapter.set(ns + "p", b"v")
        try:
            got = await adapter.get_expiry(ns + "k")
        except UnsupportedOperation:
            pytest.skip("adapter cannot report expiry")
        assert got is not None and abs(got - at) < 0.01
        assert await adapter.get_expiry(ns + "p") is None
        assert await adapter.get_expiry(ns + "absent") is None

    @asyncio_test
    async def test_expiry_as_far_as_max_seconds(self, adapter: StorageAdapter, ns: str) -> None:
        """Every adapter stores an expiry up to ``MAX_SECONDS`` (100 years) ahead."""
        at = time.time() + MAX_SECONDS
        await adapter.set(ns + "far", b"v", expires_at=at)
        await adapter.set_many({ns + "far2": b"w"}, expires_at=at)
        assert await adapter.get(ns + "far") == b"v"
        assert await adapter.get_many([ns + "far2"]) == {ns + "far2": b"w"}
        try:
            got = await adapter.get_expiry(ns + "far")
        except UnsupportedOperation:
            return
        assert got is not None and abs(got - at) < 1.0

    # -- batches ----------------------------------------------------------
    @asyncio_test
    async def test_batches_with_missing_keys(self, adapter: StorageAdapter, ns: str) -> None:
        items = {f"{ns}b{i}": f"v{i}".encode() for i in range(30)}
        await adapter.set_many(items)
        wanted = [*items, ns + "missing1", ns + "missing2"]
        assert await adapter.get_many(wanted) == items
        assert await adapter.get_many([]) == {}
        removed = await adapter.delete_many([*list(items)[:10], ns + "missing1"])
        assert removed == 10
        assert await adapter.get_many(list(items)[:12]) == {k: items[k] for k in list(items)[10:12]}
        assert await adapter.delete_many([]) == 0

    @asyncio_test
    async def test_batch_larger_than_a_page(self, adapter: StorageAdapter, ns: str) -> None:
        items = {f"{ns}p{i:04d}": os.urandom(16) for i in range(260)}
        await adapter.set_many(items, expires_at=time.time() + 300)
        assert await adapter.get_many(list(items)) == items
        assert await adapter.delete_many(list(items)) == 260
        assert await adapter.get_many(list(items)) == {}

    # -- scan -------------------------------------------------------------
    @asyncio_test
    async def test_scan_prefix_is_literal(self, adapter: StorageAdapter, ns: str) -> None:
        self.require(adapter, Capability.SCAN)
        keys = [ns + k for k in SPECIAL_KEYS] + [ns + "axb", ns + "aXb", ns + "b"]
        for key in keys:
            await adapter.set(key, b"1")
        assert sorted([k async for k in adapter.scan(ns)]) == sorted(keys)
        for special in SPECIAL_KEYS:
            prefix = ns + special[:2]
            expected = sorted(k for k in keys if k.startswith(prefix))
            assert sorted([k async for k in adapter.scan(prefix)]) == expected, prefix
        assert [k async for k in adapter.scan(ns + "zzz")] == []

    @asyncio_test
    async def test_scan_follows_to_the_end(self, adapter: StorageAdapter, ns: str) -> None:
        self.require(adapter, Capability.SCAN)
        items = {f"{ns}s{i:04d}": b"x" for i in range(1100)}
        await adapter.set_many(items)
        found = [k async for k in adapter.scan(ns)]
        assert len(found) == len(set(found))
        assert set(found) == set(items)

    # -- atomic -----------------------------------------------------------
    @asyncio_test
    async def test_set_if_and_delete_if(self, adapter: StorageAdapter, ns: str) -> None:
        self.require(adapter, Capability.ATOMIC)
        key = ns + "cas"
        assert await adapter.get_versioned(key) is None
        assert await adapter.set_if(key, b"v1", version=None) is not None
        assert await adapter.set_if(key, b"again", version=None) is None
        got = await adapter.get_versioned(key)
        assert got is not None and got[0] == b"v1"
        v1 = got[1]
        assert await adapter.set_if(key, b"v2", version=v1) is not None
        assert await adapter.set_if(key, b"stale", version=v1) is None
        assert await adapter.delete_if(key, version=v1) is False
        got2 = await adapter.get_versioned(key)
        assert got2 is not None and got2[0] == b"v2" and got2[1] != v1
        assert await adapter.delete_if(key, version=got2[1]) is True
        assert await adapter.get(key) is None
        assert await adapter.set_if(key, b"x", version=got2[1]) is None
        assert await adapter.delete_if(key, version=got2[1]) is False

    @asyncio_test
    async def test_set_if_returns_the_new_version(self, adapter: StorageAdapter, ns: str) -> None:
        """The returned token is what ``get_versioned`` reports, so it needs no read."""
        self.require(adapter, Capability.ATOMIC)
        key = ns + "cas"
        created = await adapter.set_if(key, b"v1", version=None, expires_at=time.time() + 60)
        assert created is not None
        assert await adapter.get_versioned(key) == (b"v1", created)
        updated = await adapter.set_if(key, b"v2", version=created)
        assert updated is not None and updated != created
        assert await adapter.get_versioned(key) == (b"v2", updated)
        # Used at once, without a read in between: renew, renew, then delete.
        renewed = await adapter.set_if(key, b"v3", version=updated)
        assert renewed is not None and renewed != updated
        again = await adapter.set_if(key, b"v4", version=renewed)
        assert again is not None
        assert await adapter.set_if(key, b"stale", version=renewed) is None
        assert await adapter.get(key) == b"v4"
        assert await adapter.delete_if(key, version=again) is True
        assert await adapter.get(key) is None
        # Over an expired entry (absent) it also returns the version it wrote.
        await adapter.set(key, b"old", expires_at=time.time() - 1)
        revived = await adapter.set_if(key, b"new", version=None)
        assert revived is not None
        assert await adapter.get_versioned(key) == (b"new", revived)
        await adapter.set(key, b"plain")
        assert await adapter.set_if(key, b"lost", version=revived) is None
        assert await adapter.delete_if(key, version=revived) is False
        assert await adapter.get(key) == b"plain"

    @asyncio_test
    async def test_plain_set_changes_version(self, adapter: StorageAdapter, ns: str) -> None:
        self.require(adapter, Capability.ATOMIC)
        key = ns + "cas"
        await adapter.set(key, b"a")
        got = await adapter.get_versioned(key)
        assert got is not None
        await adapter.set(key, b"b")
        assert await adapter.set_if(key, b"c", version=got[1]) is None
        assert await adapter.get(key) == b"b"

    @asyncio_test
    async def test_expired_entry_counts_as_absent(self, adapter: StorageAdapter, ns: str) -> None:
        self.require(adapter, Capability.ATOMIC)
        key = ns + "cas"
        await adapter.set(key, b"old", expires_at=time.time() - 1)
        assert await adapter.set_if(key, b"new", version=None) is not None
        assert await adapter.get(key) == b"new"

    @asyncio_test
    async def test_set_if_sets_expiry(self, adapter: StorageAdapter, ns: str) -> None:
        self.require(adapter, Capability.ATOMIC)
        key = ns + "cas"
        written = await adapter.set_if(key, b"v", version=None, expires_at=time.time() - 1)
        assert written is not None
        assert await adapter.get(key) is None

    @asyncio_test
    async def test_concurrent_set_if_one_winner(self, adapter: StorageAdapter, ns: str) -> None:
        self.require(adapter, Capability.ATOMIC)
        key = ns + "race"
        n = self.concurrency
        results = await asyncio.gather(
            *(adapter.set_if(key, str(i).encode(), version=None) for i in range(n))
        )
        winners = [i for i, version in enumerate(results) if version is not None]
        assert len(winners) == 1
        assert await adapter.get_versioned(key) == (str(winners[0]).encode(), results[winners[0]])
        got = await adapter.get_versioned(key)
        assert got is not None
        results = await asyncio.gather(
            *(adapter.set_if(key, b"n%d" % i, version=got[1]) for i in range(n))
        )
        winners = [i for i, version in enumerate(results) if version is not None]
        assert len(winners) == 1
        assert await adapter.get_versioned(key) == (b"n%d" % winners[0], results[winners[0]])

    @asyncio_test
    async def test_storage_update_is_atomic(self, adapter: StorageAdapter, ns: str) -> None:
        self.require(adapter, Capability.ATOMIC)
        storage: Storage[int] = Storage(adapter, namespace=ns.rstrip(":"))
        await asyncio.gather(*(storage.update("n", lambda v: (v or 0) + 1) for _ in range(50)))
        assert await storage.get("n") == 50

    # -- events -----------------------------------------------------------
    @asyncio_test
    async def test_expiry_event_carries_key_and_value(
        self, adapter: StorageAdapter, ns: str
    ) -> None:
        self.require(adapter, Capability.EXPIRY_EVENTS)
        seen: list[ExpiryEvent] = []
        unsubscribe = adapter.on_expire(seen.append)
        try:
            await adapter.set(ns + "e", b"last", expires_at=time.time() + 0.3)
            await adapter.set(ns + "keep", b"x")
            deadline = time.monotonic() + self.expiry_event_timeout
            while not any(e.key == ns + "e" for e in seen) and time.monotonic() < deadline:
                await self.trigger_expiry(adapter)
            events = [e for e in seen if e.key.startswith(ns)]
            assert [(e.key, e.value, e.reason) for e in events] == [(ns + "e", b"last", "expired")]
        finally:
            unsubscribe()

    # -- blocking twins (BlockingOps, used by botstate.sync) ---------------
    @staticmethod
    async def twins(adapter: StorageAdapter, ns: str) -> BlockingOps:
        """The adapter's blocking twins after a first async call (skip if it has none)."""
        await adapter.get(ns + "warm-up")  # connects, where that is lazy
        blocking = getattr(adapter, "blocking", None)
        ops: BlockingOps | None = blocking() if blocking is not None else None
        if ops is None:
            pytest.skip("adapter offers no blocking twins")
        return ops

    @staticmethod
    async def in_thread(adapter: StorageAdapter, fn: Callable[..., Any], *args: Any) -> Any:
        """Call a twin as botstate.sync does: from a worker thread that runs no event loop.

        An in-process adapter (``runs_inline``) has its twins called here, on the
        loop's thread between callbacks, as botstate.sync's loop lock ensures.
        ``NotImplemented`` (the twin cannot do it now) passes through.
        """
        if getattr(adapter, "runs_inline", False) is True:
            return fn(*args)
        return await asyncio.to_thread(fn, *args)

    @asyncio_test
    async def test_blocking_twins_match_the_async_operations(
        self, adapter: StorageAdapter, ns: str
    ) -> None:
        ops = await self.twins(adapter, ns)
        call = self.in_thread
        # Written by a twin, read by the async API, and the reverse.
        assert await call(adapter, ops.set, ns + "a", b"from-twin") is None
        assert await adapter.get(ns + "a") == b"from-twin"
        await adapter.set(ns + "b", b"from-async")
        assert await call(adapter, ops.get, ns + "b") == b"from-async"
        assert await call(adapter, ops.get, ns + "absent") is None
        assert await call(adapter, ops.has, ns + "b") is True
        assert await call(adapter, ops.has, ns + "absent") is False
        assert await call(adapter, ops.get_expiry, ns + "b") is None
        assert await call(adapter, ops.get_expiry, ns + "absent") is None
        if Capability.ATOMIC in adapter.capabilities:
            before = await adapter.get_versioned(ns + "b")
            assert await call(adapter, ops.set, ns + "b", b"again", None) in (None, NotImplemented)
            after = await adapter.get_versioned(ns + "b")
            assert before is not None and after is not None and before[1] != after[1]
        assert await call(adapter, ops.delete, ns + "a") is True
        assert await call(adapter, ops.delete, ns + "a") is False
        assert await adapter.get(ns + "a") is None

    @asyncio_test
    async def test_blocking_twins_honour_expiry(self, adapter: StorageAdapter, ns: str) -> None:
        ops = await self.twins(adapter, ns)
        call = self.in_thread
        at = time.time() + 100
        for expires_at in (at, time.time() - 5):  # a live expiry, then one in the past
            done = await call(adapter, ops.set, ns + "e", b"v", expires_at)
            if done is NotImplemented:  # would start a task (a sweeper): the async path
                await adapter.set(ns + "e", b"v", expires_at=expires_at)
        await adapter.set(ns + "live", b"w", expires_at=at)
        await adapter.set(ns + "gone", b"v", expires_at=time.time() - 5)
        for key in (ns + "e", ns + "gone"):  # past expiry: never returned by a twin
            assert await call(adapter, ops.get, key) in (None, NotImplemented)
            assert await call(adapter, ops.has, key) in (False, NotImplemented)
            assert await call(adapter, ops.get_expiry, key) in (None, NotImplemented)
            assert await call(adapter, ops.delete, key) in (False, NotImplemented)
        assert await adapter.get(ns + "e") is None
        assert await call(adapter, ops.get, ns + "live") == b"w"
        try:
            got = await call(adapter, ops.get_expiry, ns + "live")
        except UnsupportedOperation:
            return
        assert got is not None and abs(got - at) < 0.01

    @asyncio_test
    async def test_blocking_twins_batches(self, adapter: StorageAdapter, ns: str) -> None:
        ops = await self.twins(adapter, ns)
        call = self.in_thread
        items = {f"{ns}b{i}": f"v{i}".encode() for i in range(30)}
        assert await call(adapter, ops.set_many, items, None) is None
        assert await adapter.get_many(list(items)) == items
        wanted = [*items, ns + "missing1"]
        assert await call(adapter, ops.get_many, wanted) == items
        assert await call(adapter, ops.get_many, []) == {}
        keys = list(items)
        doomed = [*keys[:10], keys[0], ns + "missing1"]
        assert await call(adapter, ops.delete_many, doomed) == 10
        assert await adapter.get_many(list(items)[:12]) == {k: items[k] for k in list(items)[10:12]}
        assert await call(adapter, ops.delete_many, []) == 0
        at = time.time() + 300
        if await call(adapter, ops.set_many, {ns + "x": b"1", ns + "y": b"2"}, at) is None:
            assert await adapter.get_many([ns + "x", ns + "y"]) == {ns + "x": b"1", ns + "y": b"2"}
            got = await adapter.get_expiry(ns + "x")
            assert got is not None and abs(got - at) < 0.01

    @asyncio_test
    async def test_blocking_twins_from_many_threads(self, adapter: StorageAdapter, ns: str) -> None:
        ops = await self.twins(adapter, ns)
        if getattr(adapter, "runs_inline", False) is True:
            pytest.skip("in-process twins run one at a time under botstate.sync's lock")

        def work(thread: int) -> list[bytes | None]:
            seen = []
            for i in range(50):
                ops.set(f"{ns}t{thread}", f"{thread}:{i}".encode())
                seen.append(ops.get(f"{ns}t{thread}"))
            return seen

        results = await asyncio.gather(*(asyncio.to_thread(work, t) for t in range(8)))
        for thread, seen in enumerate(results):
            assert seen == [f"{thread}:{i}".encode() for i in range(50)]

    @asyncio_test
    async def test_closed_adapter_refuses_every_twin(
        self, adapter: StorageAdapter, ns: str
    ) -> None:
        ops = await self.twins(adapter, ns)
        await adapter.close()
        calls: list[tuple[Callable[..., Any], tuple[Any, ...]]] = [
            (ops.get, ("k",)),
            (ops.has, ("k",)),
            (ops.set, ("k", b"v")),
            (ops.delete, ("k",)),
            (ops.get_expiry, ("k",)),
            (ops.get_many, (["k"],)),
            (ops.set_many, ({"k": b"v"},)),
            (ops.delete_many, (["k"],)),
        ]
        for fn, args in calls:
            with pytest.raises(StorageUnavailable):
                await self.in_thread(adapter, fn, *args)

    # -- lifecycle --------------------------------------------------------
    @asyncio_test
    async def test_close_is_idempotent(self, adapter: StorageAdapter) -> None:
        await adapter.close()
        await adapter.close()

    async def test_closed_adapter_refuses_every_operation(self, adapter: StorageAdapter) -> None:
        await adapter.set("before-close", b"v")
        await adapter.close()
        calls: list[Callable[[], Awaitable[object]]] = [
            lambda: adapter.get("before-close"),
            lambda: adapter.set("k", b"v"),
            lambda: adapter.delete("k"),
            lambda: adapter.has("k"),
            lambda: adapter.get_many(["k"]),
            lambda: adapter.set_many({"k": b"v"}),
            lambda: adapter.delete_many(["k"]),
        ]
        for call in calls:
            with pytest.raises(StorageUnavailable):
                await call()
