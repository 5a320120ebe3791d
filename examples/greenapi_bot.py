"""A green-api WhatsApp bot (whatsapp-chatbot-python) keeping its dialog states in botstate.

    python examples/greenapi_bot.py        # scripted, offline
    ID_INSTANCE=... API_TOKEN=... python examples/greenapi_bot.py --live

Part 1 is green-api's README states example on SQLite, with a restart in the
middle of the dialog: the new bot process picks up where the old one was.
Part 2 is the "session timed out" message: states in the memory adapter
expire after a few seconds of inactivity and the user is told so.

Offline, the bot's HTTP calls are replaced: sent messages are printed, and
incoming notifications go to ``bot.router.route_event`` as the polling loop
would hand them over.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from whatsapp_chatbot_python import BaseStates, GreenAPIBot, Notification

from botstate_greenapi import BotstateStateManager, timeout_message

ANN = "79001234567@c.us"


class States(BaseStates):
    USERNAME = "username"
    PASSWORD = "password"


class OfflineBot(GreenAPIBot):
    """No GREEN-API account needed: skip the settings check, print what is sent."""

    def _update_settings(self) -> None:
        pass


def build_bot(live: bool = False) -> GreenAPIBot:
    """The bot and its handlers; the caller attaches a state manager."""
    if live:
        bot = GreenAPIBot(os.environ["ID_INSTANCE"], os.environ["API_TOKEN"])
    else:
        bot = OfflineBot("1101000001", "offline", delete_notifications_at_startup=False)

        def send(chat_id: str, message: str, *args: Any) -> None:
            print(f"  bot -> {chat_id}: {message}")

        bot.api.sending.sendMessage = send

    @bot.router.message(state=None)
    def start(notification: Notification) -> None:
        notification.state_manager.set_state(notification.sender, States.USERNAME)
        notification.answer("Hello. Tell me your username.")

    @bot.router.message(state=States.USERNAME.value)
    def username(notification: Notification) -> None:
        notification.state_manager.update_state(notification.sender, States.PASSWORD)
        notification.state_manager.set_state_data(
            notification.sender, {"username": notification.message_text}
        )
        notification.answer("Tell me your password.")

    @bot.router.message(state=States.PASSWORD.value)
    def password(notification: Notification) -> None:
        data = notification.state_manager.get_state_data(notification.sender)
        notification.answer(f"Account {data['username']} created.")
        notification.state_manager.delete_state(notification.sender)

    return bot


def incoming(text: str) -> dict[str, Any]:
    return {
        "typeWebhook": "incomingMessageReceived",
        "senderData": {"chatId": ANN, "sender": ANN, "senderName": "Ann"},
        "messageData": {"typeMessage": "textMessage", "textMessageData": {"textMessage": text}},
    }


def say(bot: GreenAPIBot, text: str) -> None:
    print(f"{ANN} -> bot: {text}")
    bot.router.route_event(incoming(text))


def offline() -> None:
    print("== part 1: a dialog that survives a restart (SQLite)")
    bot = build_bot()
    first = BotstateStateManager("sqlite:///greenapi_bot.db", namespace="example").attach(bot)
    first.delete_state(ANN)
    say(bot, "hi")
    say(bot, "annie")
    first.close()
    print("  (the bot restarts)")
    bot = build_bot()
    second = BotstateStateManager("sqlite:///greenapi_bot.db", namespace="example").attach(bot)
    say(bot, "s3cret-pass")
    second.close()

    print("== part 2: the session times out (memory adapter, 2 s of inactivity)")
    bot = build_bot()
    manager = BotstateStateManager(
        "memory://?sweep_interval=0.2",
        ttl=2,
        on_timeout=timeout_message(bot.api, "Your session timed out. Say hi to start again."),
    ).attach(bot)
    say(bot, "hi")
    time.sleep(3)
    manager.close()


if __name__ == "__main__":
    if "--live" in sys.argv:
        live_bot = build_bot(live=True)
        BotstateStateManager("sqlite:///greenapi_bot.db", ttl=3600).attach(live_bot)
        live_bot.run_forever()
    else:
        offline()
