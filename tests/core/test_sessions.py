"""Sessions over the memory adapter.

Writes only on change, lazy, multi, migrations, TTL, isolation.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest

import botstate
from botstate import (
    ConfigError,
    MigrationError,
    MultiSessions,
    Session,
    Sessions,
    Storage,
    UnsupportedOperation,
    chat_key,
    topic_key,
    user_in_chat_key,
    user_key,
)
from botstate.adapter import ManualClock, Version
from botstate.errors import UsageError
from botstate.storage import LOCK_PREFIX
from botstate_storage_memory import MemoryAdapter


class CountingAdapter(MemoryAdapter):
    """The real memory adapter, counting every contract call made on it."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.calls: Counter[str] = Counter()

    def __getattribute__(self, name: str) -> Any:
        if name in {
            "get",
            "set",
            "delete",
            "has",
            "get_many",
            "set_many",
            "delete_many",
            "get_versioned",
            "set_if",
            "delete_if",
            "get_expiry",
        }:
            object.__getattribute__(self, "calls")[name] += 1
        return object.__getattribute__(self, name)

    @property
    def writes(self) -> int:
        return sum(
            self.calls[n]
            for n in ("set", "delete", "set_many", "delete_many", "set_if", "delete_if")
        )


@pytest.fixture
def adapter(clock: ManualClock) -> CountingAdapter:
    """Overrides the conftest's plain adapter: conftest's ``storage`` then counts calls too."""
    return CountingAdapter(clock=clock, sweep_interval=0)


async def test_untouched_initial_is_never_written(
    storage: Storage[Any], adapter: CountingAdapter
) -> None:
    sessions = Sessions(storage, initial=lambda: {"counter": 0})
    async with sessions.open("chat:1") as session:
        assert session.data == {"counter": 0}
        assert not session.changed
    # One read (versioned on this ATOMIC adapter: saves are compare-and-set), no write.
    assert adapter.calls["get_versioned"] == 1 and adapter.writes == 0
    assert not await storage.has("chat:1")


async def test_changed_session_is_saved_and_unchanged_costs_one_read(
    storage: Storage[Any], adapter: CountingAdapter
) -> None:
    sessions = Sessions(storage, initial=lambda: {"counter": 0})
    async with sessions.open("chat:1") as session:
        session.data["counter"] += 1
    assert adapter.writes == 1
    adapter.calls.clear()
    async with sessions.open("chat:1") as session:
        assert session.data == {"counter": 1}
        session.data["counter"] += 0  # touched, but the bytes are the same
    assert adapter.calls == Counter({"get_versioned": 1})  # ATOMIC: read with a version


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (1, True),  # equal in Python, "1" vs "true" in JSON
        (1, 1.0),
        (0, False),
        ("1", 1),
        ([1, 2], [2, 1]),
        ({"a": 1, "b": 2}, {"b": 2, "a": 1}),  # same dict, other key order: other bytes
    ],
)
async def test_a_change_python_calls_equal_is_still_saved(
    storage: Storage[Any], adapter: CountingAdapter, before: Any, after: Any
) -> None:
    sessions = Sessions(storage, initial=lambda: {"x": None})
    async with sessions.open("k") as session:
        session.data["x"] = before
    async with sessions.open("k") as session:
        session.data["x"] = after
    assert storage.encode("k", before) != storage.encode("k", after)
    got = await storage.get("k")
    assert got["_d"]["x"] == after and type(got["_d"]["x"]) is type(after)
    assert list(got["_d"]["x"]) == list(after) if isinstance(after, (list, dict)) else True


async def test_unchanged_data_is_not_rewritten_whatever_wrote_its_bytes(
    storage: Storage[Any], adapter: CountingAdapter
) -> None:
    """Data read and left as it was is not written back, even where the stored
    JSON is spelled otherwise (spaces, escapes: written by another program)."""
    sessions = Sessions(storage, initial=dict)
    await storage.entry("k").set(rb'{ "_v": 1, "_d": {"name": "\u0041nn", "n": [1, 2]} }')
    adapter.calls.clear()
    async with sessions.open("k") as session:
        assert session.data == {"name": "Ann", "n": [1, 2]}
        session.data["n"].append(3)
        session.data["n"].pop()
        assert not session.changed
    assert adapter.writes == 0


async def test_typed_or_unusual_values_fall_back_to_comparing_encodings(
    storage: Storage[Any], adapter: CountingAdapter
) -> None:
    class Tag(str):
        pass

    sessions = Sessions(storage, initial=lambda: {"tag": Tag("a")})
    async with sessions.open("k") as session:
        assert not session.changed  # an untouched initial() with a str subclass in it
    assert adapter.writes == 0
    async with sessions.open("k") as session:
        session.data["tag"] = Tag("b")
    assert (await storage.get("k"))["_d"] == {"tag": "b"}
    adapter.calls.clear()
    async with sessions.open("k") as session:
        session.data["tag"] = Tag("b")  # a subclass instance encoding as what is stored
    assert adapter.writes == 0


async def test_clear_and_none_delete(storage: Storage[Any]) -> None:
    sessions: Sessions[dict[str, int]] = Sessions(storage, initial=dict)
    for how in ("clear", "none"):
        async with sessions.open("k") as session:
            session.data["x"] = 1
        assert await storage.has("k")
        async with sessions.open("k") as session:
            if how == "clear":
                session.clear()
            else:
                session.data = None  # type: ignore[assignment]
        assert not await storage.has("k")


async def test_nothing_saved_when_the_handler_raises(storage: Storage[Any]) -> None:
    sessions = Sessions(storage, initial=lambda: {"n": 0})
    with pytest.raises(RuntimeError):
        async with sessions.open("k") as session:
            session.data["n"] = 99
            raise RuntimeError("handler failed")
    assert not await storage.has("k")
    assert sessions.idle_locks == 0


async def test_lazy_session_does_no_io_until_loaded(
    storage: Storage[Any], adapter: CountingAdapter
) -> None:
    sessions = Sessions(storage, initial=lambda: {"n": 0}, lazy=True, isolation="distributed")
    async with sessions.open("k") as session:
        assert not session.loaded
        with pytest.raises(RuntimeError, match="load"):
            session.data  # noqa: B018
    assert sum(adapter.calls.values()) == 0
    async with sessions.open("k") as session:
        data = await session.load()
        data["n"] += 1
    async with sessions.open("k", lazy=False) as session:
        assert session.data == {"n": 1}


async def test_lazy_assignment_without_load_is_written(
    storage: Storage[Any], adapter: CountingAdapter
) -> None:
    sessions = Sessions(storage, lazy=True)
    async with sessions.open("k") as session:
        session.data = {"fresh": True}
    assert adapter.calls["get"] == 0
    assert (await storage.get("k"))["_d"] == {"fresh": True}


async def test_multi_sessions_with_own_storage_key_and_initial(clock: ManualClock) -> None:
    users: Storage[Any] = Storage(MemoryAdapter(clock=clock), namespace="users", clock=clock)
    chats = CountingAdapter(clock=clock)
    chat_storage: Storage[Any] = Storage(chats, namespace="chats", clock=clock)

    @dataclass
    class Update:
        chat_id: int
        user_id: int

    multi = MultiSessions(
        {
            "user": Sessions(
                users, key=lambda u: user_key(u.user_id), initial=lambda: {"lang": "en"}
            ),
            "chat": Sessions(
                chat_storage, key=lambda u: chat_key(u.chat_id), initial=lambda: {"n": 0}, lazy=True
            ),
        }
    )
    async with multi.open(Update(-5, 42)) as s:
        s.user.data["lang"] = "de"
        assert list(s) == ["user", "chat"]
    assert sum(chats.calls.values()) == 0  # the lazy part was never touched
    async with multi.open(Update(-5, 42)) as s:
        assert s["user"].data == {"lang": "de"}
        (await s.chat.load())["n"] += 1
    assert (await chat_storage.get("chat:-5"))["_d"] == {"n": 1}
    assert (await users.get("user:42"))["_d"] == {"lang": "de"}


async def test_migrations_upgrade_old_data_in_order(storage: Storage[Any]) -> None:
    v1 = Sessions(storage, version=1)
    async with v1.open("k") as session:
        session.data = {"name": "Ann Lee"}
    v3 = Sessions(
        storage,
        version=3,
        migrations={
            2: lambda d: {"first": d["name"].split()[0], "last": d["name"].split()[1]},
            3: lambda d: {**d, "lang": "en"},
        },
    )
    async with v3.open("k") as session:
        assert session.data == {"first": "Ann", "last": "Lee", "lang": "en"}
    stored = await storage.get("k")
    assert (
        stored["_v"] == 3
    )  # migrated data is written back even though the handler changed nothing
    with pytest.raises(MigrationError, match="newer"):
        async with v1.open("k"):
            pass
    assert (await storage.get("k"))["_v"] == 3


async def test_migration_errors(storage: Storage[Any]) -> None:
    async with Sessions(storage).open("k") as session:
        session.data = {"a": 1}
    gap = Sessions(storage, version=3, migrations={3: lambda d: d})
    with pytest.raises(MigrationError, match="no migration to version 2"):
        async with gap.open("k"):
            pass

    def broken(d: Any) -> Any:
        raise KeyError("missing field")

    with pytest.raises(MigrationError, match="failed"):
        async with Sessions(storage, version=2, migrations={2: broken}).open("k"):
            pass
    with pytest.raises(ConfigError):
        Sessions(storage, version=2, migrations={5: broken})
    with pytest.raises(ConfigError):
        Sessions(storage, version=0)


async def test_legacy_unwrapped_data_is_version_zero_when_migration_1_exists(
    storage: Storage[Any],
) -> None:
    await storage.set("old", {"count": "7"})
    sessions = Sessions(storage, version=1, migrations={1: lambda d: {"count": int(d["count"])}})
    async with sessions.open("old") as session:
        assert session.data == {"count": 7}


async def test_sliding_ttl_pushes_expiry_on_each_save(
    storage: Storage[Any], clock: ManualClock
) -> None:
    sessions = Sessions(storage, initial=lambda: {"n": 0}, ttl=100, sliding=True)
    async with sessions.open("k") as s:
        s.data["n"] += 1
    clock.advance(60)
    async with sessions.open("k") as s:
        s.data["n"] += 1
    assert await storage.ttl("k") == pytest.approx(100)
    clock.advance(60)  # 120 s after creation: alive thanks to the second save
    async with sessions.open("k") as s:
        assert s.data == {"n": 2}
    clock.advance(100)
    async with sessions.open("k") as s:
        assert s.data == {"n": 0}


async def test_fixed_ttl_keeps_the_first_expiry(storage: Storage[Any], clock: ManualClock) -> None:
    sessions = Sessions(storage, initial=lambda: {"n": 0}, ttl=100, sliding=False)
    async with sessions.open("k") as s:
        s.data["n"] += 1
    clock.advance(60)
    async with sessions.open("k") as s:
        s.data["n"] += 1
    assert await storage.ttl("k") == pytest.approx(40)
    clock.advance(41)
    async with sessions.open("k") as s:
        assert s.data == {"n": 0}


async def test_on_expire_gets_key_and_last_data(
    adapter: CountingAdapter, clock: ManualClock
) -> None:
    storage: Storage[Any] = Storage(adapter, clock=clock)  # no namespace: lock keys must not leak
    expired: list[tuple[str, Any]] = []
    sessions = Sessions(
        storage,
        initial=lambda: {"step": 0},
        ttl=30,
        isolation="distributed",
        on_expire=lambda key, data: expired.append((key, data)),
    )
    async with sessions.open("chat:1") as s:
        s.data["step"] = 2
    clock.advance(31)
    adapter.sweep()
    assert expired == [("chat:1", {"step": 2})]
    await sessions.close()


async def test_on_expire_needs_expiry_events(storage: Storage[Any]) -> None:
    class NoEvents(MemoryAdapter):
        capabilities = frozenset({botstate.Capability.ATOMIC})

    with pytest.raises(UnsupportedOperation):
        Sessions(Storage(NoEvents()), on_expire=lambda k, v: None)


async def test_process_isolation_200_concurrent_tasks_exact(storage: Storage[Any]) -> None:
    sessions = Sessions(storage, initial=lambda: {"n": 0}, isolation="process")

    async def handler() -> None:
        async with sessions.open("chat:1") as s:
            n = s.data["n"]
            await asyncio.sleep(0)  # give every other task the chance to interleave
            s.data["n"] = n + 1

    await asyncio.gather(*(handler() for _ in range(200)))
    async with sessions.open("chat:1") as s:
        assert s.data == {"n": 200}
    assert sessions.idle_locks == 0


async def test_without_isolation_concurrent_updates_are_lost(storage: Storage[Any]) -> None:
    """Why isolation exists: the same handlers with isolation='none' lose updates.

    On an ATOMIC adapter no loss is silent: each lost update is a ConflictError
    (saves are compare-and-set on the version read). Without ATOMIC they are
    silently lost, as before.
    """
    plain: Storage[Any] = Storage(NotAtomic(), namespace="bot")
    for store in (storage, plain):
        sessions = Sessions(store, initial=lambda: {"n": 0}, isolation="none")

        async def handler(sessions: Sessions[Any] = sessions) -> None:
            async with sessions.open("chat:1") as s:
                n = s.data["n"]
                await asyncio.sleep(0)
                s.data["n"] = n + 1

        results = await asyncio.gather(*(handler() for _ in range(50)), return_exceptions=True)
        conflicts = sum(isinstance(r, botstate.ConflictError) for r in results)
        assert all(r is None or isinstance(r, botstate.ConflictError) for r in results)
        async with sessions.open("chat:1") as s:
            assert s.data["n"] < 50
            if store is storage:  # ATOMIC: every update either counted or reported
                assert s.data["n"] + conflicts == 50
            else:  # not ATOMIC: nothing reported, updates silently lost
                assert conflicts == 0


class NotAtomic(MemoryAdapter):
    capabilities = MemoryAdapter.capabilities - {botstate.Capability.ATOMIC}


async def test_distributed_isolation_on_memory_and_lease_renewal() -> None:
    adapter = MemoryAdapter()
    storage: Storage[Any] = Storage(adapter, namespace="bot")
    # Two Storage + Sessions objects stand for two processes: they share no process lock.
    other: Storage[Any] = Storage(adapter, namespace="bot")
    a = Sessions(storage, initial=lambda: {"n": 0}, isolation="distributed", lock_ttl=0.15)
    b = Sessions(other, initial=lambda: {"n": 0}, isolation="distributed", lock_ttl=0.15)

    async def slow(sessions: Sessions[Any]) -> None:
        async with sessions.open("k") as s:
            n = s.data["n"]
            await asyncio.sleep(0.4)  # longer than the lease: renewal must keep it
            s.data["n"] = n + 1

    async def quick(sessions: Sessions[Any]) -> None:
        async with sessions.open("k") as s:
            n = s.data["n"]
            await asyncio.sleep(0)
            s.data["n"] = n + 1

    await asyncio.gather(slow(a), *(quick(b if i % 2 else a) for i in range(60)))
    async with a.open("k") as s:
        assert s.data == {"n": 61}
    assert [k async for k in adapter.scan(LOCK_PREFIX)] == []  # every lease released


async def test_distributed_needs_atomic(storage: Storage[Any]) -> None:
    class Plain(botstate.adapter.BaseAdapter):
        pass

    with pytest.raises(UnsupportedOperation, match="ATOMIC"):
        Sessions(Storage(Plain()), isolation="distributed")
    with pytest.raises(ConfigError, match="isolation"):
        Sessions(storage, isolation="thread")  # type: ignore[arg-type]


async def test_key_function_fixed_key_and_bad_keys(storage: Storage[Any]) -> None:
    by_fn = Sessions(storage, key=lambda update: chat_key(update["chat"]))
    async with by_fn.open({"chat": 7}) as s:
        assert s.key == "chat:7"
    fixed = Sessions(storage, key="global")
    async with fixed.open() as s:
        assert s.key == "global"
    plain = Sessions(storage)
    with pytest.raises(ConfigError, match="key"):
        async with plain.open(123):
            pass
    with pytest.raises(botstate.InvalidKey):
        async with plain.open(""):
            pass


def test_scope_keys() -> None:
    assert chat_key(-100) == "chat:-100"
    assert user_key(42) == "user:42"
    assert user_in_chat_key(-100, 42) == "chat:-100:user:42"
    assert topic_key(-100, 3, bot_id="b1") == "bot:b1:chat:-100:topic:3"
    for bad in ("", "a:b", None, 1.5, True):
        with pytest.raises(botstate.InvalidKey):
            chat_key(bad)  # type: ignore[arg-type]


async def test_handler_decorator_injects_the_session(storage: Storage[Any]) -> None:
    @dataclass
    class Chat:
        id: int

    @dataclass
    class Update:  # the shape python-telegram-bot handlers receive
        effective_chat: Chat

    sessions = Sessions(storage, initial=lambda: {"seen": 0})

    @sessions.handler(lambda update, context: chat_key(update.effective_chat.id))
    async def on_message(update: Update, context: object, session: Any) -> int:
        session.data["seen"] += 1
        return int(session.data["seen"])

    assert [await on_message(Update(Chat(1)), None) for _ in range(3)] == [1, 2, 3]
    assert on_message.__name__ == "on_message"


async def test_lazy_multi_parts_loaded_in_any_order_do_not_deadlock() -> None:
    shared: Storage[Any] = Storage(MemoryAdapter(), namespace="m")
    multi = MultiSessions(
        {
            "user": Sessions(shared.with_namespace("u"), initial=lambda: {"n": 0}, lazy=True),
            "chat": Sessions(shared.with_namespace("c"), initial=lambda: {"n": 0}, lazy=True),
        }
    )

    async def handler(order: tuple[str, str]) -> None:
        async with multi.open("k") as s:
            for name in order:
                data = await s[name].load()
                await asyncio.sleep(0)  # let the other handler take its first lock
                data["n"] += 1

    orders = [("user", "chat") if i % 2 else ("chat", "user") for i in range(20)]
    await asyncio.wait_for(asyncio.gather(*(handler(order) for order in orders)), timeout=5)
    async with multi.open("k") as s:
        assert (await s.user.load())["n"] == 20
        assert (await s.chat.load())["n"] == 20


async def test_evicted_sessions_are_not_reported_as_timed_out() -> None:
    adapter = MemoryAdapter(max_entries=1, sweep_interval=0)
    storage: Storage[Any] = Storage(adapter, namespace="bot")
    expired: list[str] = []
    sessions = Sessions(storage, initial=dict, on_expire=lambda key, data: expired.append(key))
    for key in ("a", "b"):
        async with sessions.open(key) as s:
            s.data["x"] = 1
    assert expired == []  # "a" was evicted by the size cap, it did not time out
    evicted: list[str] = []
    storage.on_expire(lambda key, value: evicted.append(key), evictions=True)
    async with sessions.open("c") as s:
        s.data["x"] = 1
    assert evicted == ["b"]


@pytest.mark.parametrize(
    "bad",
    [
        {"ttl": "1h"},
        {"ttl": 0},
        {"sliding": "no"},
        {"lock_ttl": 0},
        {"lock_ttl": None},
        {"lock_timeout": -1},
        {"lock_timeout": "soon"},
    ],
)
def test_bad_session_settings_are_config_errors(storage: Storage[Any], bad: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        Sessions(storage, isolation="distributed", **bad)


def test_bad_storage_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="ttl"):
        botstate.open_storage({"adapter": "memory", "ttl": "1h"})
    with pytest.raises(ConfigError, match="max_retries"):
        botstate.open_storage("memory://", max_retries=-1)
    storage = botstate.open_storage({"adapter": "memory", "max_retries": 3})
    assert storage.max_retries == 3


async def test_lease_renewal_failures_end_in_lost_not_silence() -> None:
    class Flaky(MemoryAdapter):
        failing = False

        async def set_if(self, key: str, value: bytes, **kw: Any) -> Version | None:
            if self.failing:
                raise botstate.StorageUnavailable("backend went away")
            return await super().set_if(key, value, **kw)

    adapter = Flaky()
    lock = Storage(adapter).lock("lock", ttl=0.15)
    await lock.acquire()
    adapter.failing = True
    await asyncio.sleep(0.4)  # renewals fail for longer than the lease lasts
    assert lock.lost and not lock.held
    await lock.release()


async def test_atomic_reads_keep_an_entry_recently_used() -> None:
    adapter = MemoryAdapter(max_entries=2)
    await adapter.set("hot", b"1")
    await adapter.set("cold", b"2")
    assert await adapter.get_versioned("hot") is not None
    await adapter.set("new", b"3")
    assert await adapter.get("hot") == b"1"
    assert await adapter.get("cold") is None


async def test_distributed_session_round_trips(
    storage: Storage[Any], adapter: CountingAdapter
) -> None:
    """What a distributed session costs, call by call (each call is one round trip).

    The lock lives in the session's own entry: open = read (get_versioned) +
    lock (set_if on the version read, the same envelope plus the lock), exit =
    one set_if that writes the change and drops the lock at once. Changed: 3
    round trips; unchanged: 3 (the exit restores the envelope without the
    lock); a new session left untouched: read, lock placeholder, delete_if.
    0.2's first cut used a separate lock entry (take, read, write, release: 4);
    0.1 also read the lease back after taking it (5).
    """
    sessions = Sessions(storage, initial=lambda: {"n": 0}, isolation="distributed")
    async with sessions.open("chat:1") as session:
        assert adapter.calls == Counter({"get_versioned": 1, "set_if": 1})  # read, lock
        session.data["n"] += 1
    assert adapter.calls == Counter({"get_versioned": 1, "set_if": 2})
    adapter.calls.clear()
    async with sessions.open("chat:1") as session:
        assert session.data == {"n": 1}
    assert adapter.calls == Counter({"get_versioned": 1, "set_if": 2})
    adapter.calls.clear()
    async with sessions.open("chat:new") as session:
        assert session.data == {"n": 0}
    assert adapter.calls == Counter({"get_versioned": 1, "set_if": 1, "delete_if": 1})
    adapter.calls.clear()
    async with sessions.open("chat:1", lazy=True):
        pass
    assert adapter.calls == Counter()  # a lazy session never loaded takes no lock
    assert [k async for k in adapter.scan("")] == ["bot:chat:1"]  # no lock entry, no placeholder
    assert await storage.get("chat:1") == {"_v": 1, "_d": {"n": 1}}  # no lock left in it


async def test_distributed_isolation_excludes_other_processes(storage: Storage[Any]) -> None:
    """Was test_distributed_isolation_is_storage_lock: the lock now lives in the session's
    entry, so the holder that excludes it is another process's open session."""
    other: Storage[Any] = Storage(storage.adapter, namespace="bot", clock=storage.clock)
    sessions = Sessions(storage, initial=dict, isolation="distributed", lock_timeout=0.05)
    elsewhere = Sessions(other, initial=dict, isolation="distributed", lock_timeout=0)
    async with elsewhere.open("chat:1"):  # held as by another process
        with pytest.raises(botstate.ConflictError):
            async with sessions.open("chat:1"):
                pass
    async with sessions.open("chat:1") as session:
        session.data["ok"] = True
        with pytest.raises(botstate.ConflictError):
            async with elsewhere.open("chat:1"):
                pass
    async with elsewhere.open("chat:1") as session:
        assert session.data == {"ok": True}


async def test_save_writes_now_and_later_saves_only_changes(
    storage: Storage[Any], adapter: CountingAdapter
) -> None:
    for isolation in ("process", "distributed"):
        sessions = Sessions(storage, initial=lambda: {"n": 0}, isolation=isolation)  # type: ignore[arg-type]
        key = f"chat:{isolation}"
        async with sessions.open(key) as session:
            session.data["n"] = 1
            await session.save()
            assert (await storage.get(key))["_d"] == {"n": 1}
            assert not session.changed
            await session.save()  # nothing new: no write
            session.data["n"] = 2  # saved again on exit (distributed: on the version saved)
        assert (await storage.get(key))["_d"] == {"n": 2}
    adapter.calls.clear()
    sessions = Sessions(storage, lazy=True)
    async with sessions.open("chat:lazy") as session:
        await session.save()  # not loaded, nothing assigned: nothing to do
    assert adapter.writes == 0


async def test_data_before_load_is_a_usage_error(storage: Storage[Any]) -> None:
    async with Sessions(storage, lazy=True).open("k") as session:
        with pytest.raises(UsageError, match="load"):
            session.data  # noqa: B018
    assert issubclass(UsageError, botstate.BotstateError) and issubclass(UsageError, RuntimeError)


@pytest.mark.parametrize("isolation", ["none", "process"])
async def test_an_opened_session_is_entered_once_and_loaded_only_in_its_block(
    storage: Storage[Any], isolation: str
) -> None:
    sessions: Sessions[dict[str, Any]] = Sessions(storage, lazy=True, isolation=isolation)
    early = sessions.open("chat:once")
    with pytest.raises(UsageError, match="inside its"):
        await early.load()  # outside a block: it would take a lock nothing releases
    opened = sessions.open("chat:once")
    async with opened as session:
        session.data = {"n": 1}
    with pytest.raises(UsageError, match="opened already"):
        async with opened:
            pass
    unread = sessions.open("chat:once")
    async with unread:
        pass  # lazy, never loaded in its block
    with pytest.raises(UsageError, match="inside its"):
        await unread.load()

    async def reopen() -> Any:
        async with sessions.open("chat:once") as session:
            return await session.load()

    # Nothing above left the key locked: a new block opens at once, with the saved data.
    assert await asyncio.wait_for(reopen(), timeout=5) == {"n": 1}


async def test_close_is_async_and_idempotent(adapter: CountingAdapter, clock: ManualClock) -> None:
    storage: Storage[Any] = Storage(adapter, namespace="bot", clock=clock)
    expired: list[str] = []
    sessions = Sessions(storage, ttl=5, on_expire=lambda key, data: expired.append(key))
    async with sessions.open("k") as session:
        session.data = {"x": 1}
    await sessions.close()
    await sessions.close()
    clock.advance(6)
    adapter.sweep()
    assert expired == []


# -- the documented handler forms, as frameworks call them -----------------
class _Obj:
    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)


async def test_handler_docstring_example_with_ptb_arguments(storage: Storage[Any]) -> None:
    """The docstring's form; a bare int id is refused with a hint (chat or user?)."""
    sessions: Sessions[dict[str, int]] = Sessions(storage, initial=lambda: {"n": 0})

    @sessions.handler(lambda update, context: chat_key(update.effective_chat.id))
    async def on_message(update: Any, context: Any, session: Session[dict[str, int]]) -> int:
        session.data["n"] += 1
        return session.data["n"]

    update = _Obj(effective_chat=_Obj(id=42))
    assert await on_message(update, _Obj()) == 1
    assert await on_message(update, _Obj()) == 2
    assert (await storage.get("chat:42"))["_d"] == {"n": 2}

    @sessions.handler(lambda update, context: update.effective_chat.id)
    async def bare_id(update: Any, context: Any, session: Session[dict[str, int]]) -> None:
        raise AssertionError("not reached")

    with pytest.raises(ConfigError, match=r"chat_key\(42\)"):
        await bare_id(update, _Obj())


async def test_handler_key_function_ignores_framework_keywords(storage: Storage[Any]) -> None:
    """aiogram calls handlers as ``handler(message, state=..., bot=..., ...)``."""
    sessions: Sessions[dict[str, int]] = Sessions(storage, initial=lambda: {"n": 0})

    @sessions.handler(lambda message: f"chat:{message.chat.id}")
    async def on_message(message: Any, session: Session[dict[str, int]], **data: Any) -> int:
        session.data["n"] += 1
        assert set(data) == {"state", "bot", "event_from_user"}  # the handler still gets them
        return session.data["n"]

    message = _Obj(chat=_Obj(id=7))
    assert await on_message(message, state=object(), bot=object(), event_from_user=None) == 1

    @sessions.handler(lambda message, bot: f"chat:{message.chat.id}:{bot}")
    async def with_bot(message: Any, session: Session[dict[str, int]], **data: Any) -> int:
        session.data["n"] += 1
        return session.data["n"]

    assert await with_bot(message, state=None, bot="b1") == 1
    assert await storage.has("chat:7:b1")


async def test_handler_default_key_is_the_first_argument(storage: Storage[Any]) -> None:
    sessions: Sessions[int] = Sessions(storage, initial=lambda: 0)

    @sessions.handler()
    async def on_key(key: str, session: Session[int]) -> int:
        session.data += 1
        return session.data

    assert await on_key("chat:1") == 1
    assert await on_key("chat:1") == 2


DEAD = "0" * 32  # the lock owner a crashed process left in an entry


async def test_distributed_lock_of_a_crashed_holder_is_taken_over_after_lock_ttl(
    storage: Storage[Any], adapter: CountingAdapter, clock: ManualClock
) -> None:
    """A holder that crashed leaves its lock in the entry; it blocks until its expiry only."""
    sessions = Sessions(storage, initial=lambda: {"n": 0}, isolation="distributed", lock_timeout=0)
    await storage.set("chat:1", {"_v": 1, "_d": {"n": 3}, "_l": [DEAD, clock() + 30]})
    adapter.calls.clear()
    with pytest.raises(botstate.ConflictError):
        async with sessions.open("chat:1"):
            pass
    async with Sessions(storage).open("chat:1") as session:  # other modes ignore the lock
        assert session.data == {"n": 3} and not session.changed
    assert adapter.writes == 0
    clock.advance(31)
    async with sessions.open("chat:1") as session:  # expired: taken over at once
        assert session.data == {"n": 3}
        session.data["n"] += 1
    assert await storage.get("chat:1") == {"_v": 1, "_d": {"n": 4}}  # no lock left


async def test_lock_only_placeholder_is_an_absent_session(
    storage: Storage[Any], adapter: CountingAdapter, clock: ManualClock
) -> None:
    """A new session's entry holds only the lock while its first handler runs."""
    expired: list[str] = []
    sessions = Sessions(
        storage,
        initial=lambda: {"n": 0},
        isolation="distributed",
        ttl=100,
        lock_ttl=10,
        on_expire=lambda key, data: expired.append(key),
    )
    plain = Sessions(storage, initial=lambda: {"n": 0})
    async with sessions.open("chat:1"):
        stored = await storage.get("chat:1")
        assert set(stored) == {"_l"}  # the placeholder
        assert await storage.ttl("chat:1") == pytest.approx(10)  # it expires with the lock
        async with plain.open("chat:1") as session:
            assert session.data == {"n": 0}  # absent for readers
            session.data["n"] = 7  # saved compare-and-set against the placeholder's version
    with pytest.raises(botstate.ConflictError):  # not silently overwritten either
        async with sessions.open("chat:2") as session:
            session.data["n"] = 1
            async with plain.open("chat:2") as other:
                other.data["n"] = 2
    assert await storage.get("chat:1") == {"_v": 1, "_d": {"n": 7}}
    assert await storage.get("chat:2") == {"_v": 1, "_d": {"n": 2}}
    # A crashed holder's placeholder vanishes with its lock, reported to no expiry callback.
    await storage.set("chat:3", {"_l": [DEAD, clock() + 10]}, ttl=10)
    clock.advance(11)
    adapter.sweep()
    assert expired == [] and not await storage.has("chat:3")
    await sessions.close()


async def test_distributed_session_keeps_the_session_expiry(
    storage: Storage[Any], clock: ManualClock
) -> None:
    """Locking does not shorten a session's life; unlocking gives it back its own expiry."""
    fixed = Sessions(
        storage, initial=lambda: {"n": 0}, isolation="distributed", ttl=100, sliding=False
    )
    async with fixed.open("chat:1") as session:
        session.data["n"] = 1
    clock.advance(40)
    async with fixed.open("chat:1") as session:
        assert await storage.ttl("chat:1") == pytest.approx(60)  # locked: still the fixed expiry
        assert session.data == {"n": 1}
    assert await storage.ttl("chat:1") == pytest.approx(60)  # unchanged, unlocked
    sliding = Sessions(storage, initial=lambda: {"n": 0}, isolation="distributed", ttl=5)
    async with sliding.open("chat:2") as session:
        session.data["n"] = 1
    async with sliding.open("chat:2"):
        assert await storage.ttl("chat:2") == pytest.approx(30)  # never before the lock's end
    assert await storage.ttl("chat:2") == pytest.approx(5)  # opening a sliding session slides it
    clock.advance(6)
    async with sliding.open("chat:2") as session:
        assert session.data == {"n": 0}  # expired as usual


async def test_distributed_save_mid_block_keeps_the_lock(storage: Storage[Any]) -> None:
    other: Storage[Any] = Storage(storage.adapter, namespace="bot", clock=storage.clock)
    sessions = Sessions(storage, initial=lambda: {"n": 0}, isolation="distributed")
    elsewhere = Sessions(other, initial=lambda: {"n": 0}, isolation="distributed", lock_timeout=0)
    async with sessions.open("chat:1") as session:
        session.data["n"] = 1
        await session.save()
        async with Sessions(other).open("chat:1") as seen:  # saved: visible to readers
            assert seen.data == {"n": 1}
        with pytest.raises(botstate.ConflictError):  # and still locked
            async with elsewhere.open("chat:1"):
                pass
        session.clear()
        await session.save()  # deleted for readers, the lock stays (a placeholder)
        async with Sessions(other, initial=dict).open("chat:1") as seen:
            assert seen.data == {}
        with pytest.raises(botstate.ConflictError):
            async with elsewhere.open("chat:1"):
                pass
    assert not await storage.has("chat:1")
    async with elsewhere.open("chat:1") as session:
        assert session.data == {"n": 0}
