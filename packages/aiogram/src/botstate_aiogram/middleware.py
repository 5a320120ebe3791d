""":class:`SessionMiddleware`: a botstate session for every aiogram handler, loaded lazily."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal

from aiogram import BaseMiddleware, Bot
from aiogram.dispatcher.middlewares.user_context import EVENT_CONTEXT_KEY, EventContext
from aiogram.types import TelegramObject

from botstate.errors import ConfigError
from botstate.scopes import chat_key, topic_key, user_in_chat_key, user_key
from botstate.sessions import MultiSessions, Sessions

__all__ = ["RESERVED_NAMES", "Scope", "SessionMiddleware"]

Scope = Literal["chat", "user", "user_in_chat", "topic"]
KeyFunction = Callable[[TelegramObject, dict[str, Any]], "str | None"]

_SCOPES = ("chat", "user", "user_in_chat", "topic")

RESERVED_NAMES = frozenset(
    {
        "bot",
        "dispatcher",
        "event_business_connection_id",
        "event_chat",
        "event_context",
        "event_from_user",
        "event_router",
        "event_thread_id",
        "event_update",
        "fsm_storage",
        "handler",
        "raw_state",
        "scenes",
        "state",
    }
)
"""Names aiogram itself puts in a handler's data; a session must not hide them."""


class SessionMiddleware(BaseMiddleware):
    """Give each handler a lazy botstate session as the keyword argument ``name``.

    >>> sessions = Sessions(storage, initial=lambda: {"count": 0})
    >>> dp.update.middleware(SessionMiddleware(sessions, name="session"))
    >>> @dp.message()
    ... async def count(message: Message, session: Session) -> None:
    ...     data = await session.load()          # the first read happens here
    ...     data["count"] += 1                   # saved when the handler returns

    The session is opened lazily: a handler that never calls ``load()`` (or
    never takes the argument) costs no storage I/O at all. Saving follows
    :class:`~botstate.sessions.Sessions`: only changed data is written, and
    nothing when the handler raises. The ``Sessions``' isolation applies
    (``"distributed"`` for several bot processes).

    Args:
        sessions: a ``Sessions`` without its own key function (the middleware
            gives it the key), or a ``MultiSessions`` whose parts have none.
        name: the handler argument; not one aiogram uses (``state``, ``bot``...).
        key: the scope, from the update's chat/user/thread as aiogram resolves
            them: ``"user_in_chat"`` (default), ``"chat"``, ``"user"`` or
            ``"topic"`` (the forum thread, else the chat); or a function
            ``key(event, data) -> str | None``. Updates without a key (no
            chat or user) get no session argument.
        with_bot_id: put the bot's id in the key, for several bots sharing one
            storage and namespace.
    """

    def __init__(
        self,
        sessions: Sessions[Any] | MultiSessions,
        *,
        name: str = "session",
        key: Scope | KeyFunction = "user_in_chat",
        with_bot_id: bool = False,
    ) -> None:
        if not isinstance(sessions, (Sessions, MultiSessions)):
            raise ConfigError(
                "sessions must be botstate Sessions or MultiSessions, "
                f"not {type(sessions).__name__}"
            )
        if not isinstance(name, str) or not name.isidentifier():
            raise ConfigError(f"name must be a Python identifier, got {name!r}")
        if name in RESERVED_NAMES:
            raise ConfigError(f"name {name!r} is used by aiogram itself; choose another")
        if not callable(key) and key not in _SCOPES:
            raise ConfigError(f"key must be one of {', '.join(_SCOPES)} or a function, not {key!r}")
        self.sessions = sessions
        self.name = name
        self.key = key
        self.with_bot_id = with_bot_id

    def key_for(self, event: TelegramObject, data: dict[str, Any]) -> str | None:
        """The session key of this update, or ``None`` if it has none."""
        if callable(self.key):
            return self.key(event, data)
        context = data.get(EVENT_CONTEXT_KEY)
        if not isinstance(context, EventContext):
            return None
        bot = data.get("bot")
        bot_id = bot.id if self.with_bot_id and isinstance(bot, Bot) else None
        chat_id, user_id = context.chat_id, context.user_id
        if self.key == "user":
            return None if user_id is None else user_key(user_id, bot_id=bot_id)
        if self.key == "user_in_chat":
            if user_id is None or chat_id is None:
                return None
            return user_in_chat_key(chat_id, user_id, bot_id=bot_id)
        chat_id = chat_id if chat_id is not None else user_id  # a private update without a chat
        if chat_id is None:
            return None
        if self.key == "topic" and context.thread_id:
            return topic_key(chat_id, context.thread_id, bot_id=bot_id)
        return chat_key(chat_id, bot_id=bot_id)

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        key = self.key_for(event, data)
        if key is None:
            return await handler(event, data)
        async with self.sessions.open(key, lazy=True) as session:
            data[self.name] = session
            return await handler(event, data)

    def __repr__(self) -> str:
        key = self.key if isinstance(self.key, str) else getattr(self.key, "__qualname__", "fn")
        return f"SessionMiddleware(name={self.name!r}, key={key!r})"
