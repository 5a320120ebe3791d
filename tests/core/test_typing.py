"""What type checkers see: ``mypy`` checks this file in ``hatch run lint``.

``assert_type`` fails the lint when the inferred type differs; at run time
the same lines run as ordinary tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from typing_extensions import assert_type

from botstate import open_storage
from botstate.sessions import Sessions
from botstate.storage import Storage
from botstate_storage_memory import MemoryAdapter


@dataclass
class Cart:
    items: list[str]


async def test_typed_storage_is_seen_as_storage_of_the_type() -> None:
    storage = open_storage("memory://", type=Cart)
    assert_type(storage, Storage[Cart])
    await storage.set("c", Cart(["apple"]))
    got = await storage.get("c")
    assert_type(got, Cart | None)
    assert got == Cart(["apple"])
    assert_type(await storage.get_many(["c"]), dict[str, Cart])

    listed = open_storage("memory://", type=list[Cart])
    assert_type(listed, Storage[list[Cart]])

    direct = Storage(MemoryAdapter(), type=Cart)
    assert_type(direct, Storage[Cart])
    assert_type(await direct.get("c"), Cart | None)


async def test_untyped_and_special_forms_are_storage_of_any() -> None:
    assert_type(open_storage("memory://"), Storage[Any])
    assert_type(open_storage("memory://", type=Optional[Cart]), Storage[Any])  # noqa: UP045


async def test_typed_sessions_data_is_the_type() -> None:
    storage = open_storage("memory://")
    sessions = Sessions(storage, type=Cart, initial=lambda: Cart([]))
    assert_type(sessions, Sessions[Cart])
    async with sessions.open("chat:1") as session:
        assert_type(session.data, Cart)
        session.data.items.append("pear")
    async with sessions.open("chat:1") as session:
        assert session.data == Cart(["pear"])
