"""``retrieve_data`` blocks hold the user's lock: concurrent read-modify-write loses nothing.

Before, ``with bot.retrieve_data(...) as data: data["n"] += 1`` from 8 threads
× 100 ended far below 800 (the last block's whole data won). Now each block
holds ``Storage.lock`` of the state key from its read to its save. Also here:
settings checked when the storage is built (``ConfigError``).
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from telebot import TeleBot
from telebot.states import State, StatesGroup

from botstate.errors import ConfigError, ConflictError, UsageError
from botstate_telebot import AsyncBotstateStateStorage, BotstateStateStorage

TOKEN = "123:offline"  # retrieve_data / set_state never reach the Bot API
THREADS, ROUNDS = 8, 100


class Counter(StatesGroup):
    counting = State()


@pytest.fixture
def states(url: str, namespace: str) -> Iterator[BotstateStateStorage]:
    opened = BotstateStateStorage(url, namespace=namespace)
    yield opened
    opened.close()


def run_threads(work: Any, count: int = THREADS) -> None:
    errors: list[BaseException] = []

    def guarded() -> None:
        try:
            work()
        except BaseException as err:  # reported by the test, not lost in the thread
            errors.append(err)

    threads = [threading.Thread(target=guarded) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    assert not any(thread.is_alive() for thread in threads)


def test_threaded_retrieve_data_increments_are_exact(states: BotstateStateStorage) -> None:
    bot = TeleBot(TOKEN, state_storage=states)
    bot.set_state(2, Counter.counting, 1)
    bot.add_data(2, 1, n=0, log=[])

    def increments() -> None:
        for _ in range(ROUNDS):
            with bot.retrieve_data(2, 1) as data:
                data["n"] += 1
                data["log"] = [*data["log"][-3:], threading.get_ident()]

    run_threads(increments)
    with bot.retrieve_data(2, 1) as data:
        assert data["n"] == THREADS * ROUNDS
    assert bot.get_state(2, 1) == "Counter:counting"


def test_two_storages_on_one_backend_serialize(url: str, namespace: str) -> None:
    """Two bot instances (as two processes would be) on one store: still exact."""
    if url == "memory://":
        pytest.skip("two memory:// storages do not share a store")
    first = BotstateStateStorage(url, namespace=namespace)
    second = BotstateStateStorage(url, namespace=namespace)
    try:
        first.set_state(1, 2, Counter.counting)
        first.set_data(1, 2, "n", 0)
        owners = iter([first, second] * (THREADS // 2))
        take = threading.Lock()

        def increments() -> None:
            with take:
                owner = next(owners)
            for _ in range(50):
                with owner.get_interactive_data(1, 2) as data:
                    data["n"] += 1

        run_threads(increments)
        assert second.get_data(1, 2) == {"n": THREADS * 50}
    finally:
        first.close()
        second.close()


def test_raising_block_saves_nothing_and_frees_the_lock(states: BotstateStateStorage) -> None:
    states.lock_timeout = 0  # a block still holding the lock would fail at once
    states.set_state(1, 2, Counter.counting)
    states.set_data(1, 2, "n", 1)
    with pytest.raises(KeyError), states.get_interactive_data(1, 2) as data:
        data["n"] = 99
        raise KeyError("boom")
    assert states.get_data(1, 2) == {"n": 1}
    with states.get_interactive_data(1, 2) as data:  # not blocked by the failed one
        data["n"] += 1
    assert states.get_data(1, 2) == {"n": 2}


def test_a_block_waits_for_the_holder_and_sees_its_save(states: BotstateStateStorage) -> None:
    states.set_state(1, 2, Counter.counting)
    inside, release = threading.Event(), threading.Event()
    seen: list[dict[str, Any]] = []

    def holder() -> None:
        with states.get_interactive_data(1, 2) as data:
            inside.set()
            release.wait(30)
            data["by"] = "holder"

    def waiter() -> None:
        with states.get_interactive_data(1, 2) as data:
            seen.append(dict(data))

    first = threading.Thread(target=holder)
    first.start()
    assert inside.wait(30)
    second = threading.Thread(target=waiter)
    second.start()
    time.sleep(0.3)
    assert seen == []  # still waiting for the holder's lock
    release.set()
    first.join(30)
    second.join(30)
    assert seen == [{"by": "holder"}]


def test_waiting_longer_than_lock_timeout_raises(url: str, namespace: str) -> None:
    states = BotstateStateStorage(url, namespace=namespace, lock_timeout=0.2)
    other = BotstateStateStorage(states.storage, lock_timeout=0.2)
    try:
        states.set_state(1, 2, Counter.counting)
        with states.get_interactive_data(1, 2):
            errors: list[BaseException] = []

            def late() -> None:
                try:
                    with other.get_interactive_data(1, 2):
                        pass
                except BaseException as err:
                    errors.append(err)

            thread = threading.Thread(target=late)
            thread.start()
            thread.join(30)
            assert len(errors) == 1 and isinstance(errors[0], ConflictError)
    finally:
        states.close()


def test_nested_block_on_the_same_user_is_refused(states: BotstateStateStorage) -> None:
    states.set_state(1, 2, Counter.counting)
    with states.get_interactive_data(1, 2) as outer:
        outer["n"] = 1
        with pytest.raises(UsageError, match="already open"), states.get_interactive_data(1, 2):
            pass
        with states.get_interactive_data(1, 3) as other:  # another user: fine
            other["n"] = 5
    assert states.get_data(1, 2) == {"n": 1}
    with states.get_interactive_data(1, 2) as again:  # the lock was released
        assert again == {"n": 1}


def test_no_state_no_save_and_lock_released(states: BotstateStateStorage) -> None:
    states.lock_timeout = 0
    for _ in range(2):
        with states.get_interactive_data(1, 2) as data:
            assert data == {}
            data["n"] = 1
    assert states.get_state(1, 2) is None
    assert states.get_data(1, 2) == {}


def test_interrupted_wait_leaves_the_lock_free(url: str, namespace: str) -> None:
    """Ctrl-C while waiting for the user's lock: it is never held by the interrupted block."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach the main thread only")
    states = BotstateStateStorage(url, namespace=namespace, lock_timeout=30)
    try:
        states.set_state(1, 2, Counter.counting)
        inside, release = threading.Event(), threading.Event()

        def holder() -> None:
            with states.get_interactive_data(1, 2) as data:
                inside.set()
                release.wait(30)
                data["n"] = 1

        thread = threading.Thread(target=holder)
        thread.start()
        assert inside.wait(30)
        timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))  # Ctrl-C
        timer.start()
        try:
            with pytest.raises(KeyboardInterrupt), states.get_interactive_data(1, 2):
                pytest.fail("the interrupted block must not run")
        finally:
            release.set()
            thread.join(30)
            timer.cancel()
        states.lock_timeout = 0  # the next block must get the lock at once
        with states.get_interactive_data(1, 2) as data:
            data["n"] += 1
        assert states.get_data(1, 2) == {"n": 2}
    finally:
        states.close()


# -- the async storage ----------------------------------------------------------
async def test_async_concurrent_blocks_are_exact(url: str, namespace: str) -> None:
    states = AsyncBotstateStateStorage(url, namespace=namespace)
    try:
        await states.set_state(1, 2, Counter.counting)
        await states.set_data(1, 2, "n", 0)

        async def increments() -> None:
            for _ in range(ROUNDS):
                async with states.get_interactive_data(1, 2) as data:
                    value = data["n"]
                    await asyncio.sleep(0)  # let the other tasks in
                    data["n"] = value + 1

        await asyncio.gather(*(increments() for _ in range(THREADS)))
        assert await states.get_data(1, 2) == {"n": THREADS * ROUNDS}
    finally:
        await states.close()


async def test_async_raising_block_saves_nothing_and_frees_the_lock() -> None:
    states = AsyncBotstateStateStorage("memory://", lock_timeout=0)
    await states.set_state(1, 2, Counter.counting)
    await states.set_data(1, 2, "n", 1)
    with pytest.raises(KeyError):
        async with states.get_interactive_data(1, 2) as data:
            data["n"] = 99
            raise KeyError("boom")
    async with states.get_interactive_data(1, 2) as data:
        assert data == {"n": 1}
        with pytest.raises(UsageError, match="already open"):
            async with states.get_interactive_data(1, 2):
                pass
        data["n"] = 2
    assert await states.get_data(1, 2) == {"n": 2}
    # A cancelled block saves nothing and releases the lock too.
    entered = asyncio.Event()

    async def cancelled() -> None:
        async with states.get_interactive_data(1, 2) as data:
            data["n"] = 100
            entered.set()
            await asyncio.sleep(30)

    task = asyncio.create_task(cancelled())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with states.get_interactive_data(1, 2) as data:
        assert data == {"n": 2}
    await states.close()


# -- settings are checked when the storage is built ---------------------------
BAD_TTLS = [0, -5, math.nan, "abc", True, timedelta(seconds=-1), 1e12]


@pytest.mark.parametrize("ttl", BAD_TTLS)
def test_bad_ttl_is_refused_at_construction(ttl: Any) -> None:
    with pytest.raises(ConfigError, match="ttl"):
        BotstateStateStorage("memory://", ttl=ttl)
    with pytest.raises(ConfigError, match="ttl"):
        AsyncBotstateStateStorage("memory://", ttl=ttl)


@pytest.mark.parametrize("timeout", [-1, math.nan, "abc", None])
def test_bad_lock_timeout_is_refused_at_construction(timeout: Any) -> None:
    with pytest.raises(ConfigError, match="lock_timeout"):
        BotstateStateStorage("memory://", lock_timeout=timeout)
    with pytest.raises(ConfigError, match="lock_timeout"):
        AsyncBotstateStateStorage("memory://", lock_timeout=timeout)


def test_settings_are_checked_before_the_storage_is_opened(tmp_path: Any) -> None:
    path = tmp_path / "never.db"
    with pytest.raises(ConfigError):
        BotstateStateStorage(f"sqlite:///{path}", ttl=0)
    assert not path.exists()


def test_good_settings_are_kept() -> None:
    states = BotstateStateStorage("memory://", ttl=timedelta(minutes=5), lock_timeout=0)
    assert (states.ttl, states.lock_timeout) == (300.0, 0.0)
    states.set_state(1, 2, Counter.counting)
    remaining = states.storage.ttl("telebot:chat:1:user:2")
    assert remaining is not None and 290 < remaining <= 300
    forever = AsyncBotstateStateStorage("memory://", ttl=math.inf)
    assert forever.ttl == math.inf
    states.close()
