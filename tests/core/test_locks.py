"""KeyedLock, and Storage.lock over the memory adapter (a lease) and a plain one (in-process)."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from botstate.adapter import BaseAdapter, Version
from botstate.clock import ManualClock
from botstate.errors import (
    BotstateError,
    ConflictError,
    EncodeError,
    InvalidArgument,
    InvalidKey,
    StorageUnavailable,
    UnsupportedOperation,
    UsageError,
)
from botstate.locks import KeyedLock
from botstate.storage import LOCK_PREFIX, Storage
from botstate_storage_memory import MemoryAdapter


async def test_keyed_lock_serialises_per_key_and_frees_entries() -> None:
    locks = KeyedLock()
    inside: dict[str, int] = {"a": 0, "b": 0}
    peak = {"a": 0, "b": 0}

    async def work(key: str) -> None:
        async with locks.hold(key):
            inside[key] += 1
            peak[key] = max(peak[key], inside[key])
            await asyncio.sleep(0.001)
            inside[key] -= 1

    await asyncio.gather(*(work("a" if i % 2 else "b") for i in range(100)))
    assert peak == {"a": 1, "b": 1}
    assert len(locks) == 0


async def test_keyed_lock_released_on_error_and_cancel() -> None:
    locks = KeyedLock()
    try:
        async with locks.hold("k"):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert len(locks) == 0

    async with locks.hold("k"):
        waiter = asyncio.ensure_future(locks.hold("k").__aenter__())
        await asyncio.sleep(0)
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
    assert len(locks) == 0


async def test_keyed_lock_timeout_and_single_try() -> None:
    locks = KeyedLock()
    first = locks.hold("k")
    assert await first.acquire(0) is True  # free: no waiting even with timeout 0
    assert await locks.hold("k").acquire(0) is False
    started = time.monotonic()
    assert await locks.hold("k").acquire(0.05) is False
    assert time.monotonic() - started >= 0.04
    assert len(locks) == 1  # only the holder
    first.release()
    assert len(locks) == 0


async def test_keyed_lock_hands_over_in_arrival_order() -> None:
    locks = KeyedLock()
    order: list[int] = []
    first = locks.hold("k")
    assert await first.acquire()

    async def wait(i: int) -> None:
        async with locks.hold("k"):
            order.append(i)
            await asyncio.sleep(0)

    waiters = [asyncio.ensure_future(wait(i)) for i in range(5)]
    await asyncio.sleep(0)
    assert locks.try_hold("k") is None  # taken: no second holder without waiting
    first.release()
    await asyncio.gather(*waiters)
    assert order == [0, 1, 2, 3, 4]
    assert len(locks) == 0


@pytest.mark.parametrize("timeout", [math.inf, 60.0])
async def test_keyed_lock_passes_on_a_hand_over_its_waiter_no_longer_wants(timeout: float) -> None:
    """A waiter cancelled just after the lock was handed to it passes it on, with
    or without a timeout (the cancellation is raised, never swallowed); a waiter
    timing out leaves the queue. Nobody is left waiting forever."""
    locks = KeyedLock()
    first = locks.hold("k")
    assert await first.acquire()
    handed = asyncio.ensure_future(locks.hold("k").acquire(timeout))
    timing_out = asyncio.ensure_future(locks.hold("k").acquire(0.01))
    last = locks.hold("k")
    last_task = asyncio.ensure_future(last.acquire())
    await asyncio.sleep(0)
    assert await timing_out is False
    first.release()  # hands the lock to `handed`, which is cancelled before it runs
    handed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await handed
    assert await asyncio.wait_for(last_task, 1) is True
    last.release()
    assert len(locks) == 0


class Counting(MemoryAdapter):
    """The real memory adapter, counting the atomic calls a lock makes."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.calls: Counter[str] = Counter()

    async def get_versioned(self, key: str) -> tuple[bytes, Version] | None:
        self.calls["get_versioned"] += 1
        return await super().get_versioned(key)

    async def set_if(self, key: str, value: bytes, **kw: Any) -> Version | None:
        self.calls["set_if"] += 1
        return await super().set_if(key, value, **kw)

    async def delete_if(self, key: str, *, version: Version) -> bool:
        self.calls["delete_if"] += 1
        return await super().delete_if(key, version=version)


class Plain(BaseAdapter):
    """A non-ATOMIC adapter (nothing stored): Storage.lock is in-process only."""


async def test_one_holder_across_tasks_and_storages() -> None:
    adapter = MemoryAdapter()
    # Two Storage objects on one adapter stand for two processes: only the lease is shared.
    first: Storage[Any] = Storage(adapter, namespace="bot")
    second: Storage[Any] = Storage(adapter, namespace="bot")
    inside, peak = 0, 0

    async def work(storage: Storage[Any]) -> None:
        nonlocal inside, peak
        async with storage.lock("chat:1", timeout=10) as lock:
            assert lock.held
            inside += 1
            peak = max(peak, inside)
            await asyncio.sleep(0.001)
            inside -= 1

    await asyncio.gather(*(work(first if i % 2 else second) for i in range(40)))
    assert peak == 1
    assert [k async for k in adapter.scan("")] == []  # every lease was released


async def test_taking_and_renewing_cost_one_round_trip_each() -> None:
    adapter = Counting()
    storage: Storage[Any] = Storage(adapter, namespace="bot")
    lock = storage.lock("k", ttl=0.15)
    await lock.acquire()
    assert adapter.calls == Counter({"set_if": 1})
    await asyncio.sleep(0.17)  # renewals every 0.05 s
    renewals = adapter.calls["set_if"] - 1
    assert renewals >= 2
    assert adapter.calls == Counter({"set_if": 1 + renewals})  # no read per renewal
    await lock.release()
    assert adapter.calls["delete_if"] == 1
    assert adapter.calls["get_versioned"] == 0
    assert await adapter.get(LOCK_PREFIX + "bot:k") is None


async def test_timeout_raises_conflict_and_zero_tries_once() -> None:
    adapter = MemoryAdapter()
    holder: Storage[Any] = Storage(adapter, namespace="bot")
    other: Storage[Any] = Storage(adapter, namespace="bot")
    async with holder.lock("k"):
        with pytest.raises(ConflictError, match="still held"):
            async with other.lock("k", timeout=0):
                pass
        started = time.monotonic()
        with pytest.raises(ConflictError):
            async with other.lock("k", timeout=0.1):
                pass
        assert 0.09 <= time.monotonic() - started < 1
        with pytest.raises(ConflictError, match="another task"):  # the same storage: queued here
            await holder.lock("k", timeout=timedelta(milliseconds=20)).acquire()
    async with other.lock("k", timeout=0):
        pass


@pytest.mark.parametrize(
    "bad",
    [
        {"ttl": 0},
        {"ttl": -1},
        {"ttl": math.nan},
        {"ttl": math.inf},
        {"ttl": "30"},
        {"ttl": True},
        {"ttl": None},
        {"timeout": -0.1},
        {"timeout": math.nan},
        {"timeout": "1"},
        {"timeout": False},
    ],
)
def test_bad_ttl_or_timeout_is_an_invalid_argument(bad: dict[str, Any]) -> None:
    for storage in (Storage(MemoryAdapter()), Storage(Plain())):
        with pytest.raises(InvalidArgument):  # also a ValueError and a TypeError
            storage.lock("k", **bad)
    with pytest.raises(InvalidKey):
        Storage(MemoryAdapter()).lock("")


async def test_timeout_may_be_forever_and_ttl_a_timedelta() -> None:
    storage: Storage[Any] = Storage(MemoryAdapter())
    async with storage.lock("k", ttl=timedelta(seconds=5), timeout=math.inf) as lock:
        assert lock.held


async def test_a_lease_lost_to_expiry_is_reported() -> None:
    clock = ManualClock(1_000_000.0)
    adapter = MemoryAdapter(clock=clock, sweep_interval=0)
    slow: Storage[Any] = Storage(adapter, namespace="bot", clock=clock)
    other: Storage[Any] = Storage(adapter, namespace="bot", clock=clock)
    with pytest.raises(ConflictError, match="lost while held") as caught:
        async with slow.lock("k", ttl=30) as lock:
            clock.advance(31)  # the holder stalled past its lease (no renewal ran)
            async with other.lock("k", timeout=0) as taker:  # so another one takes it
                assert taker.held
                assert not lock.lost  # not noticed yet: the next renewal or the release will
            assert lock.lost is False
    assert lock.lost and not lock.held
    assert isinstance(caught.value, BotstateError)
    assert await adapter.get(LOCK_PREFIX + "bot:k") is None


async def test_a_lease_taken_over_is_reported_by_the_renewal() -> None:
    adapter = MemoryAdapter()
    storage: Storage[Any] = Storage(adapter, namespace="bot")
    lock = storage.lock("k", ttl=0.15)
    await lock.acquire()
    await adapter.set(LOCK_PREFIX + "bot:k", b"someone else")  # e.g. after an expiry
    await asyncio.sleep(0.1)  # the next renewal (after 0.05 s) finds it
    assert lock.lost and not lock.held
    await lock.release()
    assert await adapter.get(LOCK_PREFIX + "bot:k") == b"someone else"  # not ours to delete


async def test_lease_renewal_failures_end_in_lost_not_silence() -> None:
    class Flaky(MemoryAdapter):
        failing = False

        async def set_if(self, key: str, value: bytes, **kw: Any) -> Version | None:
            if self.failing:
                raise StorageUnavailable("backend went away")
            return await super().set_if(key, value, **kw)

    adapter = Flaky()
    lock = Storage(adapter).lock("lock", ttl=0.15)
    await lock.acquire()
    adapter.failing = True
    await asyncio.sleep(0.4)  # renewals fail for longer than the lease lasts
    assert lock.lost and not lock.held
    await lock.release()


async def test_a_renewal_with_an_unknown_outcome_is_read_back() -> None:
    class LostReply(Counting):
        """The write lands, then the reply is lost (a timeout after the server did it)."""

        lose_next = False

        async def set_if(self, key: str, value: bytes, **kw: Any) -> Version | None:
            result = await super().set_if(key, value, **kw)
            if self.lose_next:
                self.lose_next = False
                raise StorageUnavailable("read timed out")
            return result

    adapter = LostReply()
    lock = Storage(adapter).lock("k", ttl=0.15)
    await lock.acquire()
    adapter.lose_next = True
    await asyncio.sleep(0.17)  # a failed renewal, then one that reads the version back first
    assert lock.held and adapter.calls["get_versioned"] == 1
    await lock.release()
    assert await adapter.get(LOCK_PREFIX + "k") is None


async def test_an_acquire_whose_reply_was_lost_leaves_no_lease() -> None:
    class LostReply(MemoryAdapter):
        async def set_if(self, key: str, value: bytes, **kw: Any) -> Version | None:
            await super().set_if(key, value, **kw)
            raise StorageUnavailable("read timed out")

    adapter = LostReply()
    with pytest.raises(StorageUnavailable):
        await Storage(adapter).lock("k").acquire()
    assert await adapter.get(LOCK_PREFIX + "k") is None  # read back and deleted: it was ours


async def test_a_failed_release_is_raised_unless_the_block_failed() -> None:
    class NoDelete(MemoryAdapter):
        async def delete_if(self, key: str, *, version: Version) -> bool:
            raise StorageUnavailable("backend went away")

    adapter = NoDelete()
    storage: Storage[Any] = Storage(adapter)
    with pytest.raises(StorageUnavailable):
        async with storage.lock("a", ttl=5):
            pass
    with pytest.raises(KeyError):  # the block's own error wins; the release failure is logged
        async with storage.lock("b"):
            raise KeyError("handler bug")
    ttl = await adapter.get_expiry(LOCK_PREFIX + "a")
    assert ttl is not None and ttl - time.time() <= 5  # the lease runs out by itself
    # The in-process queue was freed anyway: the next holder here waits for the lease only.
    with pytest.raises(ConflictError, match="another holder after"):
        await storage.lock("a", timeout=0).acquire()


async def test_a_lock_is_used_once() -> None:
    lock = Storage(MemoryAdapter()).lock("k")
    async with lock:
        pass
    with pytest.raises(UsageError):
        await lock.acquire()
    await lock.release()  # not held: nothing to do


async def test_cancelled_waiters_free_everything(clock: ManualClock) -> None:
    adapter = MemoryAdapter()
    storage: Storage[Any] = Storage(adapter, namespace="bot")
    other: Storage[Any] = Storage(adapter, namespace="bot")
    async with other.lock("k"):  # held "elsewhere": our waiters poll the lease
        waiters = [asyncio.ensure_future(storage.lock("k").acquire()) for _ in range(5)]
        await asyncio.sleep(0.02)
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
    async with storage.lock("k", timeout=0):
        pass
    assert [k async for k in adapter.scan("")] == []


async def test_without_atomic_the_lock_is_in_process() -> None:
    storage: Storage[Any] = Storage(Plain(), namespace="bot")
    view = storage.with_namespace("bot")  # views share the in-process locks
    inside, peak = 0, 0

    async def work(on: Storage[Any]) -> None:
        nonlocal inside, peak
        async with on.lock("k"):
            inside += 1
            peak = max(peak, inside)
            await asyncio.sleep(0)
            inside -= 1

    await asyncio.gather(*(work(view if i % 2 else storage) for i in range(20)))
    assert peak == 1
    async with storage.lock("k") as lock:
        assert lock.held and not lock.lost
        with pytest.raises(ConflictError):
            await view.lock("k", timeout=0.01).acquire()
    async with view.lock("k", timeout=0):
        pass


async def test_lease_entries_stay_out_of_keys_clear_and_expiry(clock: ManualClock) -> None:
    adapter = MemoryAdapter(clock=clock, sweep_interval=0)
    for namespace in ("bot", None):
        storage: Storage[Any] = Storage(adapter, namespace=namespace, clock=clock)
        expired: list[str] = []
        unsubscribe = storage.on_expire(lambda key, value, seen=expired: seen.append(key))
        await storage.set("chat:1", {"n": 1})
        async with storage.lock("chat:1"):
            assert [k async for k in storage.keys()] == ["chat:1"]
            assert await storage.clear() == 1
            assert await adapter.has(LOCK_PREFIX + storage.full_key("chat:1"))  # still held
        # A crashed holder's lease expires without being reported as a value.
        await adapter.set(LOCK_PREFIX + storage.full_key("x"), b"token", expires_at=clock() + 1)
        clock.advance(2)
        adapter.sweep()
        assert expired == []
        unsubscribe()
    bare: Storage[Any] = Storage(adapter)
    with pytest.raises(InvalidKey, match="reserved"):
        await bare.set(LOCK_PREFIX + "chat:1", 1)
    await Storage(adapter, namespace="x").set(LOCK_PREFIX + "fine", 1)  # namespaced: any key


async def test_storage_versioned_helpers(storage: Storage[Any]) -> None:
    assert await storage.get_versioned("k") is None
    first = await storage.set_if("k", {"n": 1}, version=None, ttl=60)
    assert first is not None
    assert await storage.get_versioned("k") == ({"n": 1}, first)
    assert await storage.set_if("k", {"n": 0}, version=None) is None
    second = await storage.set_if("k", {"n": 2}, version=first)
    assert second is not None and second != first
    assert await storage.delete_if("k", version=first) is False
    assert await storage.delete_if("k", version=second) is True
    assert await storage.get("k") is None
    plain: Storage[Any] = Storage(Plain())
    for call in (
        plain.get_versioned("k"),
        plain.set_if("k", 1, version=None),
        plain.delete_if("k", version=1),
    ):
        with pytest.raises(BotstateError, match="ATOMIC"):
            await call


async def test_entry_reads_and_writes_stored_bytes(storage: Storage[Any]) -> None:
    await storage.set("k", {"a": 1})
    entry = storage.entry("k")
    assert entry.key == "k"
    assert await entry.get() == b'{"a":1}'
    await entry.set(b'{"a":2}', ttl=60)
    assert await storage.get("k") == {"a": 2}
    assert await storage.ttl("k") == pytest.approx(60)
    got = await entry.get_versioned()
    assert got is not None and got[0] == b'{"a":2}'
    version = await entry.set_if(b"[]", version=got[1])
    assert version is not None and await storage.get("k") == []
    assert await entry.delete_if(version=version) is True
    assert await entry.delete() is False
    with pytest.raises(EncodeError):
        entry.set("not bytes")  # type: ignore[arg-type]
    with pytest.raises(InvalidKey):
        storage.entry("")
    with pytest.raises(UnsupportedOperation):
        Storage(Plain()).entry("k").get_versioned()
