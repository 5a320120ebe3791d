"""Where botstate-ptb keeps each piece of PTB data: one storage key per user, chat and conversation.

With the default prefix ``ptb``::

    ptb:user_data:<user id>                 one user's user_data (a dict)
    ptb:chat_data:<chat id>                 one chat's chat_data (a dict)
    ptb:bot_data                            bot_data (a dict)
    ptb:callback_data                       the arbitrary-callback-data cache
    ptb:conversation:<name>:<key as JSON>   one conversation's state, e.g.
                                            ptb:conversation:order:[42,7] for chat 42, user 7

A conversation name is percent-encoded (``quote(name, safe="")``), so a name
holding ``:`` cannot be mistaken for another name's prefix. Keys are per item,
never one blob: processes touching different chats never write the same key,
and ``botstate copy`` moves the data like any other keys.
"""

from __future__ import annotations

import json
from urllib.parse import quote

__all__ = ["Layout"]


class Layout:
    """The storage keys of one bot's PTB data under ``prefix``."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.bot_data = f"{prefix}:bot_data"
        self.callback_data = f"{prefix}:callback_data"

    def kind_prefix(self, kind: str) -> str:
        """``ptb:chat_data:`` for ``"chat_data"`` (also ``user_data``)."""
        return f"{self.prefix}:{kind}:"

    def data(self, kind: str, ident: int) -> str:
        """The key of one user's or chat's data (``kind`` is ``user_data`` or ``chat_data``)."""
        return f"{self.prefix}:{kind}:{ident}"

    def conversation_prefix(self, name: str) -> str:
        return f"{self.prefix}:conversation:{quote(name, safe='')}:"

    def conversation(self, name: str, key: tuple[int | str, ...]) -> str:
        """The key of one conversation's state."""
        return self.conversation_prefix(name) + json.dumps(list(key), separators=(",", ":"))

    @staticmethod
    def conversation_key(suffix: str) -> tuple[int | str, ...] | None:
        """The conversation key encoded in a key's ``suffix`` (after the name), or ``None``."""
        try:
            parts = json.loads(suffix)
        except ValueError:
            return None
        if not isinstance(parts, list) or not all(type(part) in (int, str) for part in parts):
            return None
        return tuple(parts)
