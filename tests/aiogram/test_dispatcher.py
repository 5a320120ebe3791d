"""BotstateStorage under a real Dispatcher: FSM filters and scenes, on memory, SQLite and Redis."""

from __future__ import annotations

from typing import Any

from aiogram import Bot, Dispatcher, F, Router
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.fsm.scene import Scene, SceneRegistry, ScenesManager, on
from aiogram.fsm.state import State, StatesGroup
from aiogram.fsm.storage.base import StorageKey
from aiogram.types import Message

from botstate.storage import Storage
from botstate_aiogram import BotstateStorage
from tests.aiogram.recorder import RecordingSession, message_update

USER = 501


class Order(StatesGroup):
    item = State()
    qty = State()


class AskName(Scene, state="ask_name"):
    @on.message.enter()
    async def on_enter(self, message: Message) -> None:
        await message.answer("name?")

    @on.message(F.text == "back")
    async def go_back(self, message: Message) -> None:
        await self.wizard.back()

    @on.message(F.text)
    async def got(self, message: Message, state: FSMContext) -> None:
        await state.update_data(name=message.text)
        await self.wizard.goto(AskCity)


class AskCity(Scene, state="ask_city"):
    @on.message.enter()
    async def on_enter(self, message: Message) -> None:
        await message.answer("city?")

    @on.message(F.text == "back")
    async def go_back(self, message: Message) -> None:
        await self.wizard.back()

    @on.message(F.text)
    async def got(self, message: Message, state: FSMContext) -> None:
        data = await state.update_data(city=message.text)
        await message.answer(f"{data['name']} from {data['city']}")
        await self.wizard.exit()


def make_dispatcher(fsm: BotstateStorage) -> Dispatcher:
    dp = Dispatcher(storage=fsm, events_isolation=fsm.create_isolation())
    router = Router()

    @router.message(Command("order"))
    async def order(message: Message, state: FSMContext) -> None:
        await state.set_state(Order.item)
        await message.answer("what?")

    @router.message(Order.item)
    async def item(message: Message, state: FSMContext) -> None:
        await state.update_data(item=message.text)
        await state.set_state(Order.qty)
        await message.answer("how many?")

    @router.message(Order.qty)
    async def qty(message: Message, state: FSMContext) -> None:
        data = await state.update_data(qty=int(message.text or 0))
        await state.clear()
        await message.answer(f"{data['qty']} x {data['item']}")

    @router.message(Command("profile"))
    async def profile(message: Message, scenes: ScenesManager) -> None:
        await scenes.enter(AskName)

    dp.include_router(router)
    registry = SceneRegistry(dp)
    registry.add(AskName, AskCity)
    return dp


async def feed(dp: Dispatcher, bot: Bot, *texts: str) -> None:
    for text in texts:
        await dp.feed_update(bot, message_update(USER, USER, text))


async def test_fsm_dialog_and_scenes(botstate_storage: Storage[Any]) -> None:
    fsm = BotstateStorage(botstate_storage)
    recorder = RecordingSession()
    bot = Bot("42:TEST", session=recorder)
    dp = make_dispatcher(fsm)
    key = StorageKey(bot_id=42, chat_id=USER, user_id=USER)

    await feed(dp, bot, "/order", "tea")
    assert await fsm.get_state(key) == "Order:qty"
    await feed(dp, bot, "2")
    assert await fsm.get_state(key) is None
    assert await fsm.get_data(key) == {}  # clear() removes both entries

    await feed(dp, bot, "/profile", "Ann")
    assert await fsm.get_state(key) == "ask_city"
    # the scenes' history lives under its own destiny, beside the user's key
    history = StorageKey(bot_id=42, chat_id=USER, user_id=USER, destiny="scenes_history")
    assert (await fsm.get_data(history))["history"] == [
        {"state": "ask_name", "data": {"name": "Ann"}}
    ]
    assert await botstate_storage.has(f"fsm:{USER}:{USER}:scenes_history:data")
    await feed(dp, bot, "back", "Bob", "Paris")
    assert recorder.texts(USER) == [
        "what?", "how many?", "2 x tea",
        "name?", "city?", "name?", "city?", "Bob from Paris",
    ]  # fmt: skip
    assert await fsm.get_state(key) is None
    assert await fsm.get_data(history) == {}  # exit() cleared the history


async def test_restart_keeps_the_dialog(storage_url: str, namespace: str, backend: str) -> None:
    """A new Dispatcher and BotstateStorage (a restarted bot) continue where the old one was."""
    bot = Bot("42:TEST", session=RecordingSession())
    first = BotstateStorage.from_url(storage_url, namespace=namespace)
    dp = make_dispatcher(first)
    await feed(dp, bot, "/order", "coffee")
    if backend == "memory":
        await first.close()
        return  # a memory store ends with its process: nothing to restart into
    await first.close()

    second = BotstateStorage.from_url(storage_url, namespace=namespace)
    recorder = RecordingSession()
    await feed(make_dispatcher(second), Bot("42:TEST", session=recorder), "3")
    assert recorder.texts(USER) == ["3 x coffee"]
    await second.close()
