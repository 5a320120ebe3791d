"""What is stored where: one botstate key per user state, and the record under it.

A pyTelegramBotAPI state belongs to a user in a chat, optionally within a
forum topic (``message_thread_id``), a business connection, and a bot
(``bot_id``). Each gets its own key, built from labelled parts so that no
two combinations can collide::

    telebot:bot:<bot_id>:biz:<business_connection_id>:chat:<chat_id>:topic:<thread>:user:<user_id>

Parts that are absent (``None``, ``0``, ``""``, as pyTelegramBotAPI's own
storages treat them) are left out with their label. ``:`` and ``%`` inside
string ids are percent-encoded. The value is a JSON object
``{"state": "<Group>:<name>" | null, "data": {...}}``.
"""

from __future__ import annotations

from typing import Any

from botstate.errors import InvalidArgument, UsageError

__all__ = ["DEFAULT_PREFIX", "Record", "state_key", "state_name"]

DEFAULT_PREFIX = "telebot"

Record = dict[str, Any]
"""``{"state": str | None, "data": dict}`` as stored."""


def _part(value: object, name: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InvalidArgument(f"{name} must be an int or str, not {type(value).__name__}")
    return str(value).replace("%", "%25").replace(":", "%3A")


def state_key(
    chat_id: int | str | None,
    user_id: int | str | None,
    *,
    bot_id: int | str | None = None,
    business_connection_id: str | None = None,
    message_thread_id: int | None = None,
    prefix: str = DEFAULT_PREFIX,
) -> str:
    """The botstate key of one state (namespace not included).

    >>> state_key(-100, 42, bot_id=7, message_thread_id=3)
    'telebot:bot:7:chat:-100:topic:3:user:42'
    """
    parts = [prefix]
    for label, value, name in (
        ("bot", bot_id, "bot_id"),
        ("biz", business_connection_id, "business_connection_id"),
        ("chat", chat_id, "chat_id"),
        ("topic", message_thread_id, "message_thread_id"),
        ("user", user_id, "user_id"),
    ):
        if value:
            parts += (label, _part(value, name))
    if len(parts) == 1:
        raise InvalidArgument("a state needs a chat_id or a user_id")
    return ":".join(parts)


def state_name(state: object) -> str:
    """The stored name of ``state``: a ``State``'s ``name``, or a string as given."""
    name = getattr(state, "name", state)
    if not isinstance(name, str):
        raise InvalidArgument(
            f"state must be a telebot State (in a StatesGroup) or a str, not {state!r}"
        )
    return name


def with_state(old: Record | None, name: str) -> Record:
    """Set the state, keeping the data (a new record starts with empty data)."""
    return {"state": name, "data": old["data"] if old else {}}


def with_item(old: Record | None, key: str, value: object, where: str) -> Record:
    """Add one data item; like pyTelegramBotAPI's storages, refuse if there is no state."""
    if old is None:
        raise UsageError(f"no state for {where}: set a state before adding data")
    return {"state": old["state"], "data": {**old["data"], key: value}}


def with_data(old: Record | None, data: dict[str, Any]) -> Record | None:
    """Replace the data if a record exists (``None``: nothing to change)."""
    if old is None:
        return None
    return {"state": old["state"], "data": data}


def data_of(record: Record | None) -> dict[str, Any]:
    """The data of a record; ``{}`` when there is none."""
    return dict(record["data"]) if record else {}


def state_of(record: Record | None) -> str | None:
    """The state of a record; ``None`` when there is none."""
    return record["state"] if record else None
