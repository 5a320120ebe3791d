"""Scripted pyTelegramBotAPI bots on botstate, fed updates locally (no network).

Each bot has a StatesGroup dialog (name, then age) driven by pyTelegramBotAPI's
own StateFilter and StateMiddleware, and a counter kept in a botstate session
(``SyncSessions.handler`` on TeleBot). Updates go through
``bot.process_new_updates``; the Bot API is a recorder on 127.0.0.1. A
"restart" is a new bot with a new storage object on the same backend.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from telebot import TeleBot, custom_filters, types
from telebot.async_telebot import AsyncTeleBot
from telebot.asyncio_filters import IsDigitFilter as AsyncIsDigitFilter
from telebot.asyncio_filters import StateFilter as AsyncStateFilter
from telebot.states import State, StatesGroup
from telebot.states.asyncio.context import StateContext as AsyncStateContext
from telebot.states.asyncio.middleware import StateMiddleware as AsyncStateMiddleware
from telebot.states.sync.context import StateContext
from telebot.states.sync.middleware import StateMiddleware
from telebot_kit import TOKEN, BotApiRecorder, message_update

from botstate.scopes import chat_key
from botstate.sync import SyncSessions
from botstate_telebot import AsyncBotstateStateStorage, BotstateStateStorage


class Form(StatesGroup):
    name = State()
    age = State()


def make_bot(states: BotstateStateStorage, *, threaded: bool = False) -> TeleBot:
    bot = TeleBot(
        TOKEN, threaded=threaded, num_threads=4, state_storage=states, use_class_middlewares=True
    )
    bot.add_custom_filter(custom_filters.StateFilter(bot))
    bot.add_custom_filter(custom_filters.IsDigitFilter())
    bot.setup_middleware(StateMiddleware(bot))
    sessions = SyncSessions(states.storage, initial=lambda: {"n": 0})

    @bot.message_handler(commands=["count"])
    @sessions.handler(lambda message: chat_key(message.chat.id))
    def count(message: types.Message, session: Any) -> None:
        session.data["n"] += 1
        bot.send_message(message.chat.id, f"count {session.data['n']}")

    @bot.message_handler(commands=["start"])
    def start(message: types.Message, state: StateContext) -> None:
        state.set(Form.name)
        bot.send_message(message.chat.id, "name?")

    @bot.message_handler(state=Form.name)
    def name(message: types.Message, state: StateContext) -> None:
        state.add_data(name=message.text)
        state.set(Form.age)
        bot.send_message(message.chat.id, "age?")

    @bot.message_handler(state=Form.age, is_digit=True)
    def age(message: types.Message, state: StateContext) -> None:
        with state.data() as data:
            name = data["name"]
        state.delete()
        bot.send_message(message.chat.id, f"{name}, {message.text}")

    @bot.message_handler(state=Form.age)
    def not_a_number(message: types.Message) -> None:
        bot.send_message(message.chat.id, "digits please")

    return bot


def feed(bot: TeleBot, *updates: dict[str, Any]) -> None:
    bot.process_new_updates([types.Update.de_json(update) for update in updates])


@pytest.fixture
def open_states(namespace: str) -> Iterator[Any]:
    opened: list[BotstateStateStorage] = []

    def open_(url: str) -> BotstateStateStorage:
        states = BotstateStateStorage(url, namespace=namespace)
        opened.append(states)
        return states

    yield open_
    for states in opened:
        states.close()


def test_dialog_and_counter_survive_a_restart(
    persistent_url: str, bot_api: BotApiRecorder, open_states: Any
) -> None:
    first = open_states(persistent_url)
    bot = make_bot(first)
    feed(bot, message_update(1, "/start"), message_update(1, "Ann"))
    feed(bot, *(message_update(1, "/count") for _ in range(3)))
    assert bot_api.texts(1) == ["name?", "age?", "count 1", "count 2", "count 3"]
    first.close()

    restarted = make_bot(open_states(persistent_url))
    feed(restarted, message_update(1, "thirty"), message_update(1, "30"))
    feed(restarted, message_update(1, "/count"), message_update(1, "more"))
    assert bot_api.texts(1)[5:] == ["digits please", "Ann, 30", "count 4"]
    # The dialog ended: no state is left, and "more" matched no handler.
    assert restarted.get_state(1, 1) is None
    keys = sorted(restarted.current_states.storage.keys())
    assert keys == ["chat:1"]  # the counter's session; the state was deleted


def test_users_in_a_group_and_topics_have_their_own_state(
    persistent_url: str, bot_api: BotApiRecorder, open_states: Any
) -> None:
    states = open_states(persistent_url)
    bot = make_bot(states)
    group = -100
    feed(
        bot,
        message_update(group, "/start", user_id=1, chat_type="supergroup"),
        message_update(group, "/start", user_id=2, chat_type="supergroup", thread_id=9),
        message_update(group, "Ann", user_id=1, chat_type="supergroup"),
        message_update(group, "Bob", user_id=2, chat_type="supergroup", thread_id=9),
        message_update(group, "41", user_id=2, chat_type="supergroup", thread_id=9),
    )
    assert bot_api.texts(group) == ["name?", "name?", "age?", "age?", "Bob, 41"]
    assert bot.get_state(1, group) == "Form:age"
    assert bot.get_state(2, group) is None
    assert sorted(states.storage.keys()) == [f"telebot:bot:123456:chat:{group}:user:1"]


def test_concurrent_updates_on_worker_threads(
    persistent_url: str, bot_api: BotApiRecorder, open_states: Any
) -> None:
    """A threaded TeleBot: 200 counter updates for one chat and 40 users' dialogs at once."""
    bot = make_bot(open_states(persistent_url), threaded=True)
    try:
        users = range(1, 41)
        feed(bot, *(message_update(7000, "/count") for _ in range(200)))
        feed(bot, *(message_update(u, "/start") for u in users))
        bot_api.wait_for(240)
        feed(bot, *(message_update(u, f"user {u}") for u in users))
        bot_api.wait_for(280)
        feed(bot, *(message_update(u, str(20 + u)) for u in users))
        bot_api.wait_for(320)
    finally:
        bot.worker_pool.close()
    counts = sorted(int(text.split()[1]) for text in bot_api.texts(7000))
    assert counts == list(range(1, 201))  # every increment seen exactly once
    for u in users:
        assert bot_api.texts(u) == ["name?", "age?", f"user {u}, {20 + u}"]


# -- AsyncTeleBot ----------------------------------------------------------------
def make_async_bot(states: AsyncBotstateStateStorage) -> AsyncTeleBot:
    bot = AsyncTeleBot(TOKEN, state_storage=states)
    bot.add_custom_filter(AsyncStateFilter(bot))
    bot.add_custom_filter(AsyncIsDigitFilter())
    bot.setup_middleware(AsyncStateMiddleware(bot))

    @bot.message_handler(commands=["start"])
    async def start(message: types.Message, state: AsyncStateContext) -> None:
        await state.set(Form.name)
        await bot.send_message(message.chat.id, "name?")

    @bot.message_handler(state=Form.name)
    async def name(message: types.Message, state: AsyncStateContext) -> None:
        await state.add_data(name=message.text)
        await state.set(Form.age)
        await bot.send_message(message.chat.id, "age?")

    @bot.message_handler(state=Form.age, is_digit=True)
    async def age(message: types.Message, state: AsyncStateContext) -> None:
        async with state.data() as data:
            name = data["name"]
        await state.delete()
        await bot.send_message(message.chat.id, f"{name}, {message.text}")

    return bot


async def afeed(bot: AsyncTeleBot, *updates: dict[str, Any]) -> None:
    await bot.process_new_updates([types.Update.de_json(update) for update in updates])


async def test_async_dialog_survives_a_restart(
    persistent_url: str, namespace: str, bot_api: BotApiRecorder
) -> None:
    first = AsyncBotstateStateStorage(persistent_url, namespace=namespace)
    bot = make_async_bot(first)
    await afeed(bot, message_update(1, "/start"))
    await afeed(bot, message_update(1, "Ann"))
    await bot.close_session()
    await first.close()

    second = AsyncBotstateStateStorage(persistent_url, namespace=namespace)
    restarted = make_async_bot(second)
    try:
        await afeed(restarted, message_update(1, "30"))
        assert bot_api.texts(1) == ["name?", "age?", "Ann, 30"]
        assert await restarted.get_state(1, 1) is None
    finally:
        await restarted.close_session()
        await second.close()
