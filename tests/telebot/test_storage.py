"""botstate-telebot against every method of pyTelegramBotAPI's two StateStorageBase classes.

The same expectations run on the sync storage (TeleBot) and the async one
(AsyncTeleBot), on memory, SQLite and Redis. The reference is what
pyTelegramBotAPI's own StateMemoryStorage does (read from its source), with
one deliberate difference: ``get_interactive_data`` saves only when its block
ends normally and never swallows the block's exception.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import pytest
from telebot import asyncio_storage, storage
from telebot.states import State, StatesGroup

import botstate
from botstate.errors import InvalidArgument, UsageError
from botstate.sync import SyncStorage
from botstate.sync import open_storage as open_sync
from botstate_telebot import AsyncBotstateStateStorage, BotstateStateStorage, state_key


class Form(StatesGroup):
    name = State()
    age = State()


WHERE = {"bot_id": 7}
KEY = "telebot:bot:7:chat:1:user:2"


# -- the bases' methods are all implemented, with their parameter names ------
@pytest.mark.parametrize(
    ("base", "ours"),
    [
        (storage.StateStorageBase, BotstateStateStorage),
        (asyncio_storage.StateStorageBase, AsyncBotstateStateStorage),
    ],
)
def test_every_base_method_is_implemented(base: type, ours: type) -> None:
    methods = [name for name, fn in vars(base).items() if callable(fn) and not name.startswith("_")]
    assert {"set_state", "get_state", "delete_state", "set_data", "get_data"} <= set(methods)
    assert {"reset_data", "get_interactive_data", "save"} <= set(methods)
    for name in methods:
        mine, theirs = vars(ours).get(name), vars(base)[name]
        assert mine is not None, f"{ours.__name__} does not implement {name}"
        assert inspect.iscoroutinefunction(mine) == inspect.iscoroutinefunction(theirs), name
        accepted = inspect.signature(mine).parameters
        # pyTelegramBotAPI calls these with keywords; the base lists some of them.
        wanted = [*inspect.signature(theirs).parameters]
        if name not in ("set_data", "save"):
            wanted += ["business_connection_id", "message_thread_id", "bot_id"]
        for param in wanted:
            assert param in accepted, f"{ours.__name__}.{name} lacks {param!r}"


# -- the sync storage -----------------------------------------------------------
@pytest.fixture
def states(url: str, namespace: str) -> Iterator[BotstateStateStorage]:
    opened = BotstateStateStorage(url, namespace=namespace)
    yield opened
    opened.close()


def test_absent_state(states: BotstateStateStorage) -> None:
    assert states.get_state(1, 2, **WHERE) is None
    assert states.get_data(1, 2, **WHERE) == {}
    assert states.delete_state(1, 2, **WHERE) is False
    assert states.reset_data(1, 2, **WHERE) is False
    assert states.save(1, 2, {"a": 1}, None, None, 7) is False
    with pytest.raises(UsageError, match="set a state") as info:
        states.set_data(1, 2, "a", 1, **WHERE)
    assert isinstance(info.value, RuntimeError)  # what pyTelegramBotAPI's storages raise
    assert list(states.storage.keys()) == []  # nothing was written


def test_state_and_data_lifecycle(states: BotstateStateStorage) -> None:
    assert states.set_state(1, 2, Form.name, **WHERE) is True
    assert states.get_state(1, 2, **WHERE) == "Form:name"
    assert states.storage.get(KEY) == {"state": "Form:name", "data": {}}
    assert states.set_data(1, 2, "name", "Ann", **WHERE) is True
    assert states.set_data(1, 2, "langs", ["en", "de"], **WHERE) is True
    assert states.set_state(1, 2, "Form:age", **WHERE) is True  # a str works too
    assert states.get_data(1, 2, **WHERE) == {"name": "Ann", "langs": ["en", "de"]}
    assert states.get_state(1, 2, **WHERE) == "Form:age"
    assert states.reset_data(1, 2, **WHERE) is True
    assert states.get_data(1, 2, **WHERE) == {}
    assert states.get_state(1, 2, **WHERE) == "Form:age"
    assert states.save(1, 2, {"age": 30}, None, None, 7) is True
    assert states.get_data(1, 2, **WHERE) == {"age": 30}
    assert states.delete_state(1, 2, **WHERE) is True
    assert states.get_state(1, 2, **WHERE) is None
    assert states.get_data(1, 2, **WHERE) == {}


def test_interactive_data_saves_on_normal_exit_only(states: BotstateStateStorage) -> None:
    states.set_state(1, 2, Form.name, **WHERE)
    with states.get_interactive_data(1, 2, **WHERE) as data:
        data["name"] = "Ann"
    assert states.get_data(1, 2, **WHERE) == {"name": "Ann"}
    with pytest.raises(KeyError), states.get_interactive_data(1, 2, **WHERE) as data:
        data["name"] = "Bob"
        raise KeyError("boom")
    assert states.get_data(1, 2, **WHERE) == {"name": "Ann"}


def test_one_key_per_chat_user_topic_connection_and_bot(states: BotstateStateStorage) -> None:
    places: list[dict[str, Any]] = [
        {},
        {"bot_id": 7},
        {"bot_id": 8},
        {"bot_id": 7, "message_thread_id": 5},
        {"bot_id": 7, "business_connection_id": "bc:1"},
    ]
    for n, where in enumerate(places):
        states.set_state(1, 2, f"S:{n}", **where)
    states.set_state(None, 2, "S:inline", bot_id=7)  # inline queries have no chat
    for n, where in enumerate(places):
        assert states.get_state(1, 2, **where) == f"S:{n}"
    assert sorted(states.storage.keys()) == sorted(
        [
            "telebot:chat:1:user:2",
            "telebot:bot:7:chat:1:user:2",
            "telebot:bot:8:chat:1:user:2",
            "telebot:bot:7:chat:1:topic:5:user:2",
            "telebot:bot:7:biz:bc%3A1:chat:1:user:2",
            "telebot:bot:7:user:2",
        ]
    )


def test_ttl_applies_to_every_change(url: str, namespace: str) -> None:
    with open_sync(url, namespace=namespace) as sync:
        states = BotstateStateStorage(sync, ttl=300)
        states.set_state(1, 2, Form.name)
        ttl = sync.ttl("telebot:chat:1:user:2")
        assert ttl is not None and 290 < ttl <= 300


def test_prefix_and_key_helper() -> None:
    assert state_key(-100, 42, bot_id=7, message_thread_id=3) == (
        "telebot:bot:7:chat:-100:topic:3:user:42"
    )
    assert (
        state_key(1, 2, business_connection_id="a%b", prefix="tb") == "tb:biz:a%25b:chat:1:user:2"
    )
    assert state_key(1, 2, bot_id=0, message_thread_id=0) == "telebot:chat:1:user:2"
    with pytest.raises(InvalidArgument):
        state_key(None, None)
    with pytest.raises(InvalidArgument):
        state_key(1.5, 2)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        BotstateStateStorage("memory://", prefix="")
    with pytest.raises(InvalidArgument, match="State"):
        BotstateStateStorage("memory://").set_state(1, 2, State())  # not in a StatesGroup


def test_storage_argument_forms(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    by_mapping = BotstateStateStorage({"adapter": "memory", "namespace": "m"})
    assert by_mapping.storage.namespace == "m"
    by_storage = BotstateStateStorage(botstate.open_storage("memory://"))
    by_storage.set_state(1, 2, Form.age)
    assert by_storage.get_state(1, 2) == "Form:age"
    sync = open_sync("memory://")
    assert BotstateStateStorage(sync).storage is sync
    monkeypatch.setenv("BOTSTATE_STORAGE", f"sqlite:///{tmp_path / 'env.db'}")
    by_env = BotstateStateStorage()
    by_env.set_state(1, 2, Form.name)
    assert by_env.get_state(1, 2) == "Form:name"
    with pytest.raises(InvalidArgument):
        BotstateStateStorage(42)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="only apply"):
        BotstateStateStorage(sync, namespace="x")
    for opened in (by_mapping, by_storage, by_env):
        opened.close()
    sync.close()
    assert "BotstateStateStorage(SyncStorage(" in repr(by_env)


# -- the async storage ------------------------------------------------------------
async def test_async_storage_all_methods(url: str, namespace: str) -> None:
    states = AsyncBotstateStateStorage(url, namespace=namespace)
    try:
        assert await states.get_state(1, 2, **WHERE) is None
        assert await states.get_data(1, 2, **WHERE) == {}
        assert await states.delete_state(1, 2, **WHERE) is False
        assert await states.reset_data(1, 2, **WHERE) is False
        assert await states.save(1, 2, {"a": 1}, None, None, 7) is False
        with pytest.raises(UsageError):
            await states.set_data(1, 2, "a", 1, **WHERE)
        assert await states.set_state(1, 2, Form.name, **WHERE) is True
        assert await states.set_data(1, 2, "name", "Ann", **WHERE) is True
        assert await states.set_state(1, 2, Form.age, **WHERE) is True
        assert await states.get_state(1, 2, **WHERE) == "Form:age"
        assert await states.get_data(1, 2, **WHERE) == {"name": "Ann"}
        async with states.get_interactive_data(1, 2, **WHERE) as data:
            data["age"] = 30
        with pytest.raises(KeyError):
            async with states.get_interactive_data(1, 2, **WHERE) as data:
                data["age"] = 31
                raise KeyError("boom")
        assert await states.get_data(1, 2, **WHERE) == {"name": "Ann", "age": 30}
        assert await states.reset_data(1, 2, **WHERE) is True
        assert await states.save(1, 2, {"x": 1}, None, None, 7) is True
        assert await states.get_data(1, 2, **WHERE) == {"x": 1}
        # The same key and record as the sync storage: a bot can switch between them.
        assert await states.storage.get(KEY) == {"state": "Form:age", "data": {"x": 1}}
        assert await states.delete_state(1, 2, **WHERE) is True
        assert await states.get_state(1, 2, **WHERE) is None
    finally:
        await states.close()


async def test_async_storage_argument_forms() -> None:
    given = botstate.open_storage("memory://")
    states = AsyncBotstateStateStorage(given, ttl=60)
    assert states.storage is given
    await states.set_state(1, 2, Form.name)
    assert await given.ttl("telebot:chat:1:user:2") == pytest.approx(60, abs=1)
    assert "AsyncBotstateStateStorage(Storage(" in repr(states)
    await states.close()
    with pytest.raises(InvalidArgument, match="SyncStorage"):
        AsyncBotstateStateStorage(SyncStorage(botstate.open_storage("memory://")))
    with pytest.raises(InvalidArgument, match="only apply"):
        AsyncBotstateStateStorage(botstate.open_storage("memory://"), namespace="x")
    with pytest.raises(InvalidArgument):
        AsyncBotstateStateStorage(3.5)  # type: ignore[arg-type]
