"""Telegram without the network: an aiogram session that records requests, and updates to feed.

>>> bot = Bot("42:TEST", session=RecordingSession())
>>> await dp.feed_update(bot, message_update(1, chat_id=5, user_id=5, text="/start"))
>>> bot.session.texts(5)
['What is your name?']
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncGenerator
from datetime import datetime, timezone
from typing import Any

from aiogram import Bot
from aiogram.client.session.base import BaseSession
from aiogram.methods import SendMessage, TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import Chat, Message, Update, User

__all__ = ["RecordingSession", "message_update"]


class RecordingSession(BaseSession):
    """Answers every Bot API call locally and keeps what was sent.

    ``sendMessage`` gets back the ``Message`` Telegram would return; any other
    method gets ``True``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[TelegramMethod[Any]] = []
        self._ids = itertools.count(1)

    async def make_request(
        self, bot: Bot, method: TelegramMethod[TelegramType], timeout: int | None = None
    ) -> TelegramType:
        self.requests.append(method)
        if isinstance(method, SendMessage):
            chat = Chat(id=int(method.chat_id), type="private")
            sent = Message(
                message_id=next(self._ids),
                date=datetime.now(timezone.utc),
                chat=chat,
                text=method.text,
            )
            return sent  # type: ignore[return-value]
        return True  # type: ignore[return-value]

    async def stream_content(
        self,
        url: str,
        headers: dict[str, Any] | None = None,
        timeout: int = 30,
        chunk_size: int = 65536,
        raise_for_status: bool = True,
    ) -> AsyncGenerator[bytes, None]:
        yield b""

    async def close(self) -> None:
        pass

    def texts(self, chat_id: int) -> list[str]:
        """The texts sent to ``chat_id``, in order."""
        return [
            str(m.text)
            for m in self.requests
            if isinstance(m, SendMessage) and int(m.chat_id) == chat_id
        ]


_update_ids = itertools.count(1)


def message_update(
    chat_id: int, user_id: int, text: str, *, thread_id: int | None = None
) -> Update:
    """An ``Update`` with a text message from ``user_id`` in ``chat_id``."""
    update_id = next(_update_ids)
    return Update(
        update_id=update_id,
        message=Message(
            message_id=update_id,
            date=datetime.now(timezone.utc),
            chat=Chat(id=chat_id, type="private" if chat_id > 0 else "supergroup"),
            from_user=User(id=user_id, is_bot=False, first_name="Tester"),
            text=text,
            message_thread_id=thread_id,
            is_topic_message=True if thread_id else None,
        ),
    )
