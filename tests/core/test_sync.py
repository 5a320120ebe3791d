"""botstate.sync: the blocking API over the real memory adapter, on a manual clock.

Backends, thread counts and process exit are in tests/integration/test_sync_backends.py.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from botstate.adapter import ManualClock
from botstate.errors import (
    AdapterNotFound,
    ConfigError,
    EncodeError,
    InvalidArgument,
    InvalidKey,
    MigrationError,
    StorageUnavailable,
    UnsupportedOperation,
    UsageError,
)
from botstate.sessions import Sessions
from botstate.storage import FOREVER, Storage
from botstate.sync import SyncMultiSessions, SyncSessions, SyncStorage, open_storage
from botstate.sync.loop import LoopThread
from botstate_storage_memory import MemoryAdapter


@pytest.fixture
def sync(storage: Storage[Any]) -> Iterator[SyncStorage[Any]]:
    """The core ``storage`` fixture (namespace ``bot``, manual clock) behind the sync API."""
    wrapped = SyncStorage(storage)
    yield wrapped
    wrapped.close()


# -- SyncStorage mirrors Storage --------------------------------------------
def test_single_key_methods(sync: SyncStorage[Any], clock: ManualClock) -> None:
    assert sync.get("user:1") is None
    assert sync.get("user:1", {"new": True}) == {"new": True}
    sync.set("user:1", {"name": "Ann"}, ttl=60)
    assert sync.get("user:1") == {"name": "Ann"}
    assert sync.has("user:1")
    assert sync.ttl("user:1") == 60
    clock.advance(61)
    assert not sync.has("user:1")
    assert sync.ttl("user:1") is None  # absent
    sync.set("user:2", 1, ttl=FOREVER)
    assert sync.ttl("user:2") == FOREVER
    assert sync.delete("user:2") is True
    assert sync.delete("user:2") is False


def test_batches_keys_and_clear(sync: SyncStorage[Any]) -> None:
    items = {f"user:{i}": i for i in range(1_203)}  # more than one trip of keys()
    sync.set_many(items)
    assert sync.get_many(["user:1", "user:2", "absent"]) == {"user:1": 1, "user:2": 2}
    assert sync.get_many(k for k in ("user:3",)) == {"user:3": 3}  # any iterable
    assert sorted(sync.keys("user:")) == sorted(items)
    assert list(sync.keys("none:")) == []
    assert sync.delete_many(["user:1", "user:1", "absent"]) == 1
    other = sync.with_namespace("other")
    other.set("user:1", "kept")
    assert sync.clear() == 1_202
    assert list(sync.keys()) == []
    assert other.get("user:1") == "kept"


def test_keys_iterator_dropped_early_is_closed(sync: SyncStorage[Any]) -> None:
    sync.set_many({f"k{i}": i for i in range(1_000)})
    keys = sync.keys()
    assert next(keys).startswith("k")
    keys.close()  # the async generator is closed on the loop, in the background
    assert len(list(sync.keys())) == 1_000


def test_update_sync_and_async_functions(sync: SyncStorage[Any]) -> None:
    assert sync.update("hits", lambda v: (v or 0) + 1) == 1

    async def double(value: int | None) -> int:
        await asyncio.sleep(0)
        return (value or 0) * 2

    assert sync.update("hits", double) == 2
    assert sync.update("hits", lambda v: None) is None
    assert not sync.has("hits")


def test_errors_are_the_async_ones(sync: SyncStorage[Any]) -> None:
    with pytest.raises(InvalidKey):
        sync.get("")
    with pytest.raises(EncodeError):
        sync.set("bad", object())
    assert not sync.has("bad")
    with pytest.raises(InvalidArgument):
        sync.keys(prefix=3)  # type: ignore[arg-type]  # at the call, not at the first key
    with pytest.raises(InvalidArgument):
        sync.storage.keys(prefix=3)  # type: ignore[arg-type]  # the async one too


def test_close_and_with_block(storage: Storage[Any]) -> None:
    with SyncStorage(storage) as sync:
        sync.set("a", 1)
    with pytest.raises(StorageUnavailable):
        sync.get("a")
    sync.close()  # idempotent


def test_properties_and_repr(sync: SyncStorage[Any], storage: Storage[Any]) -> None:
    assert sync.storage is storage
    assert sync.namespace == "bot"
    assert sync.default_ttl is None
    assert sync.codec.name == "json"
    assert "ATOMIC" in {c.name for c in sync.capabilities}
    assert repr(sync).startswith("SyncStorage(")


def test_wraps_only_a_storage() -> None:
    with pytest.raises(InvalidArgument, match="wraps a botstate Storage"):
        SyncStorage("memory://")  # type: ignore[arg-type]


def test_open_storage_by_url_mapping_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    with open_storage("memory://", namespace="a", ttl=30) as by_url:
        by_url.set("k", 1)
        assert by_url.namespace == "a"
        assert by_url.ttl("k") == pytest.approx(30, abs=1)
    with open_storage({"adapter": "memory", "namespace": "b"}) as by_mapping:
        assert by_mapping.namespace == "b"
    monkeypatch.setenv("BOTSTATE_STORAGE", "memory://")
    with open_storage() as by_env:
        by_env.set("k", 2)
        assert by_env.get("k") == 2
    with pytest.raises(AdapterNotFound):
        open_storage("nosuch://x")


@dataclass
class Profile:
    name: str
    visits: int = 0
    seen: set[int] = field(default_factory=set)


def test_typed_values_through_the_sync_api() -> None:
    with open_storage("memory://", type=Profile, namespace="typed") as typed:
        assert typed.type is Profile
        typed.set("user:1", Profile("Ann", 1, {3, 4}))
        value = typed.get("user:1")
        assert value == Profile("Ann", 1, {3, 4})
        assert typed.update("user:1", lambda p: Profile(p.name, p.visits + 1) if p else None)
        assert typed.get("user:1") == Profile("Ann", 2, set())
    with open_storage("memory://") as plain:
        sessions = SyncSessions(plain, type=Profile, initial=lambda: Profile("new"))
        with sessions.open("user:1") as session:
            session.data.visits += 1
            session.data.seen.add(7)
        with sessions.open("user:1") as session:
            assert session.data == Profile("new", 1, {7})


# -- where it may be called from --------------------------------------------
async def test_refused_inside_a_running_event_loop(sync: SyncStorage[Any]) -> None:
    with pytest.raises(UsageError, match="use the async API"):
        sync.get("a")


def test_refused_inside_an_update_function(sync: SyncStorage[Any]) -> None:
    with pytest.raises(UsageError, match="own event loop thread"):
        sync.update("a", lambda v: sync.get("b"))


def test_refused_in_a_forked_child() -> None:
    if not hasattr(os, "fork"):
        pytest.skip("no fork on this platform")
    code = """
import os, sys
from botstate.errors import UsageError
from botstate.sync import open_storage
parent = open_storage("memory://")
parent.set("k", 1)
pid = os.fork()
if pid == 0:
    try:
        parent.get("k")
        os._exit(3)
    except UsageError as err:
        ok = "forked" in str(err)
    fresh = open_storage("memory://")   # a child opens its own, on its own loop
    fresh.set("k", 2)
    os._exit(0 if ok and fresh.get("k") == 2 else 4)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status), parent.get("k"))
"""
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.stdout.split() == ["0", "1"], out.stderr


_CTRL_C_STORM = """
import os, random, signal, sys, threading, time
from botstate.sync import SyncSessions, open_storage

mode = sys.argv[1]
storage = open_storage("memory://")
sessions = SyncSessions(storage, initial=lambda: {"n": 0})
last = [time.monotonic()]

def watchdog():
    while time.sleep(0.2) is None:
        if time.monotonic() - last[0] > 10:  # a key left held: the next block waits forever
            print("HANG", flush=True)
            os._exit(3)

threading.Thread(target=watchdog, daemon=True).start()
interrupted = 0
for _ in range(200):
    timer = threading.Timer(random.uniform(0, 0.01), os.kill, (os.getpid(), signal.SIGINT))
    try:
        timer.start()
        while True:
            if mode == "session":
                with sessions.open("k") as session:
                    session.data["n"] += 1
            else:
                with storage.lock("L", timeout=5):
                    pass
            last[0] = time.monotonic()
    except KeyboardInterrupt:
        interrupted += 1
    timer.join()
    last[0] = time.monotonic()
with sessions.open("k") as session:  # every interrupted block left the key free
    session.data["n"] += 1
print("OK", interrupted, flush=True)
"""


@pytest.mark.parametrize("mode", ["session", "lock"])
def test_ctrl_c_storm_never_leaves_a_key_held(mode: str) -> None:
    """200 Ctrl-C landing anywhere in `with` blocks (entering, inside, leaving): no key stays held.

    An interrupt between queueing the enter and the wait, or during the wait
    for the exit, used to leave the session or lock taken, so the next block
    on that key waited forever.
    """
    if not hasattr(signal, "SIGINT") or sys.platform == "win32":
        pytest.skip("needs POSIX signals")
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", _CTRL_C_STORM, mode],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.stdout.split() == ["OK", "200"], out.stdout + out.stderr


# -- locks ------------------------------------------------------------------------
def test_lock_has_one_holder_across_threads(sync: SyncStorage[Any]) -> None:
    if not hasattr(Storage, "lock"):
        pytest.skip("Storage.lock arrives with the lock rework (h/locks), not merged yet")
    inside, most = 0, 0
    guard = threading.Lock()

    def work() -> None:
        nonlocal inside, most
        for _ in range(20):
            with sync.lock("job", ttl=5, timeout=30):
                with guard:
                    inside += 1
                    most = max(most, inside)
                time.sleep(0.001)  # blocking work while holding it
                with guard:
                    inside -= 1

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert most == 1


# -- expiry callbacks ---------------------------------------------------------
def test_on_expire_runs_in_a_worker_thread_that_may_use_the_storage(
    sync: SyncStorage[Any], clock: ManualClock
) -> None:
    seen: list[tuple[str, Any, bool, bool]] = []
    done = threading.Event()

    def callback(key: str, value: Any) -> None:
        # A blocking call is fine here: this is not the loop's thread.
        seen.append((key, value, sync.has("other"), threading.current_thread().daemon))
        done.set()

    unsubscribe = sync.on_expire(callback)
    sync.set("other", 1)
    sync.set("chat:1", {"step": 2}, ttl=5)
    clock.advance(6)
    assert sync.get("chat:1") is None  # the read finds it expired and reports it
    assert done.wait(10)
    assert seen == [("chat:1", {"step": 2}, True, True)]
    unsubscribe()
    sync.set("chat:2", 1, ttl=5)
    clock.advance(6)
    assert sync.get("chat:2") is None
    time.sleep(0.05)
    assert len(seen) == 1


# -- inline calls (adapters declaring runs_inline) ------------------------------
def test_expiring_write_in_the_calling_thread_wakes_the_sweeper() -> None:
    """The memory adapter's plain calls run in the caller's thread; the sweeper they start runs."""
    sync = open_storage("memory://?sweep_interval=0.05")
    expired = threading.Event()
    try:
        sync.on_expire(lambda key, value: expired.set())
        sync.set("chat:1", {"step": 1}, ttl=0.1)  # nothing else touches the storage afterwards
        assert expired.wait(10), "the sweeper started by the write never ran"
    finally:
        sync.close()


class _WaitingInline(MemoryAdapter):
    """Declares runs_inline but waits in get(): the rest must run on the loop thread."""

    threads: list[threading.Thread]

    async def get(self, key: str) -> bytes | None:
        self.threads.append(threading.current_thread())
        await asyncio.sleep(0.01)
        self.threads.append(threading.current_thread())
        return await super().get(key)


def test_inline_call_that_waits_finishes_on_the_loop_thread(clock: ManualClock) -> None:
    adapter = _WaitingInline(clock=clock)
    adapter.threads = []
    sync = SyncStorage(Storage(adapter, clock=clock))
    try:
        sync.set("a", {"x": 1})
        assert sync.get("a") == {"x": 1}
        assert adapter.threads == [threading.current_thread(), sync.runner.thread]
    finally:
        sync.close()


def test_inline_calls_from_threads_mix_with_loop_work(sync: SyncStorage[Any]) -> None:
    """Inline set/get from 8 threads, each with update() hops to the loop in between."""
    errors: list[BaseException] = []

    def work() -> None:
        mine = f"t:{threading.current_thread().name}"  # an ident is reused after its thread
        try:
            for i in range(PER_THREAD):
                sync.set(mine, {"i": i})
                assert sync.get(mine) == {"i": i}
                sync.update("n", lambda v: (v or 0) + 1)
        except BaseException as err:  # reported below, with the thread's own traceback
            errors.append(err)

    hammer(work)
    assert errors == []
    assert sync.get("n") == THREADS * PER_THREAD
    assert len(list(sync.keys("t:"))) == THREADS


# -- SyncSessions ---------------------------------------------------------------
@pytest.fixture
def sessions(sync: SyncStorage[Any]) -> SyncSessions[dict[str, Any]]:
    return SyncSessions(sync, initial=lambda: {"counter": 0}, ttl=600)


def test_session_saves_changes_only(
    sessions: SyncSessions[dict[str, Any]], sync: SyncStorage[Any]
) -> None:
    with sessions.open("chat:1") as session:
        assert session.data == {"counter": 0}
        assert session.key == "chat:1"
        assert not session.changed
    assert not sync.has("chat:1")  # an untouched initial() is not written
    with sessions.open("chat:1") as session:
        session.data["counter"] += 1
        assert session.changed
    assert sync.ttl("chat:1") == 600
    with sessions.open("chat:1") as session:
        assert session.data == {"counter": 1}
    assert sessions.idle_locks == 0


def test_session_raising_block_saves_nothing(sessions: SyncSessions[dict[str, Any]]) -> None:
    with pytest.raises(ZeroDivisionError), sessions.open("chat:1") as session:
        session.data["counter"] = 5
        _ = 1 / 0
    with sessions.open("chat:1") as session:
        assert session.data == {"counter": 0}
    assert sessions.idle_locks == 0


def test_session_clear_deletes(
    sessions: SyncSessions[dict[str, Any]], sync: SyncStorage[Any]
) -> None:
    with sessions.open("chat:1") as session:
        session.data["counter"] = 3
    with sessions.open("chat:1") as session:
        session.clear()
    assert not sync.has("chat:1")


def test_lazy_session_loads_on_demand(sessions: SyncSessions[dict[str, Any]]) -> None:
    with sessions.open("chat:1") as session:
        session.data["counter"] = 7
    with sessions.open("chat:1", lazy=True) as session:
        assert not session.loaded
        with pytest.raises(UsageError):
            _ = session.data
        assert session.load() == {"counter": 7}
        assert session.load() == {"counter": 7}  # once
        assert "counter" in repr(session)


def test_session_ttl_and_migrations(sync: SyncStorage[Any], clock: ManualClock) -> None:
    old = SyncSessions(sync, ttl=10)
    with old.open("chat:1") as session:
        session.data = {"count": 1}
    new = SyncSessions(sync, ttl=10, version=2, migrations={2: lambda d: {"counter": d["count"]}})
    with new.open("chat:1") as session:
        assert session.data == {"counter": 1}
    with pytest.raises(MigrationError), old.open("chat:1"):
        pass  # version 2 data is newer than this code
    clock.advance(11)
    with new.open("chat:1") as session:
        assert session.data is None  # expired: a new session, no initial()


def test_session_on_expire_callback(sync: SyncStorage[Any], clock: ManualClock) -> None:
    expired: list[tuple[str, Any]] = []
    done = threading.Event()

    def on_expire(key: str, data: Any) -> None:
        expired.append((key, data))
        done.set()

    sessions = SyncSessions(sync, ttl=5, on_expire=on_expire)
    with sessions.open("chat:1") as session:
        session.data = {"step": "ask_name"}
    clock.advance(6)
    assert sync.get("chat:1") is None
    assert done.wait(10)
    assert expired == [("chat:1", {"step": "ask_name"})]
    sessions.close()


def test_handler_passes_the_session(sessions: SyncSessions[dict[str, Any]]) -> None:
    @sessions.handler(lambda message: f"chat:{message['chat']}")
    def count(message: dict[str, int], session: Any) -> int:
        session.data["counter"] += 1
        return int(session.data["counter"])

    assert count({"chat": 1}) == 1
    assert count({"chat": 1}) == 2
    assert count({"chat": 2}) == 1

    @sessions.handler(arg="state")
    def by_key(key: str, state: Any) -> Any:
        return state.data

    assert by_key("chat:1") == {"counter": 2}
    # Frameworks reading the signature see the handler's own parameters only.
    assert list(inspect.signature(count).parameters) == ["message"]


def test_handler_refuses_async_functions_and_async_refuses_sync(
    sessions: SyncSessions[dict[str, Any]], storage: Storage[Any]
) -> None:
    async def handler(message: object, session: object) -> None: ...

    with pytest.raises(InvalidArgument, match="SyncSessions is for synchronous"):
        sessions.handler()(handler)

    def sync_handler(message: object, session: object) -> None: ...

    with pytest.raises(InvalidArgument, match=r"botstate\.sync\.SyncSessions"):
        Sessions(storage).handler()(sync_handler)  # type: ignore[arg-type]


def test_sessions_need_a_sync_storage(storage: Storage[Any]) -> None:
    with pytest.raises(InvalidArgument, match="SyncStorage"):
        SyncSessions(storage)  # type: ignore[arg-type]


def test_distributed_isolation_needs_atomic(sync: SyncStorage[Any]) -> None:
    plain = SyncStorage(Storage(_NoAtomic()))
    with pytest.raises(UnsupportedOperation):
        SyncSessions(plain, isolation="distributed")
    distributed = SyncSessions(sync, initial=lambda: 0, isolation="distributed")
    with distributed.open("n") as session:
        session.data += 1
    with distributed.open("n") as session:
        assert session.data == 1


# -- SyncMultiSessions -------------------------------------------------------------
@dataclass
class Update:
    chat_id: int
    user_id: int


@pytest.fixture
def multi(sync: SyncStorage[Any]) -> SyncMultiSessions:
    return SyncMultiSessions(
        {
            "user": SyncSessions(
                sync.with_namespace("users"),
                key=lambda u: f"user:{u.user_id}",
                initial=lambda: {"lang": "en"},
            ),
            "chat": SyncSessions(
                sync.with_namespace("chats"),
                key=lambda u: f"chat:{u.chat_id}",
                initial=lambda: {"n": 0},
                lazy=True,
            ),
        }
    )


def test_multi_sessions_open_every_part_with_its_own_key(
    multi: SyncMultiSessions, sync: SyncStorage[Any]
) -> None:
    chats = sync.with_namespace("chats")
    with multi.open(Update(-5, 42)) as s:
        assert list(s) == ["user", "chat"]
        s.user.data["lang"] = "de"
        assert not s.chat.loaded  # lazy: no read until load()
    assert list(chats.keys()) == []  # the untouched lazy part wrote nothing
    with multi.open(Update(-5, 42)) as s:
        assert s["user"].data == {"lang": "de"}
        s.chat.load()["n"] += 1
    with multi.open(Update(-5, 7), lazy=False) as s:  # lazy= overrides every part
        assert s.chat.loaded and s.chat.data == {"n": 1}
        assert s.user.data == {"lang": "en"}
    assert sync.with_namespace("users").get("user:42")["_d"] == {"lang": "de"}
    assert chats.get("chat:-5")["_d"] == {"n": 1}
    with pytest.raises(AttributeError):
        s.bot  # noqa: B018 - no such part


def test_multi_session_raising_block_saves_no_part(multi: SyncMultiSessions) -> None:
    with pytest.raises(RuntimeError), multi.open(Update(1, 2)) as s:
        s.user.data["lang"] = "fr"
        s.chat.load()["n"] = 5
        raise RuntimeError("handler failed")
    with multi.open(Update(1, 2), lazy=False) as s:
        assert s.user.data == {"lang": "en"}
        assert s.chat.data == {"n": 0}


def test_multi_sessions_need_sync_sessions_on_one_loop(sync: SyncStorage[Any]) -> None:
    with pytest.raises(ConfigError):
        SyncMultiSessions({})
    with pytest.raises(InvalidArgument, match=r"botstate\.MultiSessions"):
        SyncMultiSessions({"user": Sessions(sync.storage)})  # type: ignore[dict-item]
    other = SyncStorage(sync.storage.with_namespace("x"), runner=LoopThread("other"))
    with pytest.raises(InvalidArgument, match="one loop thread"):
        SyncMultiSessions({"a": SyncSessions(sync), "b": SyncSessions(other)})


def test_threads_share_multi_sessions_exactly(multi: SyncMultiSessions) -> None:
    """Parts used in both orders (one lazy) from 8 threads: no deadlock, no lost update."""

    def work() -> None:
        for i in range(PER_THREAD):
            with multi.open(Update(1, 1)) as s:
                for name in ("chat", "user") if i % 2 else ("user", "chat"):
                    data = s[name].load() if name == "chat" else s[name].data
                    data["n"] = data.get("n", 0) + 1

    hammer(work)
    with multi.open(Update(1, 1), lazy=False) as s:
        assert s.user.data["n"] == THREADS * PER_THREAD
        assert s.chat.data["n"] == THREADS * PER_THREAD


class _NoAtomic(MemoryAdapter):
    capabilities = frozenset()


# -- threads ------------------------------------------------------------------
THREADS, PER_THREAD = 8, 500


def hammer(work: Any) -> None:
    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(thread.is_alive() for thread in threads)


def test_threads_update_one_key_exactly(sync: SyncStorage[Any]) -> None:
    hammer(lambda: [sync.update("n", lambda v: (v or 0) + 1) for _ in range(PER_THREAD)])
    assert sync.get("n") == THREADS * PER_THREAD


def test_threads_share_one_session_exactly(sessions: SyncSessions[dict[str, Any]]) -> None:
    def work() -> None:
        for _ in range(PER_THREAD):
            with sessions.open("chat:1") as session:
                session.data["counter"] += 1

    hammer(work)
    with sessions.open("chat:1") as session:
        assert session.data["counter"] == THREADS * PER_THREAD
    assert sessions.idle_locks == 0


def test_interrupted_wait_for_a_session_leaves_no_lock(
    sessions: SyncSessions[dict[str, Any]],
) -> None:
    """Ctrl-C while waiting for a busy key cancels the wait; the key is not left locked."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach the main thread only")
    holding, release = threading.Event(), threading.Event()

    def holder() -> None:
        with sessions.open("chat:1") as session:
            session.data["counter"] = 1
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    assert holding.wait(10)
    timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt), sessions.open("chat:1"):
            pytest.fail("the key is held by the other thread")
    finally:
        release.set()
        thread.join(10)
        timer.cancel()
    with sessions.open("chat:1") as session:
        assert session.data == {"counter": 1}
    deadline = time.monotonic() + 5
    while sessions.idle_locks and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sessions.idle_locks == 0
