"""An aiogram FSM bot on BotstateStorage, fed a script of updates without any network.

    python -m tests.aiogram.scripted_bot URL NAMESPACE SCRIPT_JSON

``SCRIPT_JSON`` is a list of steps; each step is a list of ``[chat_id, user_id,
text]`` messages fed concurrently (``dp.feed_update`` per message, gathered).
The bot:

- ``/start`` → asks the name (``Form.name``), the name → asks the age
  (``Form.age``), the age → "done <name> <age>" and the state is cleared;
- ``/count`` → FSM data counter read with ``get_data`` and written with
  ``update_data`` (read-modify-write: exact only because the event isolation
  lets one handler per key run at a time, across processes);
- ``/tick`` → a counter in a botstate session given by ``SessionMiddleware``
  (``Sessions(isolation="distributed")``).

Prints one JSON object: the texts sent per chat, in order.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from aiogram import Bot, Dispatcher, F
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import Message

from botstate.sessions import Session, Sessions
from botstate_aiogram import BotstateStorage, SessionMiddleware
from tests.aiogram.recorder import RecordingSession, message_update


class Form(StatesGroup):
    name = State()
    age = State()


def build(storage: BotstateStorage) -> Dispatcher:
    dp = Dispatcher(storage=storage, events_isolation=storage.create_isolation(timeout=120))
    sessions: Sessions[dict[str, int]] = Sessions(
        storage.storage.with_namespace(f"{storage.storage.namespace}-sessions"),
        initial=lambda: {"ticks": 0},
        isolation="distributed",
        lock_timeout=120,
    )
    dp.update.middleware(SessionMiddleware(sessions, name="session", key="chat"))

    @dp.message(Command("start"))
    async def start(message: Message, state: FSMContext) -> None:
        await state.set_state(Form.name)
        await message.answer("What is your name?")

    @dp.message(Form.name, F.text)
    async def got_name(message: Message, state: FSMContext) -> None:
        await state.update_data(name=message.text)
        await state.set_state(Form.age)
        await message.answer("How old are you?")

    @dp.message(Form.age, F.text)
    async def got_age(message: Message, state: FSMContext) -> None:
        data = await state.update_data(age=int(message.text or 0))
        await state.set_state(None)
        await message.answer(f"done {data['name']} {data['age']}")

    @dp.message(Command("count"))
    async def count(message: Message, state: FSMContext) -> None:
        data = await state.get_data()
        await asyncio.sleep(0.001)  # widen the read-modify-write window
        await state.update_data(count=data.get("count", 0) + 1)
        await message.answer(f"count {data.get('count', 0) + 1}")

    @dp.message(Command("tick"))
    async def tick(message: Message, session: Session[dict[str, int]]) -> None:
        data = await session.load()
        data["ticks"] += 1
        await message.answer(f"tick {data['ticks']}")

    return dp


async def main(url: str, namespace: str, script: list[list[list[Any]]]) -> dict[str, list[str]]:
    storage = BotstateStorage.from_url(url, namespace=namespace)
    dp = build(storage)
    recorder = RecordingSession()
    bot = Bot("42:TEST", session=recorder)
    await dp.emit_startup(bot=bot)
    try:
        for step in script:
            updates = [message_update(chat, user, text) for chat, user, text in step]
            await asyncio.gather(*(dp.feed_update(bot, update) for update in updates))
    finally:
        await dp.emit_shutdown(bot=bot)  # closes the FSM storage (opened from the URL)
    chats = {chat for step in script for chat, _, _ in step}
    return {str(chat): recorder.texts(chat) for chat in sorted(chats)}


if __name__ == "__main__":
    result = asyncio.run(main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3])))
    print(json.dumps(result))
