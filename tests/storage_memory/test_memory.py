"""What is specific to the memory adapter: URL options, LRU cap, sweeper, events."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import textwrap
from collections import OrderedDict

import pytest

import botstate
import botstate.adapter
from botstate.adapter import ExpiryEvent, ManualClock
from botstate_storage_memory import DEFAULT_MAX_ENTRIES, MemoryAdapter


def test_url_options_and_defaults() -> None:
    adapter = MemoryAdapter.from_url("memory://?max_entries=10&sweep_interval=0.5")
    assert (adapter.max_entries, adapter.sweep_interval) == (10, 0.5)
    default = MemoryAdapter.from_url("memory://")
    assert default.max_entries == DEFAULT_MAX_ENTRIES == 100_000
    assert MemoryAdapter.from_url(None, max_entries=3).max_entries == 3


@pytest.mark.parametrize(
    "url",
    [
        "memory://?max_entries=lots",
        "memory://?bogus=1",
        "memory://host",
        "memory://?max_entries=-1",
    ],
)
def test_bad_urls(url: str) -> None:
    with pytest.raises(botstate.ConfigError):
        MemoryAdapter.from_url(url)


async def test_lru_cap_evicts_least_recently_used_with_event() -> None:
    adapter = MemoryAdapter(max_entries=3)
    events: list[ExpiryEvent] = []
    adapter.on_expire(events.append)
    for key in "abc":
        await adapter.set(key, key.encode())
    await adapter.get("a")  # a is now the most recently used
    await adapter.set("d", b"d")
    assert await adapter.get("b") is None
    assert sorted([k async for k in adapter.scan()]) == ["a", "c", "d"]
    assert [(e.key, e.value, e.reason) for e in events] == [("b", b"b", "evicted")]
    await adapter.close()


@pytest.mark.parametrize("seed", range(5))
async def test_lru_cap_evicts_exactly_like_a_reference_lru(seed: int) -> None:
    """Random reads, writes, batches, compare-and-set and deletes under a small cap:
    the evictions are those of a textbook LRU (an OrderedDict moved on every use)."""
    rng = random.Random(seed)
    cap = 6
    adapter = MemoryAdapter(max_entries=cap, sweep_interval=0)
    events: list[str] = []
    adapter.on_expire(lambda event: events.append(event.key))
    model: OrderedDict[str, bytes] = OrderedDict()
    expected: list[str] = []

    def use(key: str) -> None:
        model.move_to_end(key)

    def write(key: str, value: bytes, evict: bool = True) -> None:
        model[key] = value
        model.move_to_end(key)
        while evict and len(model) > cap:
            expected.append(model.popitem(last=False)[0])

    for step in range(600):
        key = f"k{rng.randrange(12)}"
        value = f"v{step}".encode()
        op = rng.choice(["set", "get", "get_many", "set_many", "versioned", "delete", "has"])
        if op == "set":
            await adapter.set(key, value)
            write(key, value)
        elif op == "get":
            assert await adapter.get(key) == model.get(key)
            if key in model:
                use(key)
        elif op == "get_many":
            keys = [f"k{rng.randrange(12)}" for _ in range(rng.randrange(1, 5))]
            found = await adapter.get_many(keys)
            assert found == {k: model[k] for k in keys if k in model}
            for k in sorted(found):  # one call is one use; ties evict the smaller key first
                use(k)
        elif op == "set_many":
            items = {f"k{rng.randrange(12)}": value for _ in range(rng.randrange(1, 4))}
            await adapter.set_many(items)
            for k, v in items.items():  # a batch is written whole, then evicts
                write(k, v, evict=False)
            write(k, v)
        elif op == "versioned":
            got = await adapter.get_versioned(key)
            assert (got[0] if got else None) == model.get(key)
            if got is not None:
                use(key)
                assert await adapter.set_if(key, value, version=got[1]) is not None
                write(key, value)
        elif op == "delete":
            assert await adapter.delete(key) == (key in model)
            model.pop(key, None)
        else:
            assert await adapter.has(key) == (key in model)  # not a use
        assert events == expected
        assert len(adapter) == len(model)
    await adapter.close()


async def test_expired_entries_are_dropped_lazily_and_reported_once() -> None:
    clock = ManualClock(100.0)
    adapter = MemoryAdapter(clock=clock, sweep_interval=0)
    events: list[ExpiryEvent] = []
    adapter.on_expire(events.append)
    await adapter.set("k", b"v", expires_at=110)
    clock.advance(10)
    assert await adapter.get("k") is None
    assert adapter.sweep() == 0
    assert [(e.key, e.value, e.reason) for e in events] == [("k", b"v", "expired")]
    assert len(adapter) == 0


async def test_overwritten_entry_is_not_expired_by_its_old_deadline() -> None:
    clock = ManualClock(100.0)
    adapter = MemoryAdapter(clock=clock, sweep_interval=0)
    await adapter.set("k", b"old", expires_at=105)
    await adapter.set("k", b"new", expires_at=200)
    clock.advance(10)
    assert adapter.sweep() == 0
    assert await adapter.get("k") == b"new"


async def test_sweeper_starts_lazily_and_stops_on_close() -> None:
    adapter = MemoryAdapter(sweep_interval=0.02)
    events: list[ExpiryEvent] = []

    async def on_expire(event: ExpiryEvent) -> None:
        events.append(event)

    adapter.on_expire(on_expire)
    assert adapter._sweeper is None
    await adapter.set("plain", b"x")
    assert adapter._sweeper is None
    await adapter.set("k", b"v", expires_at=botstate.adapter.system_clock() + 0.05)
    sweeper = adapter._sweeper
    assert sweeper is not None and not sweeper.done()
    await asyncio.sleep(0.2)
    assert [e.key for e in events] == ["k"]
    assert len(adapter) == 1
    await adapter.set("k2", b"v", expires_at=botstate.adapter.system_clock() + 100)
    await adapter.close()
    assert adapter._sweeper is None and sweeper.done()
    tasks = [t for t in asyncio.all_tasks() if t.get_name() == "botstate-memory-sweeper"]
    assert tasks == []


async def test_heap_does_not_grow_without_bound_on_sliding_expiry() -> None:
    clock = ManualClock(0.0)
    adapter = MemoryAdapter(clock=clock, sweep_interval=0)
    for i in range(10_000):
        await adapter.set("session", b"v", expires_at=1000.0 + i)
    assert len(adapter._heap) <= 2 * len(adapter) + 65


async def test_failing_callback_does_not_break_others(caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock(0.0)
    adapter = MemoryAdapter(clock=clock, sweep_interval=0)
    seen: list[str] = []

    def broken(event: ExpiryEvent) -> None:
        raise RuntimeError("boom")

    adapter.on_expire(broken)
    adapter.on_expire(lambda e: seen.append(e.key))
    await adapter.set("k", b"v", expires_at=1)
    clock.advance(2)
    adapter.sweep()
    assert seen == ["k"]
    assert "boom" in caplog.text


async def test_values_are_copied() -> None:
    adapter = MemoryAdapter()
    buf = bytearray(b"abc")
    await adapter.set("k", buf)  # type: ignore[arg-type]
    buf[0] = ord("z")
    assert await adapter.get("k") == b"abc"


async def test_batch_expiry_is_swept_key_by_key() -> None:
    clock = ManualClock(0.0)
    adapter = MemoryAdapter(clock=clock, sweep_interval=0)
    events: list[ExpiryEvent] = []
    adapter.on_expire(events.append)
    await adapter.set_many({"a": b"1", "b": b"2", "c": b"3"}, expires_at=10)
    await adapter.set("b", b"kept", expires_at=50)  # rewritten with a later deadline
    await adapter.delete("c")
    clock.advance(11)
    assert adapter.sweep() == 1
    assert [(e.key, e.value) for e in events] == [("a", b"1")]
    assert await adapter.get("b") == b"kept"
    clock.advance(40)
    assert adapter.sweep() == 1
    assert [e.key for e in events] == ["a", "b"]
    assert len(adapter) == 0


async def test_closed_adapter_refuses_compare_and_set_and_forgets_entries() -> None:
    adapter = MemoryAdapter()
    await adapter.set("k", b"v")
    got = await adapter.get_versioned("k")
    assert got is not None
    await adapter.close()
    assert len(adapter) == 0
    calls = [
        adapter.get("k"),
        adapter.set("k", b"w"),
        adapter.get_versioned("k"),
        adapter.set_if("k", b"w", version=got[1]),
        adapter.set_if("new", b"w", version=None),
        adapter.delete_if("k", version=got[1]),
        adapter.get_expiry("k"),
    ]
    for call in calls:
        with pytest.raises(botstate.StorageUnavailable, match="closed"):
            await call
    assert len(adapter) == 0 and "entries=0" in repr(adapter)


def test_import_and_open_load_no_asyncio_and_what_needs_it_imports_it() -> None:
    """``import botstate`` + ``open_storage("memory://")`` run no event loop, so they
    load no asyncio (it costs more than the rest of botstate); the sweeper, locks,
    leases, expiry callbacks and close import it when first used."""
    code = textwrap.dedent(
        """
        import sys
        import botstate, botstate.adapter
        storage = botstate.open_storage("memory://?sweep_interval=0.01")
        sessions = botstate.Sessions(storage, initial=dict, isolation="distributed")
        print("asyncio" in sys.modules)

        import asyncio

        async def main():
            expired = asyncio.Event()
            async def seen(key, value):
                expired.set()
            storage.on_expire(seen)  # an async callback: a task per event
            await storage.set("k", 1, ttl=0.05)  # the first expiring write starts the sweeper
            order = []
            async def hold(n):
                async with storage.lock("l"):  # a lease in the store; the second one waits
                    order.append(n)
                    await asyncio.sleep(0.01)
                    order.append(n)
            await asyncio.gather(hold(1), hold(2))
            async with sessions.open("s") as session:
                session.data["n"] = 1
            await asyncio.wait_for(expired.wait(), 5)
            print(order, await storage.get("k"), await storage.get("s"))
            await sessions.close()
            await storage.close()

        asyncio.run(main())
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["False", "[1, 1, 2, 2] None {'_v': 1, '_d': {'n': 1}}"]
