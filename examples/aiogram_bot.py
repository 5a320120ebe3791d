"""An aiogram bot whose FSM lives in botstate: a sign-up dialog, a counter and a session.

    pip install botstate-aiogram botstate-storage-sqlite
    BOT_TOKEN=123:ABC python examples/aiogram_bot.py            # sqlite:///bot.db
    BOT_TOKEN=123:ABC BOTSTATE_STORAGE=redis://localhost:6379/0 python examples/aiogram_bot.py

Several copies of the bot may run against one SQLite file or Redis server:
the event isolation lets one handler per user run at a time across all of
them, and every state and counter survives restarts.

- ``/signup`` asks a name and an age (``StatesGroup``, states and data in the
  FSM storage); ``/cancel`` leaves the dialog.
- ``/count`` counts per user in the FSM data (``state.update_data``).
- ``/seen`` counts messages per chat in a botstate session given to the
  handler by ``SessionMiddleware`` (loaded only by the handlers that use it).

``tests/aiogram/test_example.py`` runs this bot on updates fed locally.
"""

from __future__ import annotations

import asyncio
import os

from aiogram import Bot, Dispatcher, F
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import Message

from botstate import Session, Sessions
from botstate_aiogram import BotstateStorage, SessionMiddleware


class SignUp(StatesGroup):
    name = State()
    age = State()


def build_dispatcher(storage: BotstateStorage) -> Dispatcher:
    """The bot's handlers on ``storage`` (FSM) and a ``-sessions`` namespace beside it."""
    dp = Dispatcher(storage=storage, events_isolation=storage.create_isolation())
    seen: Sessions[dict[str, int]] = Sessions(
        storage.storage.with_namespace(f"{storage.storage.namespace or 'bot'}-sessions"),
        initial=lambda: {"messages": 0},
        isolation="distributed",  # several bot processes may share the storage
    )
    dp.update.middleware(SessionMiddleware(seen, name="chat_session", key="chat"))

    @dp.message(Command("signup"))
    async def signup(message: Message, state: FSMContext) -> None:
        await state.set_state(SignUp.name)
        await message.answer("What is your name?")

    @dp.message(Command("cancel"))
    async def cancel(message: Message, state: FSMContext) -> None:
        await state.clear()
        await message.answer("Cancelled.")

    @dp.message(SignUp.name, F.text)
    async def got_name(message: Message, state: FSMContext) -> None:
        await state.update_data(name=message.text)
        await state.set_state(SignUp.age)
        await message.answer("How old are you?")

    @dp.message(SignUp.age, F.text.regexp(r"^\d{1,3}$"))
    async def got_age(message: Message, state: FSMContext) -> None:
        data = await state.update_data(age=int(message.text or 0))
        await state.set_state(None)
        await message.answer(f"Welcome, {data['name']} ({data['age']})!")

    @dp.message(SignUp.age)
    async def bad_age(message: Message) -> None:
        await message.answer("Please send your age as a number.")

    @dp.message(Command("count"))
    async def count(message: Message, state: FSMContext) -> None:
        data = await state.get_data()
        total = data.get("count", 0) + 1  # safe: one handler per user at a time
        await state.update_data(count=total)
        await message.answer(f"You counted {total} times.")

    @dp.message(Command("seen"))
    async def seen_in_chat(message: Message, chat_session: Session[dict[str, int]]) -> None:
        data = await chat_session.load()
        data["messages"] += 1
        await message.answer(f"/seen was sent {data['messages']} times in this chat.")

    return dp


async def main() -> None:
    storage = BotstateStorage.from_url(
        os.environ.get("BOTSTATE_STORAGE", "sqlite:///bot.db"), namespace="example-bot"
    )
    dp = build_dispatcher(storage)
    bot = Bot(os.environ["BOT_TOKEN"])
    await dp.start_polling(bot)  # closes the storage on shutdown


if __name__ == "__main__":
    asyncio.run(main())
