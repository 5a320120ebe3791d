"""SessionMiddleware: a lazy botstate session per handler, in a real Dispatcher fed locally."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiogram import Bot, Dispatcher
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.fsm.storage.base import StorageKey
from aiogram.types import Message, TelegramObject

from botstate.errors import ConfigError
from botstate.sessions import MultiSessions, Session, Sessions
from botstate.storage import Storage
from botstate_aiogram import BotstateStorage, SessionMiddleware
from botstate_storage_memory import MemoryAdapter
from tests.aiogram.recorder import RecordingSession, message_update


class CountingAdapter(MemoryAdapter):
    """The real memory adapter, counting the calls that reach it."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    async def get(self, key: str) -> bytes | None:
        self.calls.append("get")
        return await super().get(key)

    async def get_versioned(self, key: str) -> Any:
        self.calls.append("get_versioned")
        return await super().get_versioned(key)

    async def set(self, key: str, value: bytes, *, expires_at: float | None = None) -> None:
        self.calls.append("set")
        await super().set(key, value, expires_at=expires_at)

    async def delete(self, key: str) -> bool:
        self.calls.append("delete")
        return await super().delete(key)


@pytest.fixture
def bot() -> Bot:
    return Bot("42:TEST", session=RecordingSession())


def texts(bot: Bot, chat: int) -> list[str]:
    session = bot.session
    assert isinstance(session, RecordingSession)
    return session.texts(chat)


async def test_lazy_session_no_io_unless_loaded(bot: Bot) -> None:
    adapter = CountingAdapter()
    sessions: Sessions[dict[str, int]] = Sessions(Storage(adapter), initial=lambda: {"n": 0})
    dp = Dispatcher()
    dp.update.middleware(SessionMiddleware(sessions, name="visits"))

    @dp.message(Command("ping"))
    async def ping(message: Message) -> None:  # does not take the session
        await message.answer("pong")

    @dp.message(Command("peek"))
    async def peek(message: Message, visits: Session[dict[str, int]]) -> None:
        await message.answer(f"loaded={visits.loaded}")  # takes it, never loads it

    @dp.message(Command("visit"))
    async def visit(message: Message, visits: Session[dict[str, int]]) -> None:
        data = await visits.load()
        data["n"] += 1
        await message.answer(f"visit {data['n']}")

    @dp.message(Command("read"))
    async def read(message: Message, visits: Session[dict[str, int]]) -> None:
        await message.answer(f"n={(await visits.load())['n']}")

    for text in ("/ping", "/peek"):
        await dp.feed_update(bot, message_update(5, 6, text))
    assert adapter.calls == []  # no storage I/O at all
    await dp.feed_update(bot, message_update(5, 6, "/visit"))
    assert adapter.calls == ["get", "set"]
    adapter.calls.clear()
    await dp.feed_update(bot, message_update(5, 6, "/read"))
    assert adapter.calls == ["get"]  # unchanged: read, no write
    assert texts(bot, 5) == ["pong", "loaded=False", "visit 1", "n=1"]


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ("user_in_chat", ["chat:-100:user:6", "chat:-100:user:7", "chat:-100:user:6"]),
        ("chat", ["chat:-100", "chat:-100", "chat:-100"]),
        ("user", ["user:6", "user:7", "user:6"]),
        ("topic", ["chat:-100:topic:9", "chat:-100", "chat:-100:topic:9"]),
    ],
)
async def test_scopes(bot: Bot, scope: Any, expected: list[str]) -> None:
    storage: Storage[Any] = Storage(MemoryAdapter())
    sessions: Sessions[dict[str, int]] = Sessions(storage, initial=lambda: {"n": 0})
    dp = Dispatcher()
    dp.update.middleware(SessionMiddleware(sessions, key=scope))
    seen: list[str] = []

    @dp.message()
    async def any_message(message: Message, session: Session[dict[str, int]]) -> None:
        seen.append(session.key)
        (await session.load())["n"] += 1

    await dp.feed_update(bot, message_update(-100, 6, "a", thread_id=9))
    await dp.feed_update(bot, message_update(-100, 7, "b"))
    await dp.feed_update(bot, message_update(-100, 6, "c", thread_id=9))
    assert seen == expected
    assert sorted([k async for k in storage.keys()]) == sorted(set(expected))


async def test_with_bot_id_and_custom_key(bot: Bot) -> None:
    storage: Storage[Any] = Storage(MemoryAdapter())
    sessions: Sessions[Any] = Sessions(storage)
    seen: list[str] = []
    dp = Dispatcher()
    dp.update.middleware(SessionMiddleware(sessions, key="chat", with_bot_id=True))

    @dp.message()
    async def on_message(message: Message, session: Session[Any]) -> None:
        seen.append(session.key)

    await dp.feed_update(bot, message_update(3, 3, "x"))

    def by_text(event: TelegramObject, data: dict[str, Any]) -> str | None:
        message = getattr(event, "message", None)
        return None if message is None or message.text == "skip" else f"text:{message.text}"

    dp2 = Dispatcher()
    dp2.update.middleware(SessionMiddleware(sessions, key=by_text, name="s"))
    got: list[Any] = []

    @dp2.message()
    async def on_message2(message: Message, **data: Any) -> None:
        got.append(data.get("s"))

    await dp2.feed_update(bot, message_update(3, 3, "hello"))
    await dp2.feed_update(bot, message_update(3, 3, "skip"))
    assert seen == ["bot:42:chat:3"]
    assert got[0].key == "text:hello"
    assert got[1] is None  # no key: no session argument


async def test_handler_error_saves_nothing(bot: Bot) -> None:
    storage: Storage[Any] = Storage(MemoryAdapter())
    sessions: Sessions[dict[str, int]] = Sessions(storage, initial=lambda: {"n": 0})
    dp = Dispatcher()
    dp.update.middleware(SessionMiddleware(sessions))

    @dp.message()
    async def broken(message: Message, session: Session[dict[str, int]]) -> None:
        (await session.load())["n"] += 1
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await dp.feed_update(bot, message_update(1, 1, "x"))
    assert [k async for k in storage.keys()] == []


async def test_concurrent_updates_one_chat_with_fsm_beside(bot: Bot) -> None:
    """Sessions beside FSM on one botstate storage: 40 concurrent updates, exact count."""
    fsm = BotstateStorage("memory://")
    sessions: Sessions[dict[str, int]] = Sessions(
        fsm.storage.with_namespace("sessions"), initial=lambda: {"n": 0}
    )
    dp = Dispatcher(storage=fsm, events_isolation=fsm.create_isolation())
    dp.update.middleware(SessionMiddleware(sessions, key="chat"))

    @dp.message()
    async def count(message: Message, session: Session[dict[str, int]], state: FSMContext) -> None:
        data = await session.load()
        await asyncio.sleep(0)
        data["n"] += 1
        await state.update_data({f"m{message.message_id}": 1})

    await asyncio.gather(*(dp.feed_update(bot, message_update(9, 9, "x")) for _ in range(40)))
    async with sessions.open("chat:9") as session:
        assert session.data == {"n": 40}
    assert len(await fsm.get_data(StorageKey(bot_id=42, chat_id=9, user_id=9))) == 40
    await fsm.close()


def test_multi_sessions_accepted_and_bad_settings() -> None:
    storage: Storage[Any] = Storage(MemoryAdapter())
    multi = MultiSessions({"a": Sessions(storage), "b": Sessions(storage.with_namespace("b"))})
    assert SessionMiddleware(multi).sessions is multi
    sessions: Sessions[Any] = Sessions(storage)
    with pytest.raises(ConfigError, match="used by aiogram"):
        SessionMiddleware(sessions, name="state")
    with pytest.raises(ConfigError, match="identifier"):
        SessionMiddleware(sessions, name="not a name")
    with pytest.raises(ConfigError, match="key must be"):
        SessionMiddleware(sessions, key="planet")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="Sessions or MultiSessions"):
        SessionMiddleware(storage)  # type: ignore[arg-type]
