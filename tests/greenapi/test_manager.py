"""BotstateStateManager against whatsapp-chatbot-python's AbstractStateManager.

The reference is green-api's own in-memory ``StateManager``: the same script
of calls runs on both and every observable result must match, on memory,
SQLite and Redis. Timeouts use the memory adapter's expiry events on a
manual clock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from greenapi_kit import API_TOKEN, ID_INSTANCE, GreenApiRecorder
from whatsapp_chatbot_python import BaseStates, GreenAPI
from whatsapp_chatbot_python.manager.state import AbstractStateManager, State, StateManager

from botstate.adapter import Capability, ManualClock
from botstate.errors import InvalidArgument, UnsupportedOperation
from botstate.storage import Storage
from botstate.sync import SyncStorage
from botstate_greenapi import BotstateStateManager, timeout_message
from botstate_storage_memory import MemoryAdapter


class States(BaseStates):
    USERNAME = "username"
    PASSWORD = "password"


@pytest.fixture
def manager(url: str, namespace: str) -> Iterator[BotstateStateManager]:
    opened = BotstateStateManager(url, namespace=namespace)
    yield opened
    opened.close()


def test_implements_every_abstract_method() -> None:
    abstract = AbstractStateManager.__abstractmethods__
    assert abstract == {
        "get_state",
        "set_state",
        "update_state",
        "delete_state",
        "get_state_data",
        "set_state_data",
        "update_state_data",
        "delete_state_data",
    }
    assert not BotstateStateManager.__abstractmethods__
    for name in abstract:
        assert name in vars(BotstateStateManager), name


SCRIPT: list[tuple[str, tuple[Any, ...]]] = [
    ("get_state", ("a@c.us",)),
    ("get_state_data", ("a@c.us",)),
    ("set_state_data", ("a@c.us", {"x": 1})),  # no state: nothing happens
    ("update_state_data", ("a@c.us", {"x": 1})),
    ("delete_state_data", ("a@c.us",)),
    ("get_state", ("a@c.us",)),
    ("set_state", ("a@c.us", States.USERNAME.value)),
    ("get_state", ("a@c.us",)),
    ("get_state_data", ("a@c.us",)),
    ("update_state_data", ("a@c.us", {"username": "ann"})),  # no data yet: set
    ("update_state_data", ("a@c.us", {"age": 30})),  # merged
    ("get_state_data", ("a@c.us",)),
    ("update_state", ("a@c.us", States.PASSWORD.value)),  # keeps the data
    ("get_state", ("a@c.us",)),
    ("set_state_data", ("a@c.us", {"only": True})),
    ("get_state_data", ("a@c.us",)),
    ("delete_state_data", ("a@c.us",)),
    ("get_state", ("a@c.us",)),
    ("update_state_data", ("a@c.us", {"again": 1})),
    ("set_state", ("a@c.us", States.USERNAME.value)),  # a new state drops the data
    ("get_state", ("a@c.us",)),
    ("update_state", ("b@c.us", "fresh")),  # no state: created
    ("get_state", ("b@c.us",)),
    ("delete_state", ("a@c.us",)),
    ("delete_state", ("a@c.us",)),  # twice: no error
    ("get_state", ("a@c.us",)),
    ("get_state_data", ("a@c.us",)),
]


def test_matches_green_apis_own_state_manager(manager: BotstateStateManager) -> None:
    reference = StateManager()
    for method, args in SCRIPT:
        expected = getattr(reference, method)(*args)
        if isinstance(expected, State):  # theirs hands out its live object: compare a copy
            expected = State(expected.name, None if expected.data is None else {**expected.data})
        assert getattr(manager, method)(*args) == expected, (method, args)


def test_one_key_per_sender(manager: BotstateStateManager) -> None:
    manager.set_state("79001234567@c.us", States.USERNAME)  # a BaseStates member works too
    manager.update_state_data("79001234567@c.us", {"username": "ann"})
    manager.set_state("79007654321@c.us", "x")
    storage = manager.sync_storage
    assert sorted(storage.keys()) == ["greenapi:79001234567@c.us", "greenapi:79007654321@c.us"]
    assert storage.get("greenapi:79001234567@c.us") == {
        "name": "username",
        "data": {"username": "ann"},
    }


def test_bad_arguments(manager: BotstateStateManager) -> None:
    with pytest.raises(InvalidArgument):
        manager.get_state("")
    with pytest.raises(InvalidArgument):
        manager.set_state("a@c.us", 3)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        BotstateStateManager("memory://", prefix="")
    with pytest.raises(InvalidArgument):
        BotstateStateManager(b"memory://")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="only apply"):
        BotstateStateManager(manager.sync_storage, namespace="x")


# -- TTL and the "session timed out" message -------------------------------------
@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1_000_000.0)


@pytest.fixture
def memory(clock: ManualClock) -> Iterator[SyncStorage[Any]]:
    adapter = MemoryAdapter(clock=clock, sweep_interval=0)
    storage = SyncStorage(Storage(adapter, namespace="bot", clock=clock))
    yield storage
    storage.close()


def test_state_expires_after_ttl_and_reports_the_timeout(
    memory: SyncStorage[Any], clock: ManualClock
) -> None:
    timed_out: list[tuple[str, State]] = []
    done = threading.Event()

    def on_timeout(sender: str, state: State) -> None:
        timed_out.append((sender, state))
        done.set()

    manager = BotstateStateManager(memory, ttl=300, on_timeout=on_timeout)
    manager.set_state("a@c.us", States.USERNAME)
    manager.update_state_data("a@c.us", {"username": "ann"})
    memory.set("unrelated", 1, ttl=10)
    clock.advance(200)
    manager.update_state("a@c.us", States.PASSWORD)  # a change restarts the clock
    clock.advance(200)
    assert manager.get_state("a@c.us") == State("password", {"username": "ann"})
    assert memory.get("unrelated") is None  # expired, but not a state: no callback
    clock.advance(101)
    assert manager.get_state("a@c.us") is None
    assert done.wait(10)
    assert timed_out == [("a@c.us", State("password", {"username": "ann"}))]
    manager.close()


def test_refresh_on_read_counts_messages_as_activity(
    memory: SyncStorage[Any], clock: ManualClock
) -> None:
    manager = BotstateStateManager(memory, ttl=300, refresh_on_read=True)
    manager.set_state("a@c.us", "menu")
    for _ in range(3):
        clock.advance(200)
        assert manager.get_state("a@c.us") == State("menu", None)
    clock.advance(301)
    assert manager.get_state("a@c.us") is None


class _Silent(MemoryAdapter):
    capabilities = MemoryAdapter.capabilities - {Capability.EXPIRY_EVENTS}


def test_timeouts_need_expiry_events() -> None:
    silent = SyncStorage(Storage(_Silent()))
    with pytest.raises(UnsupportedOperation, match="EXPIRY_EVENTS"):
        BotstateStateManager(silent, on_timeout=lambda sender, state: None)


def test_timeout_message_is_sent_through_the_bots_api(
    memory: SyncStorage[Any], clock: ManualClock, green_api: GreenApiRecorder
) -> None:
    api = GreenAPI(ID_INSTANCE, API_TOKEN, host=green_api.url, media=green_api.url)
    manager = BotstateStateManager(
        memory, ttl=60, on_timeout=timeout_message(api, "Session timed out, write /start")
    )
    manager.set_state("79001234567@c.us", "menu")
    clock.advance(61)
    assert manager.get_state("79001234567@c.us") is None
    assert green_api.wait_for(1) == [("79001234567@c.us", "Session timed out, write /start")]
