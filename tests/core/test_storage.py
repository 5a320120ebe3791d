"""Storage[T] over the memory adapter: keys, codecs, TTL, namespaces, update."""

from __future__ import annotations

import asyncio
import math
from datetime import timedelta

import pytest

import botstate
from botstate import FOREVER, DecodeError, EncodeError, InvalidKey, Storage, UnsupportedOperation
from botstate.adapter import ManualClock
from botstate.codecs import BytesCodec, TextCodec
from botstate_storage_memory import MemoryAdapter

BAD_KEYS = [
    ("", "empty"),
    ("a\x00b", "NUL"),
    ("a\ud800b", "surrogate"),
    ("é" * 513, "1024"),
    (42, "str"),
    (None, "str"),
    (b"bytes", "str"),
]


@pytest.mark.parametrize(("key", "words"), BAD_KEYS)
async def test_bad_keys_are_refused_and_nothing_written(
    storage: Storage[object], adapter: MemoryAdapter, key: object, words: str
) -> None:
    for call in (
        lambda: storage.set(key, 1),  # type: ignore[arg-type]
        lambda: storage.get(key),  # type: ignore[arg-type]
        lambda: storage.has(key),  # type: ignore[arg-type]
        lambda: storage.delete(key),  # type: ignore[arg-type]
        lambda: storage.update(key, lambda v: 1),  # type: ignore[arg-type]
        lambda: storage.set_many({key: 1}),  # type: ignore[dict-item]
        lambda: storage.get_many([key]),  # type: ignore[list-item]
    ):
        with pytest.raises(InvalidKey) as info:
            await call()
        assert words in str(info.value)
        assert info.value.key == key
        assert isinstance(info.value, ValueError)
    assert len(adapter) == 0


async def test_key_of_exactly_1024_bytes_is_fine(storage: Storage[object]) -> None:
    key = "é" * 512
    await storage.set(key, "ok")
    assert await storage.get(key) == "ok"


async def test_unencodable_value_names_key_and_writes_nothing(
    storage: Storage[object], adapter: MemoryAdapter
) -> None:
    with pytest.raises(EncodeError) as info:
        await storage.set("user:1", {"when": object()})
    assert info.value.key == "user:1"
    assert "user:1" in str(info.value)
    with pytest.raises(EncodeError):
        await storage.set("nan", math.nan)
    with pytest.raises(EncodeError):
        await storage.set_many({"ok": 1, "bad": object()})
    assert len(adapter) == 0


async def test_undecodable_bytes_raise_decode_error(
    storage: Storage[object], adapter: MemoryAdapter
) -> None:
    await adapter.set("bot:broken", b"\xff{not json")
    with pytest.raises(DecodeError) as info:
        await storage.get("broken")
    assert info.value.key == "broken"
    with pytest.raises(DecodeError):
        await storage.get_many(["broken"])


@pytest.mark.parametrize(
    "stored",
    [
        b'{"a":[1,"\xc3\xa9"]}',
        b'  {"a": [1, "\\u00e9"]}\n',  # whitespace around, escapes
        b'\xef\xbb\xbf{"a":[1,"\xc3\xa9"]}',  # UTF-8 with a BOM
        '{"a":[1,"\u00e9"]}'.encode("utf-16"),
    ],
)
async def test_json_reads_what_other_writers_stored(stored: bytes) -> None:
    """The JSON codec reads any JSON text json.loads reads, not only its own compact UTF-8."""
    storage: Storage[object] = Storage(MemoryAdapter())
    await storage.entry("k").set(stored)
    assert await storage.get("k") == {"a": [1, "\u00e9"]}
    await storage.entry("k").set(b'{"a":1} trailing')
    with pytest.raises(DecodeError, match="'k'"):
        await storage.get("k")


async def test_roundtrip_and_default(storage: Storage[object]) -> None:
    value = {"name": "Ann", "cart": [1, 2, 3], "lang": "ру", "ok": True, "none": None}
    await storage.set("user:1", value)
    assert await storage.get("user:1") == value
    assert await storage.get("user:2") is None
    assert await storage.get("user:2", {"fresh": True}) == {"fresh": True}
    assert await storage.has("user:1") and not await storage.has("user:2")


async def test_stored_state_cannot_be_mutated_through_returned_values(
    storage: Storage[object],
) -> None:
    value = {"items": [1]}
    await storage.set("k", value)
    value["items"].append(2)
    got = await storage.get("k")
    assert got == {"items": [1]}
    assert isinstance(got, dict)
    got["items"].append(3)
    assert await storage.get("k") == {"items": [1]}


async def test_default_ttl_override_and_forever(adapter: MemoryAdapter, clock: ManualClock) -> None:
    storage: Storage[int] = Storage(adapter, ttl=60, clock=clock)
    await storage.set("default", 1)
    await storage.set("short", 2, ttl=5)
    await storage.set("delta", 3, ttl=timedelta(minutes=2))
    await storage.set("forever", 4, ttl=FOREVER)
    assert await storage.ttl("default") == 60
    assert await storage.ttl("short") == 5
    assert await storage.ttl("delta") == 120
    assert await storage.ttl("forever") == FOREVER  # never expires: distinct from absent
    assert await storage.ttl("absent") is None
    clock.advance(5)
    assert await storage.get("short") is None
    assert await storage.ttl("default") == 55
    clock.advance(55)
    assert await storage.get_many(["default", "short", "delta", "forever"]) == {
        "delta": 3,
        "forever": 4,
    }


@pytest.mark.parametrize("bad", [0, -1, math.nan])
async def test_bad_ttl_is_refused(storage: Storage[object], bad: float) -> None:
    with pytest.raises(ValueError, match="ttl"):
        await storage.set("k", 1, ttl=bad)
    with pytest.raises(TypeError, match="ttl"):
        await storage.set("k", 1, ttl="60")  # type: ignore[arg-type]
    assert not await storage.has("k")


async def test_namespaces_isolate_keys_and_clear(adapter: MemoryAdapter) -> None:
    a: Storage[int] = Storage(adapter, namespace="a")
    b: Storage[int] = Storage(adapter, namespace="ab")
    await a.set_many({"x": 1, "y": 2})
    await b.set_many({"x": 10, "z": 30})
    assert sorted([k async for k in a.keys()]) == ["x", "y"]
    assert sorted([k async for k in b.keys()]) == ["x", "z"]
    assert [k async for k in b.keys(prefix="z")] == ["z"]
    assert await a.clear() == 2
    assert await b.get_many(["x", "z"]) == {"x": 10, "z": 30}
    assert await a.get("x") is None


def test_namespace_may_not_contain_separator(adapter: MemoryAdapter) -> None:
    with pytest.raises(botstate.ConfigError, match="must not contain"):
        Storage(adapter, namespace="a:b")
    with pytest.raises(botstate.ConfigError):
        Storage(adapter, namespace="")


async def test_batches(storage: Storage[object]) -> None:
    await storage.set_many({"a": 1, "b": [2], "c": {"3": 3}}, ttl=30)
    assert await storage.get_many(["a", "b", "c", "missing"]) == {"a": 1, "b": [2], "c": {"3": 3}}
    assert await storage.delete_many(["a", "a", "missing"]) == 1
    assert await storage.get_many([]) == {}
    assert await storage.delete_many([]) == 0


async def test_update_creates_increments_and_deletes(storage: Storage[object]) -> None:
    assert await storage.update("hits", lambda v: (v or 0) + 1) == 1  # type: ignore[operator]
    assert await storage.update("hits", lambda v: (v or 0) + 1) == 2  # type: ignore[operator]

    async def double(v: object) -> object:
        await asyncio.sleep(0)
        return v * 2  # type: ignore[operator]

    assert await storage.update("hits", double) == 4
    assert await storage.update("hits", lambda v: None) is None
    assert not await storage.has("hits")


async def test_update_is_atomic_under_concurrency(storage: Storage[object]) -> None:
    async def slow_increment(v: object) -> object:
        await asyncio.sleep(0)  # let other tasks interleave between read and write
        return (v or 0) + 1  # type: ignore[operator]

    await asyncio.gather(*(storage.update("n", slow_increment) for _ in range(200)))
    assert await storage.get("n") == 200


class PlainAdapter(botstate.adapter.BaseAdapter):
    """Only the required methods: exercises BaseAdapter fallbacks and non-ATOMIC update."""

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, bytes] = {}

    async def get(self, key: str) -> bytes | None:
        await asyncio.sleep(0)
        return self.data.get(key)

    async def set(self, key: str, value: bytes, *, expires_at: float | None = None) -> None:
        await asyncio.sleep(0)
        self.data[key] = value

    async def delete(self, key: str) -> bool:
        return self.data.pop(key, None) is not None


async def test_base_adapter_fallbacks_and_unsupported_operations() -> None:
    plain = PlainAdapter()
    storage: Storage[int] = Storage(plain)
    await storage.set_many({"a": 1, "b": 2})
    assert await storage.get_many(["a", "b", "c"]) == {"a": 1, "b": 2}
    assert await storage.has("a")
    assert await storage.delete_many(["a", "a", "c"]) == 1
    await asyncio.gather(*(storage.update("n", lambda v: (v or 0) + 1) for _ in range(50)))
    assert await storage.get("n") == 50
    with pytest.raises(UnsupportedOperation, match="SCAN"):
        [k async for k in storage.keys()]
    with pytest.raises(UnsupportedOperation):
        await storage.clear()
    with pytest.raises(UnsupportedOperation, match="EXPIRY_EVENTS"):
        storage.on_expire(lambda k, v: None)
    with pytest.raises(NotImplementedError):
        await plain.set_if("k", b"v", version=None)
    assert repr(plain) == "PlainAdapter()"


async def test_other_codecs(adapter: MemoryAdapter) -> None:
    raw: Storage[bytes] = Storage(adapter, codec=BytesCodec())
    await raw.set("b", b"\x00\xff")
    assert await raw.get("b") == b"\x00\xff"
    text: Storage[str] = Storage(adapter, codec="text", namespace="t")
    await text.set("s", "héllo")
    assert await text.get("s") == "héllo"
    with pytest.raises(EncodeError):
        await text.set("s", 5)  # type: ignore[arg-type]
    assert isinstance(text.codec, TextCodec)
    with pytest.raises(botstate.ConfigError, match="unknown codec"):
        Storage(adapter, codec="pickle")


async def test_on_expire_strips_namespace_and_decodes(
    adapter: MemoryAdapter, clock: ManualClock
) -> None:
    storage: Storage[dict[str, int]] = Storage(adapter, namespace="bot", clock=clock)
    other: Storage[int] = Storage(adapter, namespace="other", clock=clock)
    seen: list[tuple[str, object]] = []
    unsubscribe = storage.on_expire(lambda key, value: seen.append((key, value)))
    await storage.set("chat:1", {"step": 3}, ttl=10)
    await other.set("chat:1", 5, ttl=10)
    clock.advance(11)
    assert adapter.sweep() == 2
    assert seen == [("chat:1", {"step": 3})]
    unsubscribe()
    await storage.set("chat:2", {"step": 1}, ttl=1)
    clock.advance(2)
    adapter.sweep()
    assert len(seen) == 1


async def test_repr_hides_nothing_secret_and_names_parts(storage: Storage[object]) -> None:
    text = repr(storage)
    assert "MemoryAdapter" in text and "namespace='bot'" in text and "json" in text


async def test_open_storage_memory_with_options() -> None:
    storage = botstate.open_storage(
        "memory://?max_entries=2&sweep_interval=0", namespace="n", ttl=30
    )
    try:
        assert storage.default_ttl == 30
        assert isinstance(storage.adapter, MemoryAdapter)
        assert storage.adapter.max_entries == 2
        await storage.set("a", 1)
        assert await storage.ttl("a") == pytest.approx(30, abs=1)
    finally:
        await storage.close()
