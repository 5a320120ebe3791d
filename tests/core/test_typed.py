"""Typed values in the core: decoding into the program's types, errors, codecs, safety."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
import pytest_asyncio

import botstate
import botstate.adapter
from botstate import open_storage
from botstate.adapter import Version
from botstate.codecs import JsonCodec
from botstate.errors import ConfigError, DecodeError, EncodeError, MigrationError
from botstate.sessions import Sessions
from botstate.storage import Storage
from botstate.typed import MsgpackCodec, MsgspecJsonCodec
from botstate_storage_memory import MemoryAdapter
from tests.typed_suite import Account, Cart, Item, TypedRoundTrips, _account, _cart, _item

ROOT = Path(__file__).resolve().parents[2]


class TestMemoryTypedValues(TypedRoundTrips):
    @pytest_asyncio.fixture
    async def adapter(self) -> AsyncIterator[MemoryAdapter]:
        adapter = MemoryAdapter(sweep_interval=0)
        yield adapter
        await adapter.close()


@pytest.fixture(params=["json", "msgpack"])
def codec(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _encode(codec: str, value: Any) -> bytes:
    return msgspec.json.encode(value) if codec == "json" else msgspec.msgpack.encode(value)


# -- invalid stored data -------------------------------------------------------


async def test_data_that_does_not_fit_names_key_and_field(
    adapter: MemoryAdapter, codec: str
) -> None:
    storage = Storage(adapter, codec=codec, type=Cart)
    wrong = {"items": [{"sku": "a", "price": "1.10", "added": 17}]}
    await adapter.set("cart:1", _encode(codec, wrong))
    with pytest.raises(DecodeError) as info:
        await storage.get("cart:1")
    assert info.value.key == "cart:1"
    assert "'cart:1'" in str(info.value)
    assert "Cart" in str(info.value)
    assert "$.items[0].added" in str(info.value)


async def test_pydantic_errors_name_the_field(adapter: MemoryAdapter, codec: str) -> None:
    storage = Storage(adapter, codec=codec, type=Account)
    await adapter.set("acc", _encode(codec, {"user_id": "not a number"}))
    with pytest.raises(DecodeError) as info:
        await storage.get("acc")
    assert info.value.key == "acc"
    assert "field `user_id`" in str(info.value)
    assert "more errors" in str(info.value)  # joined, balance, … are missing too


async def test_pydantic_model_nested_in_a_dataclass_names_the_path(
    adapter: MemoryAdapter, codec: str
) -> None:
    @dataclass
    class Holder:
        account: Account

    storage = Storage(adapter, codec=codec, type=Holder)
    await adapter.set("h", _encode(codec, {"account": {"user_id": "x"}}))
    with pytest.raises(DecodeError, match=r"field `user_id`.*\$\.account"):
        await storage.get("h")


async def test_undecodable_bytes_are_decode_errors(adapter: MemoryAdapter, codec: str) -> None:
    storage = Storage(adapter, codec=codec, type=Item)
    await adapter.set("x", b"\xc1\xff{")
    with pytest.raises(DecodeError) as info:
        await storage.get("x")
    assert info.value.key == "x"


async def test_wrong_instance_is_an_encode_error_and_nothing_is_written(
    adapter: MemoryAdapter, codec: str
) -> None:
    storage: Storage[Any] = Storage(adapter, codec=codec, type=Item)
    with pytest.raises(EncodeError, match="expected Item, got dict") as info:
        await storage.set("item", {"sku": "a"})
    assert info.value.key == "item"
    assert await adapter.get("item") is None


async def test_typed_update_passes_the_type(adapter: MemoryAdapter) -> None:
    storage = Storage(adapter, type=Item)

    def bump(old: Item | None) -> Item:
        assert old is None or isinstance(old, Item)
        return _item(1) if old is None else Item(old.sku, old.price + 1, old.added)

    await storage.update("i", bump)
    assert await storage.update("i", bump) == Item("sku-1", Decimal("2.10"), _item(1).added)


# -- safety: stored bytes never choose what is built ----------------------------


class _Tripwire:
    """Pickling this records a call when unpickled: proof that nothing unpickles."""

    calls: list[str] = []  # noqa: RUF012

    def __reduce__(self) -> tuple[Any, ...]:
        return (_Tripwire.calls.append, ("unpickled!",))


@pytest.mark.parametrize("tp", [None, Item, dict[str, Any]])
async def test_stored_bytes_naming_a_class_never_build_it(
    adapter: MemoryAdapter, monkeypatch: pytest.MonkeyPatch, codec: str, tp: Any
) -> None:
    ran: list[object] = []
    monkeypatch.setattr(os, "system", lambda *a: ran.append(a))
    storage: Storage[Any] = Storage(adapter, codec=codec, type=tp)
    naming = {"__class__": "os.system", "py/object": "os.system", "args": ["echo pwned"]}
    await adapter.set("named", _encode(codec, naming))
    try:
        got = await storage.get("named")
    except DecodeError:
        pass  # typed as Item: missing fields; refusing is fine, building is not
    else:
        assert got == naming  # plain data, exactly as stored
    # MessagePack extension data (any code other than the timestamp) is refused.
    ext = msgspec.msgpack.encode(msgspec.msgpack.Ext(1, b"os.system"))
    await adapter.set("ext", ext)
    await adapter.set("pickled", pickle.dumps(_Tripwire()))
    for key in ("ext", "pickled"):
        if codec == "json" and key == "ext":
            continue  # not JSON at all: covered by the pickled bytes
        with pytest.raises(DecodeError):
            await storage.get(key)
    assert ran == []
    assert _Tripwire.calls == []


async def test_untyped_msgpack_refuses_extension_inside_a_value(adapter: MemoryAdapter) -> None:
    storage: Storage[Any] = Storage(adapter, codec="msgpack")
    data = msgspec.msgpack.encode({"ok": 1, "obj": msgspec.msgpack.Ext(42, b"\x00")})
    await adapter.set("v", data)
    with pytest.raises(DecodeError, match="extension type 42 is refused"):
        await storage.get("v")


def test_no_pickle_in_the_core() -> None:
    core = ROOT / "packages" / "core" / "src" / "botstate"
    for path in core.rglob("*.py"):
        text = path.read_text()
        assert "import pickle" not in text and "pickle.load" not in text, path


# -- codecs, URL option, extras ------------------------------------------------


async def test_codec_by_url_option_and_mapping_key() -> None:
    by_url = open_storage("memory://?max_entries=10&codec=msgpack", type=dict[int, bytes])
    assert by_url.codec.name == "msgpack"
    assert isinstance(by_url.adapter, MemoryAdapter)
    assert by_url.adapter.max_entries == 10  # the other option still reached the adapter
    await by_url.set("k", {1: b"\x00"})
    assert await by_url.adapter.get("k") == msgspec.msgpack.encode({1: b"\x00"})
    assert await by_url.get("k") == {1: b"\x00"}

    by_map = open_storage({"url": "memory://?codec=msgpack"})
    assert isinstance(by_map.codec, MsgpackCodec)
    by_key = open_storage({"adapter": "memory", "codec": "msgpack"})
    assert by_key.codec.name == "msgpack"
    explicit = open_storage("memory://?codec=msgpack", codec="json")
    assert explicit.codec.name == "json"  # a keyword beats the URL
    assert botstate.adapter.open_adapter("memory://?codec=msgpack") is not None


def test_unknown_codec_lists_msgpack_and_type_needs_a_typed_codec(adapter: MemoryAdapter) -> None:
    with pytest.raises(ConfigError, match=r"unknown codec 'msgpak'.*msgpack"):
        Storage(adapter, codec="msgpak")
    with pytest.raises(ConfigError, match="cannot decode into a type"):
        Storage(adapter, codec="bytes", type=Item)
    with pytest.raises(ConfigError, match="cannot be decoded"):
        Storage(adapter, type=5)


def test_typed_storage_repr_views_and_codec_classes(adapter: MemoryAdapter) -> None:
    storage = Storage(adapter, namespace="a", type=Cart)
    assert repr(storage).endswith("codec='json', type=Cart)")
    assert isinstance(storage.codec, MsgspecJsonCodec)
    view = storage.with_namespace("b")
    assert view.type is Cart and view.codec is storage.codec
    assert Storage(adapter, type=list[Item]).type == list[Item]
    assert Storage(adapter, codec=MsgpackCodec(Item)).type is Item
    assert Storage(adapter).type is None
    assert Storage(adapter, codec=MsgspecJsonCodec()).type is None
    assert type(Storage(adapter, type=Account).codec).__name__ == "PydanticJsonCodec"


async def test_typed_json_reads_what_the_stdlib_codec_wrote(adapter: MemoryAdapter) -> None:
    plain: Storage[Any] = Storage(adapter)
    await plain.set("cart", _cart())
    assert await Storage(adapter, type=Cart).get("cart") == _cart()
    fast: Storage[Any] = Storage(adapter, codec=MsgspecJsonCodec())
    assert await fast.get("cart") == await plain.get("cart")
    value = {"name": "Ann", "n": [1, 2.5, None, True], "ü": "ß"}
    assert MsgspecJsonCodec().encode(value) == JsonCodec().encode(value)


def test_json_codec_default_still_converts_other_types() -> None:
    class Money:
        cents = 150

    codec: JsonCodec[Any] = JsonCodec(default=lambda v: v.cents)
    when = datetime(2024, 1, 2, tzinfo=timezone.utc)
    assert json.loads(codec.encode({"m": Money(), "at": when})) == {
        "m": 150,
        "at": "2024-01-02T00:00:00+00:00",
    }
    with pytest.raises(EncodeError, match="Money"):
        JsonCodec().encode(Money())


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )


def test_import_botstate_imports_neither_msgspec_nor_pydantic() -> None:
    result = _run(
        """
        import asyncio, sys
        import botstate
        storage = botstate.open_storage("memory://")
        asyncio.run(storage.set("k", {"a": 1}))
        assert asyncio.run(storage.get("k")) == {"a": 1}
        print(sorted(m for m in ("msgspec", "pydantic") if m in sys.modules))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_missing_extras_say_which_to_install() -> None:
    result = _run(
        """
        import sys
        sys.modules["msgspec"] = None  # as if botstate[msgspec] were not installed
        from dataclasses import dataclass
        import botstate
        from botstate.errors import ConfigError
        import pydantic

        @dataclass
        class Cart:
            items: list

        class Model(pydantic.BaseModel):
            n: int

        for attempt in (
            lambda: botstate.open_storage("memory://", codec="msgpack"),
            lambda: botstate.open_storage("memory://?codec=msgpack"),
            lambda: botstate.open_storage("memory://", type=Cart),
            lambda: botstate.Sessions(botstate.open_storage("memory://"), type=Cart),
        ):
            try:
                attempt()
            except ConfigError as err:
                print(err)
            else:
                print("no error")
        # A JSON storage typed as one pydantic model needs pydantic only.
        print(botstate.open_storage("memory://", type=Model).codec)
        """
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 5, result.stdout
    for line in lines[:4]:
        assert 'pip install "botstate[msgspec]"' in line, line
    assert "codec 'msgpack'" in lines[0]
    assert "type=Cart" in lines[2]
    assert lines[4] == "PydanticJsonCodec(Model)"


# -- typed sessions ----------------------------------------------------------------


@dataclass
class CartV2:
    products: list[str]
    total: Decimal


async def test_v1_dict_migrated_into_v2_dataclass(adapter: MemoryAdapter, codec: str) -> None:
    storage: Storage[Any] = Storage(adapter, codec=codec)
    v1 = Sessions(storage, initial=lambda: {"items": []}, isolation="none")
    async with v1.open("chat:1") as session:
        session.data["items"] = ["tea", "milk"]

    def up(data: dict[str, Any]) -> dict[str, Any]:
        return {"products": data["items"], "total": "0"}

    v2 = Sessions(
        storage,
        type=CartV2,
        initial=lambda: CartV2([], Decimal(0)),
        version=2,
        migrations={2: up},
        isolation="none",
    )
    async with v2.open("chat:1") as session:
        assert session.data == CartV2(["tea", "milk"], Decimal(0))
        session.data.total = Decimal("3.50")
    async with v2.open("chat:1") as session:
        assert session.data == CartV2(["tea", "milk"], Decimal("3.50"))
    assert (await storage.get("chat:1"))["_v"] == 2
    with pytest.raises(MigrationError):  # v1 code refuses the v2 data
        async with Sessions(storage, isolation="none").open("chat:1"):
            pass


class _CountingAdapter(MemoryAdapter):
    writes = 0

    async def set(self, key: str, value: bytes, *, expires_at: float | None = None) -> None:
        self.writes += 1
        await super().set(key, value, expires_at=expires_at)

    async def set_if(  # sessions on ATOMIC adapters save compare-and-set
        self, key: str, value: bytes, *, version: Version | None, expires_at: float | None = None
    ) -> Version | None:
        self.writes += 1
        return await super().set_if(key, value, version=version, expires_at=expires_at)


async def test_unchanged_typed_session_writes_nothing(codec: str) -> None:
    adapter = _CountingAdapter(sweep_interval=0)
    sessions = Sessions(Storage(adapter, codec=codec), type=Cart, initial=_cart)
    async with sessions.open("chat:1") as session:
        session.data.note = "hello"
    assert adapter.writes == 1
    async with sessions.open("chat:1") as session:
        assert session.data.note == "hello"
    async with sessions.open("chat:2") as session:  # untouched initial(): not written
        assert session.data == _cart()
    assert adapter.writes == 1


@dataclass
class Tags:
    tags: set[int]


def _set_iterating_2_then_9() -> set[int]:
    # Left in a large hash table, {2, 9} iterates 2, 9; rebuilt from [2, 9] into a
    # small one, 9 lands in slot 1 and iterates first: decode does not re-encode alike.
    wide = set(range(300))
    for number in range(300):
        if number not in (2, 9):
            wide.discard(number)  # discard never shrinks the table
    return wide


async def test_typed_set_read_back_in_another_order_is_not_a_change(codec: str) -> None:
    assert list(_set_iterating_2_then_9()) == [2, 9] and list({2, 9}) == [9, 2]  # the premise
    adapter = _CountingAdapter(sweep_interval=0)
    sessions = Sessions(Storage(adapter, codec=codec), type=Tags)
    async with sessions.open("chat:1") as session:
        session.data = Tags(_set_iterating_2_then_9())
    assert adapter.writes == 1
    async with sessions.open("chat:1") as session:  # untouched: nothing to write
        assert session.data == Tags({2, 9})
    assert adapter.writes == 1
    async with sessions.open("chat:1") as session:  # a real change is still saved
        session.data.tags.discard(9)
    assert adapter.writes == 2
    async with sessions.open("chat:1") as session:
        assert session.data == Tags({2})


async def test_typed_session_that_does_not_fit_names_key_and_field(
    adapter: MemoryAdapter,
) -> None:
    storage: Storage[Any] = Storage(adapter)
    await storage.set("chat:1", {"_v": 1, "_d": {"products": ["a"], "total": "lots"}})
    sessions = Sessions(storage, type=CartV2)
    with pytest.raises(DecodeError) as info:
        async with sessions.open("chat:1"):
            pass
    assert info.value.key == "chat:1"
    assert "$.total" in str(info.value) and "CartV2" in str(info.value)


async def test_typed_pydantic_session(adapter: MemoryAdapter, codec: str) -> None:
    sessions = Sessions(Storage(adapter, codec=codec), type=Account, initial=_account)
    async with sessions.open("u:1") as session:
        session.data.roles.add("owner")
    async with sessions.open("u:1") as session:
        assert isinstance(session.data, Account)
        assert session.data.roles == {"admin", "owner"}


def test_sessions_refuse_a_typed_storage(adapter: MemoryAdapter) -> None:
    with pytest.raises(ConfigError, match="without type="):
        Sessions(Storage(adapter, type=Cart))
