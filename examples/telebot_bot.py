"""A pyTelegramBotAPI (TeleBot) bot keeping its states and a counter in botstate.

    python examples/telebot_bot.py                 # scripted, offline, on SQLite
    BOT_TOKEN=123:abc python examples/telebot_bot.py --live   # a real bot

The dialog uses pyTelegramBotAPI's own StatesGroup, StateFilter and
StateMiddleware; only ``state_storage=`` changes. The counter is a botstate
session on the same storage, given to a plain sync handler by
``SyncSessions.handler``. Run it twice: the counter and an unfinished dialog
survive the restart (the SQLite file is ``telebot_bot.db``).
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from telebot import TeleBot, apihelper, custom_filters, types
from telebot.states import State, StatesGroup
from telebot.states.sync.context import StateContext
from telebot.states.sync.middleware import StateMiddleware

from botstate import chat_key
from botstate.sync import SyncSessions
from botstate_telebot import BotstateStateStorage


class Form(StatesGroup):
    name = State()
    age = State()


def build_bot(token: str, states: BotstateStateStorage) -> TeleBot:
    bot = TeleBot(token, state_storage=states, use_class_middlewares=True)
    bot.add_custom_filter(custom_filters.StateFilter(bot))
    bot.add_custom_filter(custom_filters.IsDigitFilter())
    bot.setup_middleware(StateMiddleware(bot))
    counters = SyncSessions(states.storage, initial=lambda: {"messages": 0})

    @bot.message_handler(commands=["count"])
    @counters.handler(lambda message: chat_key(message.chat.id))
    def count(message: types.Message, session: Any) -> None:
        session.data["messages"] += 1
        bot.reply_to(message, f"/count was sent {session.data['messages']} times here")

    @bot.message_handler(commands=["start"])
    def start(message: types.Message, state: StateContext) -> None:
        state.set(Form.name)
        bot.send_message(message.chat.id, "Hi! What is your name?")

    @bot.message_handler(state=Form.name)
    def name(message: types.Message, state: StateContext) -> None:
        state.add_data(name=message.text)
        state.set(Form.age)
        bot.send_message(message.chat.id, "How old are you?")

    @bot.message_handler(state=Form.age, is_digit=True)
    def age(message: types.Message, state: StateContext) -> None:
        with state.data() as data:
            name = data["name"]
        state.delete()
        bot.send_message(message.chat.id, f"Nice to meet you, {name} ({message.text}).")

    @bot.message_handler(state=Form.age)
    def not_a_number(message: types.Message) -> None:
        bot.send_message(message.chat.id, "Please send your age in digits.")

    return bot


class _Printed:
    """What the offline run's request sender returns: the Bot API's reply to sendMessage."""

    status_code = 200

    def __init__(self, params: dict[str, Any]) -> None:
        chat = {"id": int(params["chat_id"]), "type": "private"}
        result = {"message_id": 1, "date": int(time.time()), "chat": chat, "text": ""}
        self.text = json.dumps({"ok": True, "result": result})

    def json(self) -> dict[str, Any]:
        return dict(json.loads(self.text))


def _print_request(method: str, url: str, params: dict[str, Any] | None = None, **_: Any) -> Any:
    if url.endswith("/sendMessage") and params:
        print(f"  bot -> {params['chat_id']}: {params['text']}")
    return _Printed(params or {"chat_id": 0})


def _update(n: int, text: str) -> types.Update:
    message = {
        "message_id": n,
        "date": int(time.time()),
        "chat": {"id": 42, "type": "private"},
        "from": {"id": 42, "is_bot": False, "first_name": "Ann"},
        "text": text,
    }
    return types.Update.de_json(json.dumps({"update_id": n, "message": message}))


def offline(url: str) -> None:
    apihelper.CUSTOM_REQUEST_SENDER = _print_request  # no network: print what is sent
    states = BotstateStateStorage(url, namespace="example", ttl=24 * 3600)
    bot = build_bot("123456:" + "A" * 35, states)
    bot.threaded = False
    for n, text in enumerate(["/count", "/start", "Ann", "forty", "/count"], start=1):
        print(f"user 42 -> bot: {text}")
        bot.process_new_updates([_update(n, text)])
    print("(run it again: the counter goes on from where it was)")
    states.close()


if __name__ == "__main__":
    database = "sqlite:///telebot_bot.db"
    if "--live" in sys.argv:
        states = BotstateStateStorage(database, namespace="example", ttl=24 * 3600)
        build_bot(os.environ["BOT_TOKEN"], states).infinity_polling()
    else:
        offline(database)
