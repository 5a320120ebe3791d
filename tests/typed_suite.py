"""Typed values round-trip through a real backend: one case per kind of value.

A backend's test module subclasses :class:`TypedRoundTrips` and overrides its
``adapter`` fixture, the way adapters use ``botstate.testing.AdapterSuite``.
Every value goes through the adapter as bytes, is read back into the type the
program names, and must equal what was written, with the same Python type.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any, NamedTuple, Optional, TypedDict

import msgspec
import pydantic
import pytest
import pytest_asyncio

from botstate.adapter import StorageAdapter
from botstate.sessions import Sessions
from botstate.storage import Storage

TZ = timezone(timedelta(hours=2))
WHEN = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=TZ)


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@dataclass
class Item:
    sku: str
    price: Decimal
    added: datetime


class Profile(TypedDict):
    name: str
    langs: list[str]


class Point(msgspec.Struct):
    x: int
    y: int


class Account(pydantic.BaseModel):
    user_id: int
    joined: datetime
    balance: Decimal
    roles: set[str]
    scores: dict[int, str]


@dataclass
class Cart:
    """Every kind at once, nested."""

    items: list[Item]
    by_sku: dict[str, Item]
    profile: Profile
    color: Color
    level: Level
    where: Point
    account: Account
    day: date
    opens: time
    token: uuid.UUID
    blob: bytes
    tags: set[str]
    frozen: frozenset[int]
    pair: tuple[int, str]
    counts: dict[int, int]
    note: Optional[str] = None  # noqa: UP045 — the Optional spelling is what is tested
    extra: list[Point] = field(default_factory=list)


def _item(n: int) -> Item:
    return Item(f"sku-{n}", Decimal(f"{n}.10"), WHEN + timedelta(days=n))


def _account() -> Account:
    return Account(
        user_id=42, joined=WHEN, balance=Decimal("9.99"), roles={"admin"}, scores={7: "a"}
    )


def _cart() -> Cart:
    return Cart(
        items=[_item(1), _item(2)],
        by_sku={"sku-3": _item(3)},
        profile=Profile(name="Ann", langs=["en", "de"]),
        color=Color.GREEN,
        level=Level.HIGH,
        where=Point(3, -4),
        account=_account(),
        day=date(2024, 2, 29),
        opens=time(9, 30, tzinfo=TZ),
        token=uuid.UUID("12345678-1234-5678-1234-567812345678"),
        blob=b"\x00\xff\x80 binary",
        tags={"new", "gift"},
        frozen=frozenset({3, 1, 2}),
        pair=(7, "seven"),
        counts={1: 10, -2: 20},
        extra=[Point(0, 0)],
    )


class Case(NamedTuple):
    id: str
    type: Any
    value: Any


CASES = [
    Case("dataclass", Item, _item(1)),
    Case("typeddict", Profile, Profile(name="Ann", langs=["en"])),
    Case("enum", Color, Color.RED),
    Case("intenum", Level, Level.LOW),
    Case("pydantic", Account, _account()),
    Case("struct", Point, Point(1, 2)),
    Case("datetime-naive", datetime, datetime(2024, 5, 6, 7, 8, 9, 123456)),
    Case("datetime-aware", datetime, WHEN),
    Case("date", date, date(2024, 5, 6)),
    Case("time-with-tz", time, time(7, 8, 9, 500, tzinfo=TZ)),
    Case("uuid", uuid.UUID, uuid.UUID("12345678-1234-5678-1234-567812345678")),
    Case("decimal", Decimal, Decimal("12.30")),
    Case("bytes", bytes, b"\x00\xff\x80 not utf-8"),
    Case("set", set[int], {3, 1, 2}),
    Case("frozenset", frozenset[str], frozenset({"a", "b"})),
    Case("tuple", tuple[int, str, float], (1, "a", 2.5)),
    Case("int-keys", dict[int, str], {7: "a", -1: "b"}),
    Case("list-of", list[Item], [_item(1), _item(2)]),
    Case("dict-of", dict[str, Account], {"ann": _account()}),
    Case("optional-some", Optional[Item], _item(5)),  # noqa: UP045
    Case("optional-none", Optional[Item], None),  # noqa: UP045
    Case("nested", Cart, _cart()),
]
CODECS = ["json", "msgpack"]


def _offsets(value: Any) -> list[timedelta | None]:
    """The UTC offsets of the datetimes and times in ``value``, in order (for JSON checks)."""
    if isinstance(value, (datetime, time)):
        return [value.utcoffset()]
    if isinstance(value, Cart):
        return [i.added.utcoffset() for i in value.items] + [value.opens.utcoffset()]
    if isinstance(value, list):
        return [off for v in value for off in _offsets(v)]
    if isinstance(value, Item):
        return [value.added.utcoffset()]
    return []


class TypedRoundTrips:
    """Override ``adapter`` (a fresh, empty adapter per test)."""

    @pytest_asyncio.fixture
    async def adapter(self) -> AsyncIterator[StorageAdapter]:
        raise NotImplementedError("override the adapter fixture")
        yield  # pragma: no cover

    @pytest.mark.parametrize("codec", CODECS)
    @pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
    async def test_typed_round_trip(self, adapter: StorageAdapter, codec: str, case: Case) -> None:
        storage: Storage[Any] = Storage(adapter, namespace="typed", codec=codec, type=case.type)
        await storage.set("value", case.value)
        assert isinstance(await adapter.get("typed:value"), bytes)
        got = await storage.get("value")
        assert got == case.value
        assert type(got) is type(case.value)
        if codec == "json" or case.type is time:
            assert _offsets(got) == _offsets(case.value)  # the UTC offset is kept
        elif case.id == "datetime-aware":
            # MessagePack's timestamp is an instant: an aware datetime comes back in UTC.
            assert got.utcoffset() == timedelta(0)
        assert await storage.get_many(["value"]) == {"value": case.value}

    @pytest.mark.parametrize("codec", CODECS)
    async def test_untyped_storage_encodes_the_same_kinds(
        self, adapter: StorageAdapter, codec: str
    ) -> None:
        storage: Storage[Any] = Storage(adapter, namespace="plain", codec=codec)
        await storage.set("cart", _cart())  # no EncodeError for any kind
        got = await storage.get("cart")
        assert isinstance(got, dict)
        assert got["color"] == "green" and got["level"] == 2
        assert got["where"] == {"x": 3, "y": -4}
        assert got["pair"] == [7, "seven"]
        assert sorted(got["tags"]) == ["gift", "new"]
        if codec == "json":  # JSON types only: what other programs can read
            assert got["counts"] == {"1": 10, "-2": 20}
            assert got["items"][0]["added"] == "2024-05-07T07:08:09.123456+02:00"
            assert got["blob"] == "AP+AIGJpbmFyeQ=="
        else:  # MessagePack keeps int keys, bytes and the instant of aware datetimes
            assert got["counts"] == {1: 10, -2: 20}
            assert got["items"][0]["added"] == WHEN + timedelta(days=1)
            assert got["blob"] == b"\x00\xff\x80 binary"
        # The same bytes, read with the type, give the objects back.
        typed: Storage[Cart] = Storage(adapter, namespace="plain", codec=codec, type=Cart)
        assert await typed.get("cart") == _cart()

    @pytest.mark.parametrize("codec", CODECS)
    async def test_typed_sessions_round_trip(self, adapter: StorageAdapter, codec: str) -> None:
        storage: Storage[Any] = Storage(adapter, namespace="sessions", codec=codec)
        sessions = Sessions(storage, type=Cart, initial=_cart, isolation="none")
        async with sessions.open("chat:1") as session:
            assert session.data == _cart()
            session.data.items.append(_item(9))
            session.data.counts[3] = 30
        async with sessions.open("chat:1") as session:
            assert isinstance(session.data, Cart)
            assert session.data.items[-1] == _item(9)
            assert session.data.counts == {1: 10, -2: 20, 3: 30}
            assert session.data.account == _account()
