"""BotstateStorage as aiogram's BaseStorage, on memory, SQLite and Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from aiogram.exceptions import DataNotDictLikeError
from aiogram.fsm.state import State, StatesGroup
from aiogram.fsm.storage.base import DefaultKeyBuilder, StorageKey

from botstate.adapter import ManualClock
from botstate.errors import (
    BotstateError,
    ConfigError,
    DecodeError,
    EncodeError,
    InvalidArgument,
)
from botstate.storage import FOREVER, Storage
from botstate_aiogram import BotstateKeyBuilder, BotstateStorage, DataNotDict
from botstate_storage_memory import MemoryAdapter

KEY = StorageKey(bot_id=42, chat_id=-100, user_id=7)


class Form(StatesGroup):
    name = State()
    age = State()


async def test_state_round_trip(fsm: BotstateStorage) -> None:
    assert await fsm.get_state(KEY) is None
    await fsm.set_state(KEY, Form.name)
    assert await fsm.get_state(KEY) == "Form:name"
    await fsm.set_state(KEY, "custom")
    assert await fsm.get_state(KEY) == "custom"
    await fsm.set_state(KEY, None)
    assert await fsm.get_state(KEY) is None
    assert not await fsm.storage.has("fsm:-100:7:state")  # None deletes, stores no null


async def test_data_round_trip_and_copies(fsm: BotstateStorage) -> None:
    assert await fsm.get_data(KEY) == {}
    data = {"name": "Ann", "tags": ["a"], "n": 1}
    await fsm.set_data(KEY, data)
    data["name"] = "changed"  # the caller's dict is not the stored one
    got = await fsm.get_data(KEY)
    assert got == {"name": "Ann", "tags": ["a"], "n": 1}
    got["name"] = "changed too"
    assert (await fsm.get_data(KEY))["name"] == "Ann"
    assert await fsm.get_value(KEY, "n") == 1
    assert await fsm.get_value(KEY, "missing", "dflt") == "dflt"
    await fsm.set_data(KEY, {})
    assert await fsm.get_data(KEY) == {}
    assert not await fsm.storage.has("fsm:-100:7:data")  # empty data is deleted


async def test_state_and_data_are_separate_keys_named_like_aiogram(fsm: BotstateStorage) -> None:
    await fsm.set_state(KEY, Form.age)
    await fsm.set_data(KEY, {"a": 1})
    assert await fsm.storage.get("fsm:-100:7:state") == "Form:age"
    assert await fsm.storage.get("fsm:-100:7:data") == {"a": 1}
    await fsm.set_state(KEY, None)
    assert await fsm.get_data(KEY) == {"a": 1}  # clearing the state keeps the data
    keys = sorted([k async for k in fsm.storage.keys("fsm:")])
    assert keys == ["fsm:-100:7:data"]


async def test_update_data_merges_and_returns_new_copy(fsm: BotstateStorage) -> None:
    assert await fsm.update_data(KEY, {"a": 1}) == {"a": 1}
    assert await fsm.update_data(KEY, {}) == {"a": 1}
    result = await fsm.update_data(KEY, {"b": 2, "a": 3})
    assert result == {"a": 3, "b": 2}
    result["c"] = 4
    assert await fsm.get_data(KEY) == {"a": 3, "b": 2}


async def test_update_data_never_loses_a_concurrent_field(
    open_botstate: Callable[[], Storage[Any]], backend: str
) -> None:
    """50 tasks, across two BotstateStorage instances on separate connections where the
    backend is shared, each merge their own field into one key: all 50 fields survive
    (a read-then-write update_data loses most of them)."""
    first = open_botstate()
    second = open_botstate() if backend != "memory" else first
    fsms = [BotstateStorage(first), BotstateStorage(second)]
    try:
        await asyncio.gather(*(fsms[i % 2].update_data(KEY, {f"field{i}": i}) for i in range(50)))
        assert await fsms[0].get_data(KEY) == {f"field{i}": i for i in range(50)}
    finally:
        await first.close()
        if second is not first:
            await second.close()


async def test_update_data_on_foreign_value_refuses(fsm: BotstateStorage) -> None:
    await fsm.storage.set("fsm:-100:7:data", ["not", "a", "dict"])
    with pytest.raises(DecodeError) as info:
        await fsm.update_data(KEY, {"a": 1})
    assert info.value.key == "fsm:-100:7:data"
    with pytest.raises(DecodeError):
        await fsm.get_data(KEY)
    assert await fsm.storage.get("fsm:-100:7:data") == ["not", "a", "dict"]  # untouched


async def test_foreign_state_value_is_a_decode_error(fsm: BotstateStorage) -> None:
    await fsm.storage.set("fsm:-100:7:state", 5)
    with pytest.raises(DecodeError, match="not a str"):
        await fsm.get_state(KEY)


@pytest.mark.parametrize("bad", [(), [("a", 1)], "text", None, 5])
async def test_set_data_not_a_mapping(fsm: BotstateStorage, bad: object) -> None:
    for call in (fsm.set_data, fsm.update_data):
        with pytest.raises(DataNotDict) as info:
            await call(KEY, bad)  # type: ignore[arg-type]
        # both error trees: botstate's and aiogram's
        assert isinstance(info.value, InvalidArgument)
        assert isinstance(info.value, DataNotDictLikeError)
        assert "got " + type(bad).__name__ in str(info.value)
    assert await fsm.get_data(KEY) == {}


async def test_set_state_bad_type(fsm: BotstateStorage) -> None:
    with pytest.raises(InvalidArgument, match="State, a str or None"):
        await fsm.set_state(KEY, 5)  # type: ignore[arg-type]
    assert await fsm.get_state(KEY) is None


async def test_unencodable_data_writes_nothing(fsm: BotstateStorage) -> None:
    await fsm.set_data(KEY, {"ok": 1})
    with pytest.raises(EncodeError) as info:
        await fsm.set_data(KEY, {"when": object()})
    assert info.value.key == "fsm:-100:7:data"
    with pytest.raises(EncodeError):
        await fsm.update_data(KEY, {"when": object()})
    assert await fsm.get_data(KEY) == {"ok": 1}


async def test_typed_dict_and_mapping_data(fsm: BotstateStorage) -> None:
    from types import MappingProxyType

    await fsm.set_data(KEY, MappingProxyType({"a": 1}))
    assert await fsm.get_data(KEY) == {"a": 1}
    assert await fsm.update_data(KEY, MappingProxyType({"b": 2})) == {"a": 1, "b": 2}


async def test_key_builder_semantics(botstate_storage: Storage[Any]) -> None:
    """Bot id, business connection, thread and destiny as aiogram's DefaultKeyBuilder."""
    builder = DefaultKeyBuilder(
        prefix="p",
        separator="|",
        with_bot_id=True,
        with_business_connection_id=True,
        with_destiny=True,
    )
    fsm = BotstateStorage(botstate_storage, key_builder=builder)
    keys = [
        StorageKey(bot_id=1, chat_id=2, user_id=3),
        StorageKey(bot_id=9, chat_id=2, user_id=3),
        StorageKey(bot_id=1, chat_id=2, user_id=3, thread_id=5),
        StorageKey(bot_id=1, chat_id=2, user_id=3, business_connection_id="bc"),
        StorageKey(bot_id=1, chat_id=2, user_id=3, destiny="scene"),
    ]
    for i, key in enumerate(keys):
        await fsm.set_state(key, f"s{i}")
    for i, key in enumerate(keys):
        assert await fsm.get_state(key) == f"s{i}"
    names = sorted([k async for k in botstate_storage.keys("p|")])
    assert names == sorted(
        [
            "p|1|2|3|default|state",
            "p|9|2|3|default|state",
            "p|1|2|5|3|default|state",
            "p|1|bc|2|3|default|state",
            "p|1|2|3|scene|state",
        ]
    )

    # The default builder: aiogram's names for the default destiny, other destinies (scenes)
    # before the part, where aiogram's DefaultKeyBuilder() raises its own ValueError.
    plain = BotstateStorage(botstate_storage)
    await plain.set_state(StorageKey(bot_id=1, chat_id=2, user_id=3, thread_id=4), "t")
    await plain.set_state(StorageKey(bot_id=1, chat_id=2, user_id=3, destiny="scenes_history"), "h")
    assert await botstate_storage.get("fsm:2:4:3:state") == "t"
    assert await botstate_storage.get("fsm:2:3:scenes_history:state") == "h"
    assert BotstateKeyBuilder(with_destiny=True).build(keys[0], "data") == "fsm:2:3:default:data"
    strict = BotstateStorage(botstate_storage, key_builder=DefaultKeyBuilder())
    with pytest.raises(ValueError, match="with_destiny"):
        await strict.get_state(keys[4])


@pytest.mark.parametrize("with_bot_id", [False, True])
@pytest.mark.parametrize("with_business_connection_id", [False, True])
@pytest.mark.parametrize("with_destiny", [False, True])
def test_key_builder_names_keys_as_aiogram_default_builder(
    with_bot_id: bool, with_business_connection_id: bool, with_destiny: bool
) -> None:
    """BotstateKeyBuilder's own build() gives DefaultKeyBuilder's names, setting by setting."""
    settings = {
        "with_bot_id": with_bot_id,
        "with_business_connection_id": with_business_connection_id,
        "with_destiny": with_destiny,
    }
    for prefix, separator in (("fsm", ":"), ("p", "|"), ("", "::")):
        ours = BotstateKeyBuilder(prefix=prefix, separator=separator, **settings)
        theirs = DefaultKeyBuilder(prefix=prefix, separator=separator, **settings)
        for key in (
            StorageKey(bot_id=1, chat_id=-100, user_id=3),
            StorageKey(bot_id=1, chat_id=2, user_id=3, thread_id=5),
            StorageKey(bot_id=1, chat_id=2, user_id=3, thread_id=0),
            StorageKey(bot_id=1, chat_id=2, user_id=3, business_connection_id="bc"),
            StorageKey(bot_id=1, chat_id=2, user_id=3, business_connection_id=""),
            StorageKey(bot_id=7, chat_id=2, user_id=3, thread_id=5, business_connection_id="b"),
        ):
            for part in (None, "data", "state", "lock"):
                assert ours.build(key, part) == theirs.build(key, part), (settings, key, part)


async def test_update_data_result_is_the_callers(fsm: BotstateStorage) -> None:
    """The dict update_data returns and the dict set_data was given are not the stored data."""
    given = {"a": [1]}
    await fsm.set_data(KEY, given)
    given["a"].append(2)
    result = await fsm.update_data(KEY, {"b": 2})
    assert result == {"a": [1], "b": 2}
    result["a"].append(3)
    result["c"] = 3
    assert await fsm.get_data(KEY) == {"a": [1], "b": 2}
    assert await fsm.update_data(KEY, {}) == {"a": [1], "b": 2}


async def test_state_and_data_ttl_on_a_manual_clock() -> None:
    clock = ManualClock(1_000_000.0)
    storage: Storage[Any] = Storage(MemoryAdapter(clock=clock, sweep_interval=0), clock=clock)
    fsm = BotstateStorage(storage, state_ttl=60, data_ttl=timedelta(seconds=120))
    await fsm.set_state(KEY, Form.name)
    await fsm.set_data(KEY, {"a": 1})
    assert await storage.ttl("fsm:-100:7:state") == 60
    assert await storage.ttl("fsm:-100:7:data") == 120
    clock.advance(61)
    assert await fsm.get_state(KEY) is None
    assert await fsm.get_data(KEY) == {"a": 1}
    clock.advance(50)
    await fsm.update_data(KEY, {"b": 2})  # each write starts the data TTL again
    clock.advance(100)
    assert await fsm.get_data(KEY) == {"a": 1, "b": 2}
    clock.advance(21)
    assert await fsm.get_data(KEY) == {}


async def test_ttl_none_uses_the_storage_default() -> None:
    clock = ManualClock(1_000_000.0)
    storage: Storage[Any] = Storage(
        MemoryAdapter(clock=clock, sweep_interval=0), clock=clock, ttl=30
    )
    fsm = BotstateStorage(storage)
    await fsm.set_state(KEY, "s")
    assert await storage.ttl("fsm:-100:7:state") == 30
    forever = BotstateStorage(storage, state_ttl=float("inf"))
    await forever.set_state(KEY, "s")
    assert await storage.ttl("fsm:-100:7:state") == FOREVER


@pytest.mark.parametrize(
    "kwargs",
    [
        {"state_ttl": 0},
        {"data_ttl": -1},
        {"state_ttl": "60"},
        {"data_ttl": float("nan")},
        {"state_ttl": True},
        {"key_builder": "fsm"},
    ],
)
def test_bad_settings_are_config_errors(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        BotstateStorage("memory://", **kwargs)


def test_typed_storage_is_refused() -> None:
    pytest.importorskip("msgspec")  # typed storages need botstate[msgspec]
    from botstate.opening import open_storage

    with pytest.raises(ConfigError, match="without type="):
        BotstateStorage(open_storage("memory://", type=dict[str, int]))


async def test_msgpack_codec_keeps_datetimes_and_int_keys(tmp_path: Any) -> None:
    pytest.importorskip("msgspec")
    from datetime import datetime, timezone

    fsm = BotstateStorage.from_url(f"sqlite:///{tmp_path / 'm.db'}", codec="msgpack")
    when = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    await fsm.set_data(KEY, {"when": when, "votes": {1: "yes"}})
    assert await fsm.get_data(KEY) == {"when": when, "votes": {1: "yes"}}
    await fsm.close()


def test_bad_storage_argument() -> None:
    with pytest.raises(ConfigError, match="Storage, a URL or a config mapping"):
        BotstateStorage(42)  # type: ignore[arg-type]
    with pytest.raises(BotstateError):
        BotstateStorage("nosuchscheme://x")


async def test_url_mapping_and_from_url_open_and_close(storage_url: str, namespace: str) -> None:
    """What the FSM storage opened it closes; a Storage passed in stays open."""
    by_url = BotstateStorage(storage_url)
    by_mapping = BotstateStorage({"url": storage_url, "namespace": namespace})
    by_from_url = BotstateStorage.from_url(storage_url, namespace=namespace, state_ttl=60)
    for fsm in (by_url, by_mapping, by_from_url):
        await fsm.set_state(KEY, "s")
        assert await fsm.get_state(KEY) == "s"
    assert by_from_url.state_ttl == 60
    assert by_from_url.storage.namespace == namespace
    assert by_mapping.storage.namespace == namespace
    for fsm in (by_url, by_mapping, by_from_url):
        await fsm.close()
        with pytest.raises(BotstateError):
            await fsm.get_state(KEY)  # closed: the adapter refuses

    shared = BotstateStorage.from_url(storage_url, namespace=namespace)
    passed = BotstateStorage(shared.storage)
    await passed.close()
    assert await shared.get_state(KEY) in ("s", None)  # still open after the borrower closed
    await shared.close()


async def test_two_bots_in_one_namespace_need_with_bot_id(botstate_storage: Storage[Any]) -> None:
    builder = DefaultKeyBuilder(with_bot_id=True)
    fsm = BotstateStorage(botstate_storage, key_builder=builder)
    await fsm.set_data(StorageKey(bot_id=1, chat_id=5, user_id=5), {"bot": 1})
    await fsm.set_data(StorageKey(bot_id=2, chat_id=5, user_id=5), {"bot": 2})
    assert await fsm.get_data(StorageKey(bot_id=1, chat_id=5, user_id=5)) == {"bot": 1}
    assert await fsm.get_data(StorageKey(bot_id=2, chat_id=5, user_id=5)) == {"bot": 2}


def test_repr_hides_the_password() -> None:
    fsm = BotstateStorage("redis://:hunter2@127.0.0.1:1/0")
    assert "hunter2" not in repr(fsm)
    assert "BotstateStorage(" in repr(fsm)
