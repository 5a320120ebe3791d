"""Session keys for the usual scopes of a chat bot.

Which to use:

- :func:`user_in_chat_key` — one user's state inside one chat (a dialog step,
  a form being filled in). Safe default: concurrent handlers rarely share it.
- :func:`chat_key` — state shared by everyone in a chat (a group game, chat
  settings). Many users write it at once in busy groups: use isolation
  ``process`` (one process) or ``distributed`` (several) so no update is lost.
- :func:`user_key` — a user's state across every chat (language, profile).
  One user can act in several chats at once, so isolate as for chats.
- :func:`topic_key` — a forum topic / thread inside a chat.

Pass ``bot_id`` when several bots share one storage and namespace, so that
the same chat id seen by two bots gets two sessions.
"""

from __future__ import annotations

from .errors import InvalidKey

__all__ = ["chat_key", "topic_key", "user_in_chat_key", "user_key"]


def _part(name: str, value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InvalidKey(f"{name} must be an int or str, not {type(value).__name__}", value)
    text = str(value)
    if not text or ":" in text:
        raise InvalidKey(f"{name} must be non-empty and contain no ':', got {text!r}", value)
    return text


def _scoped(parts: list[tuple[str, str, object]], bot_id: object) -> str:
    head = f"bot:{_part('bot_id', bot_id)}:" if bot_id is not None else ""
    return head + ":".join(f"{label}:{_part(name, value)}" for label, name, value in parts)


def chat_key(chat_id: int | str, *, bot_id: int | str | None = None) -> str:
    """``chat:<chat_id>`` — shared by everyone in the chat.

    >>> chat_key(-100123)
    'chat:-100123'
    """
    return _scoped([("chat", "chat_id", chat_id)], bot_id)


def user_key(user_id: int | str, *, bot_id: int | str | None = None) -> str:
    """``user:<user_id>`` — one user across all chats.

    >>> user_key(42, bot_id=7)
    'bot:7:user:42'
    """
    return _scoped([("user", "user_id", user_id)], bot_id)


def user_in_chat_key(
    chat_id: int | str, user_id: int | str, *, bot_id: int | str | None = None
) -> str:
    """``chat:<chat_id>:user:<user_id>`` — one user in one chat.

    >>> user_in_chat_key(-100123, 42)
    'chat:-100123:user:42'
    """
    return _scoped([("chat", "chat_id", chat_id), ("user", "user_id", user_id)], bot_id)


def topic_key(chat_id: int | str, topic_id: int | str, *, bot_id: int | str | None = None) -> str:
    """``chat:<chat_id>:topic:<topic_id>`` — one forum topic or thread.

    >>> topic_key(-100123, 7)
    'chat:-100123:topic:7'
    """
    return _scoped([("chat", "chat_id", chat_id), ("topic", "topic_id", topic_id)], bot_id)
