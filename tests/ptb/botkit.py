"""An offline python-telegram-bot: a request class that answers the Bot API locally.

``Recorder`` subclasses PTB's ``BaseRequest`` (the documented way to replace
the HTTP layer): it records every call and answers ``getMe``, ``sendMessage``
and the like the way Telegram would, without any network. ``message()`` and
``callback_query()`` build incoming updates.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from typing import Any

from telegram import Update
from telegram.ext import Application, ApplicationBuilder, BasePersistence
from telegram.request import BaseRequest, RequestData

TOKEN = "123456:offline-token"
BOT_USER = {"id": 123456, "is_bot": True, "first_name": "Offline", "username": "offline_bot"}
_ids: Iterator[int] = itertools.count(1)


class Recorder(BaseRequest):
    """Answers Bot API calls locally; ``calls`` holds ``(method, parameters)`` in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    @property
    def read_timeout(self) -> float | None:
        return 1.0

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = None,
        write_timeout: Any = None,
        connect_timeout: Any = None,
        pool_timeout: Any = None,
    ) -> tuple[int, bytes]:
        endpoint = url.rsplit("/", 1)[-1]
        params = request_data.parameters if request_data else {}
        self.calls.append((endpoint, params))
        result: Any = True
        if endpoint == "getMe":
            result = BOT_USER
        elif endpoint in ("sendMessage", "editMessageText"):
            result = {
                "message_id": next(_ids),
                "date": int(time.time()),
                "chat": {"id": params.get("chat_id", 0), "type": "private"},
                "from": BOT_USER,
                "text": params.get("text", ""),
            }
            if "reply_markup" in params:
                markup = params["reply_markup"]
                result["reply_markup"] = json.loads(markup) if isinstance(markup, str) else markup
        elif endpoint == "getUpdates":
            result = []
        return 200, json.dumps({"ok": True, "result": result}).encode()

    def texts(self) -> list[str]:
        """The texts of the messages the bot sent, in order."""
        return [str(p.get("text")) for method, p in self.calls if method == "sendMessage"]


def build(
    persistence: BasePersistence[Any, Any, Any],
    *,
    application_class: type[Application[Any, Any, Any, Any, Any, Any]] | None = None,
    callback_data: bool = True,
    job_queue: bool = True,
) -> tuple[Application[Any, Any, Any, Any, Any, Any], Recorder]:
    """An Application with ``persistence`` whose Bot API calls go to a :class:`Recorder`."""
    recorder = Recorder()
    builder = (
        ApplicationBuilder()
        .token(TOKEN)
        .request(recorder)
        .get_updates_request(Recorder())
        .persistence(persistence)
        .arbitrary_callback_data(callback_data)
    )
    if not job_queue:
        builder = builder.job_queue(None)
    if application_class is not None:
        builder = builder.application_class(application_class)
    return builder.build(), recorder


def message(
    text: str, *, chat_id: int = 1, user_id: int = 1, bot: Any = None, chat_type: str = "private"
) -> Update:
    """An incoming text message (a command if ``text`` starts with ``/``)."""
    data: dict[str, Any] = {
        "update_id": next(_ids),
        "message": {
            "message_id": next(_ids),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": chat_type},
            "from": {"id": user_id, "is_bot": False, "first_name": f"user{user_id}"},
            "text": text,
        },
    }
    if text.startswith("/"):
        command = text.split()[0]
        data["message"]["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
    return Update.de_json(data, bot)


async def send(app: Application[Any, Any, Any, Any, Any, Any], text: str, **where: Any) -> None:
    """Feed ``app`` one incoming message (see :func:`message`) and let it handle it."""
    await app.process_update(message(text, bot=app.bot, **where))
