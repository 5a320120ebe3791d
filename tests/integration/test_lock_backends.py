"""Storage.lock on every ATOMIC backend: what it costs, and that no cancelled holder keeps it.

``test_round_trips`` counts the adapter calls (each one request to the backend)
of a lock and of a distributed session (3 per block: read, lock, save-and-unlock).
``test_cancelled_holder_...``:

Each backend runs 200 holders (on their own keys, up to 25 at a time), each cancelled
at a chosen point: while its lease write is in flight, right after that write
landed but before the holder saw the reply, during a renewal (in flight, or
landed and unseen), during the release (the same two), inside the block, while
it polls a lock someone else holds, or at a random moment. The moment a
cancelled holder's task has ended, the next holder must get the lock on the
first try (``timeout=0``), both as another process would (a second ``Storage``
on the same adapter: only the lease entry counts) and in the same process (the
in-process queue must be free too). Leases are 30 s long, so a leaked one fails
the check rather than expiring in time; only the renewal cases use 0.6 s, so
that a renewal happens within the test (still 0.4 s or more left on any leaked
lease when the check runs).

The adapter is wrapped by ``Tap``, which forwards every call to the real
adapter and tells the test when a lease write starts and when it landed.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from botstate.adapter import StorageAdapter, Version
from botstate.errors import ConflictError
from botstate.sessions import Sessions
from botstate.storage import LOCK_PREFIX, Storage
from tooling.services import require_module

ROUNDS = 200
AT_ONCE = 25
LONG_TTL = 30.0
RENEW_TTL = 0.6  # 3 s on DynamoDB Local

MODES = (
    "take:start",  # the lease write is in flight
    "take:done",  # the lease is written, the holder has not seen the reply
    "renew:start",
    "renew:done",
    "release:start",
    "release:done",
    "body",  # inside the block, at a random moment
    "waiting",  # polling while another holder has the lock
    "random",  # any moment from the start
)


class Tap:
    """A real adapter, counting calls, with a hook when a lease write starts and returns."""

    def __init__(self, inner: StorageAdapter) -> None:
        self.inner = inner
        self.capabilities = inner.capabilities
        self.hooks: dict[str, Callable[[str], None]] = {}
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def get(self, key: str) -> bytes | None:
        self.calls["get"] += 1
        return await self.inner.get(key)

    async def set(self, key: str, value: bytes, *, expires_at: float | None = None) -> None:
        self.calls["set"] += 1
        await self.inner.set(key, value, expires_at=expires_at)

    async def get_versioned(self, key: str) -> tuple[bytes, Version] | None:
        self.calls["get_versioned"] += 1
        return await self.inner.get_versioned(key)

    def _fire(self, key: str, event: str) -> None:
        hook = self.hooks.get(key)
        if hook is not None:
            hook(event)

    async def set_if(
        self, key: str, value: bytes, *, version: Version | None, expires_at: float | None = None
    ) -> Version | None:
        phase = "take" if version is None else "renew"
        self.calls["set_if"] += 1
        self._fire(key, f"{phase}:start")
        await asyncio.sleep(0)  # a cancellation may land before the write leaves
        result = await self.inner.set_if(key, value, version=version, expires_at=expires_at)
        self._fire(key, f"{phase}:{'done' if result is not None else 'refused'}")
        await asyncio.sleep(0)  # ... or after it landed, before the caller sees the reply
        return result

    async def delete_if(self, key: str, *, version: Version) -> bool:
        self.calls["delete_if"] += 1
        self._fire(key, "release:start")
        await asyncio.sleep(0)
        result = await self.inner.delete_if(key, version=version)
        self._fire(key, "release:done")
        await asyncio.sleep(0)
        return result


async def cycle(
    storage: Storage[Any], other: Storage[Any], tap: Tap, key: str, mode: str, renew_ttl: float
) -> str:
    """Cancel one holder at ``mode``; check the next one gets the lock at once. Returns where."""
    full = LOCK_PREFIX + storage.full_key(key)
    rng = random.Random(key)
    ttl = renew_ttl if mode.startswith("renew") else LONG_TTL
    hold = 0.0 if mode.startswith("release") else 10.0
    landed: list[str] = []
    refusals = 0
    entered = asyncio.Event()

    async def holder() -> None:
        async with storage.lock(key, ttl=ttl, timeout=20):
            entered.set()
            await asyncio.sleep(hold if mode != "random" else rng.uniform(0, 0.02))

    blocker = None
    if mode == "waiting":
        blocker = other.lock(key, ttl=LONG_TTL, timeout=0)
        await blocker.acquire()
    task = asyncio.ensure_future(holder())

    def hook(event: str) -> None:
        nonlocal refusals
        refusals += event == "take:refused"
        wanted = event == mode or (mode == "waiting" and refusals == 2)
        if event == "renew:refused" and not landed:  # the lease ran out before its renewal
            landed.append("renewal came too late")
            task.cancel()
        elif wanted and not landed:
            landed.append(mode)
            task.cancel()

    tap.hooks[full] = hook
    try:
        if mode == "body":
            await entered.wait()
            await asyncio.sleep(rng.uniform(0, 0.01))
            landed.append("body")
            task.cancel()
        elif mode == "random":
            await asyncio.sleep(rng.uniform(0, 0.03))
            landed.append("random")
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 20)
    finally:
        tap.hooks.pop(full, None)
        if blocker is not None:
            await blocker.release()
    # The next holder, at once: as another process would, then in this process.
    try:
        async with other.lock(key, ttl=LONG_TTL, timeout=0):
            pass
        async with storage.lock(key, ttl=LONG_TTL, timeout=0):
            pass
    except ConflictError as err:
        raise AssertionError(f"cancelled at {mode}, the lock stayed held: {err}") from err
    assert await tap.inner.get(full) is None
    if not task.cancelled():
        return f"{mode} (finished first)"
    return mode if landed in ([], [mode]) else f"{mode} ({landed[0]})"


async def run_rounds(adapter: StorageAdapter, renew_ttl: float) -> Counter[str]:
    tap = Tap(adapter)
    storage: Storage[Any] = Storage(tap, namespace=f"c{uuid.uuid4().hex[:8]}")
    other: Storage[Any] = Storage(tap, namespace=storage.namespace)
    modes = [MODES[i % len(MODES)] for i in range(ROUNDS)]
    random.Random(16).shuffle(modes)
    window = asyncio.Semaphore(AT_ONCE)

    async def one(i: int) -> str:
        async with window:
            return await cycle(storage, other, tap, f"chat:{i}", modes[i], renew_ttl)

    return Counter(await asyncio.gather(*(one(i) for i in range(ROUNDS))))


def check(outcomes: Counter[str], started: float) -> None:
    elapsed = time.monotonic() - started
    print(f"\n{sum(outcomes.values())} cancellations in {elapsed:.2f}s: {dict(outcomes)}")
    for mode in MODES[:-1]:  # every point was really hit, not skipped past
        assert outcomes[mode] >= ROUNDS // len(MODES) // 2, (mode, outcomes)


@pytest_asyncio.fixture
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StorageAdapter]:
    name = request.param
    adapter: StorageAdapter
    if name == "memory":
        from botstate_storage_memory import MemoryAdapter

        adapter = MemoryAdapter()
    elif name == "sqlite":
        sqlite = require_module("botstate_storage_sqlite", "botstate-storage-sqlite")
        adapter = sqlite.SqliteAdapter.from_url(f"sqlite:///{tmp_path / 'locks.db'}")
    elif name == "redis":
        redis = require_module("botstate_storage_redis", "botstate-storage-redis")
        server = request.getfixturevalue("redis_server")
        adapter = redis.RedisAdapter(server.url, prefix=f"lk{uuid.uuid4().hex[:8]}:")
    else:
        kv = require_module("botstate_storage_kv", "botstate-storage-kv")
        server = request.getfixturevalue("dynamodb_local")
        table = f"locks-{uuid.uuid4().hex[:8]}"
        adapter = kv.DynamoDBAdapter.from_url(server.url(table), max_pool_connections=AT_ONCE)
    yield adapter
    await adapter.close()


@pytest.mark.parametrize("backend", ["memory", "sqlite", "redis", "kv"], indirect=True)
async def test_cancelled_holder_never_leaves_the_lock_held(backend: StorageAdapter) -> None:
    renew_ttl = 3.0 if "DynamoDB" in type(backend).__name__ else RENEW_TTL
    await backend.get("warm-up")  # connect (DynamoDB: create the table) before the clock runs
    started = time.monotonic()
    check(await run_rounds(backend, renew_ttl), started)


@pytest.mark.parametrize("backend", ["memory", "sqlite", "redis", "kv"], indirect=True)
async def test_round_trips(backend: StorageAdapter) -> None:
    """Take, renew, release: one call each; a distributed session: 3 calls per block."""
    tap = Tap(backend)
    storage: Storage[Any] = Storage(tap, namespace=f"r{uuid.uuid4().hex[:8]}")
    await backend.get("warm-up")  # connect (DynamoDB: create the table) first
    ttl = 3.0 if "DynamoDB" in type(backend).__name__ else 0.6
    lock = storage.lock("chat:1", ttl=ttl)
    await lock.acquire()
    assert tap.calls == Counter({"set_if": 1})
    await asyncio.sleep(ttl * 0.8)  # renewals at ttl/3 and (if the backend is quick) 2*ttl/3
    renewals = tap.calls["set_if"] - 1
    assert renewals >= 1
    assert tap.calls == Counter({"set_if": 1 + renewals})  # a renewal is one set_if, no read
    await lock.release()
    assert tap.calls == Counter({"set_if": 1 + renewals, "delete_if": 1})

    # A distributed session keeps its lock in its own entry: read + lock on open, one
    # set_if on exit that saves (or restores the envelope) and unlocks: 3 round trips.
    sessions = Sessions(storage, initial=lambda: {"n": 0}, isolation="distributed")
    for change in (True, True, False):  # new session written, changed, unchanged
        tap.calls.clear()
        async with sessions.open("chat:2") as session:
            assert tap.calls == Counter({"get_versioned": 1, "set_if": 1})  # read, lock
            if change:
                session.data["n"] += 1
        # The exit: one set_if that saves (or restores the envelope) and drops the lock.
        assert tap.calls == Counter({"get_versioned": 1, "set_if": 2})
        assert sum(tap.calls.values()) == 3
    tap.calls.clear()
    async with sessions.open("chat:3"):  # new and untouched: the lock placeholder is deleted
        pass
    assert tap.calls == Counter({"get_versioned": 1, "set_if": 1, "delete_if": 1})
    assert await tap.inner.get(storage.full_key("chat:3")) is None
    async with Sessions(storage).open("chat:2") as session:
        assert session.data == {"n": 2}
    assert await storage.get("chat:2") == {"_v": 1, "_d": {"n": 2}}  # no lock left behind


# -- distributed sessions: the lock lives in the session's own entry -----------------
SESSION_MODES = (
    "read",  # the read that starts taking the lock is in flight
    "take:start",  # the lock write (same envelope + our lock) is in flight
    "take:done",  # ... landed, the holder has not seen the reply
    "renew:start",
    "renew:done",
    "release:start",  # the exit's write (save and unlock, or restore, or delete) in flight
    "release:done",
    "body",
    "waiting",  # polling while another process's session holds the key
    "random",
)


SLOWEST = [0.0]  # the longest same-process reopen, printed


async def reopen(sessions: Sessions[Any], key: str) -> None:
    async with sessions.open(key):
        pass


class SessionTap(Tap):
    """``Tap`` that also reports the versioned reads a distributed session makes."""

    async def get_versioned(self, key: str) -> tuple[bytes, Version] | None:
        self.calls["get_versioned"] += 1
        self._fire(key, "read:start")
        await asyncio.sleep(0)
        result = await self.inner.get_versioned(key)
        self._fire(key, "read:done")
        await asyncio.sleep(0)
        return result


async def session_cycle(
    mine: dict[str, Sessions[Any]], other: Sessions[Any], tap: Tap, key: str, mode: str
) -> str:
    """Cancel one session holder at ``mode``; the next opener must get the session at once."""
    sessions = mine["renew" if mode.startswith("renew") else "long"]
    storage = sessions.storage
    full = storage.full_key(key)
    rng = random.Random(key)
    existing, change = rng.random() < 0.5, rng.random() < 0.5
    if existing:
        async with other.open(key) as session:
            session.data = {"n": 5}
    before = {"n": 5 if existing else 0}
    hold = 10.0 if mode.startswith("renew") or mode == "body" else 0.0
    phase = "take"
    landed: list[str] = []
    polls = 0
    entered = asyncio.Event()

    async def holder() -> None:
        nonlocal phase
        async with sessions.open(key) as session:
            phase = "renew"
            entered.set()
            await asyncio.sleep(hold if mode != "random" else rng.uniform(0, 0.02))
            if change:
                session.data["n"] += 1
            phase = "release"

    blocker = None
    if mode == "waiting":
        blocker = other.open(key)
        await blocker.__aenter__()
    task = asyncio.ensure_future(holder())

    def hook(event: str) -> None:
        nonlocal polls
        what, when = event.split(":")
        if what == "read":
            polls += when == "done" and blocker is not None
            wanted = (mode == "read" and when == "start") or (mode == "waiting" and polls == 2)
        elif when == "refused" and phase == "renew":  # the lock ran out before its renewal
            if not landed:
                landed.append("renewal came too late")
                task.cancel()
            return
        else:
            wanted = f"{phase}:{when}" == mode
        if wanted and not landed:
            landed.append(mode)
            task.cancel()

    tap.hooks[full] = hook
    try:
        if mode == "body":
            await entered.wait()
            await asyncio.sleep(rng.uniform(0, 0.01))
            landed.append("body")
            task.cancel()
        elif mode == "random":
            await asyncio.sleep(rng.uniform(0, 0.03))
            landed.append("random")
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 20)
    finally:
        tap.hooks.pop(full, None)
        if blocker is not None:
            await blocker.__aexit__(None, None, None)
    # The next opener, at once: as another process would (lock_timeout=0), then in this
    # process (its in-process queue must be free too: a leaked lock, 30 s long, would
    # still be there after the 10 s this allows for a slow backend under load).
    try:
        async with other.open(key) as session:
            after = session.data
        started = time.monotonic()
        await asyncio.wait_for(reopen(sessions, key), 10)
        SLOWEST[0] = max(SLOWEST[0], time.monotonic() - started)
    except (ConflictError, asyncio.TimeoutError) as err:
        raise AssertionError(f"cancelled at {mode}, the session stayed locked: {err!r}") from err
    assert after in (before, {"n": before["n"] + 1}), (mode, before, after)
    raw = await tap.inner.get(full)
    if raw is not None:  # no lock left in the entry, and no lock-only placeholder
        assert set(storage.decode(key, raw)) == {"_v", "_d"}, (mode, raw)
    else:
        assert not existing and after == before, (mode, after)
    if not task.cancelled():
        return f"{mode} (finished first)"
    return mode if landed in ([], [mode]) else f"{mode} ({landed[0]})"


@pytest.mark.parametrize("backend", ["memory", "sqlite", "redis", "kv"], indirect=True)
async def test_cancelled_session_holder_never_leaves_the_session_locked(
    backend: StorageAdapter,
) -> None:
    """200 distributed-session holders cancelled at chosen points (see SESSION_MODES)."""
    renew_ttl = 3.0 if "DynamoDB" in type(backend).__name__ else RENEW_TTL
    await backend.get("warm-up")
    tap = SessionTap(backend)
    storage: Storage[Any] = Storage(tap, namespace=f"s{uuid.uuid4().hex[:8]}")
    elsewhere: Storage[Any] = Storage(tap, namespace=storage.namespace)  # another process
    initial = lambda: {"n": 0}  # noqa: E731
    mine: dict[str, Sessions[Any]] = {
        name: Sessions(storage, initial=initial, isolation="distributed", lock_ttl=ttl)
        for name, ttl in (("long", LONG_TTL), ("renew", renew_ttl))
    }
    other = Sessions(
        elsewhere, initial=initial, isolation="distributed", lock_ttl=LONG_TTL, lock_timeout=0
    )
    modes = [SESSION_MODES[i % len(SESSION_MODES)] for i in range(ROUNDS)]
    random.Random(10).shuffle(modes)
    window = asyncio.Semaphore(AT_ONCE)

    async def one(i: int) -> str:
        async with window:
            return await session_cycle(mine, other, tap, f"chat:{i}", modes[i])

    started = time.monotonic()
    outcomes = Counter(await asyncio.gather(*(one(i) for i in range(ROUNDS))))
    elapsed = time.monotonic() - started
    print(f"\n{sum(outcomes.values())} session cancellations in {elapsed:.2f}s: {dict(outcomes)}")
    print(f"slowest reopen in the same process: {SLOWEST[0]:.2f}s")
    for mode in SESSION_MODES[:-1]:  # every point was really hit, not skipped past
        assert outcomes[mode] >= ROUNDS // len(SESSION_MODES) // 2, (mode, outcomes)
    for sessions in (*mine.values(), other):
        await sessions.close()
        assert sessions.idle_locks == 0
