""":class:`BotstateKeyBuilder`: aiogram's key names, plus scenes' destinies."""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from aiogram.fsm.storage.base import DEFAULT_DESTINY, DefaultKeyBuilder, StorageKey

__all__ = ["BotstateKeyBuilder"]


class BotstateKeyBuilder(DefaultKeyBuilder):
    """aiogram's ``DefaultKeyBuilder``, accepting every destiny. The default of ``BotstateStorage``.

    Keys of the default destiny are named exactly as ``DefaultKeyBuilder``
    names them (``fsm:<chat>:<user>:state`` and the ``with_bot_id``,
    ``with_business_connection_id``, thread and separator variants), so data
    an aiogram ``RedisStorage`` wrote is found under the same names. Another
    destiny (scenes keep their history under ``"scenes_history"``) goes
    before the part (``fsm:<chat>:<user>:scenes_history:state``), where
    ``DefaultKeyBuilder`` without ``with_destiny=True`` raises ``ValueError``:
    scenes work without configuring anything. ``with_destiny=True`` names
    every key as ``DefaultKeyBuilder(with_destiny=True)`` does.

    >>> BotstateKeyBuilder().build(StorageKey(bot_id=1, chat_id=2, user_id=3), "data")
    'fsm:2:3:data'
    """

    def build(
        self,
        key: StorageKey,
        part: Literal["data", "state", "lock"] | None = None,
    ) -> str:
        destiny = key.destiny
        if destiny != DEFAULT_DESTINY and not self.with_destiny:
            head = super().build(replace(key, destiny=DEFAULT_DESTINY))
            return self.separator.join([head, destiny, part] if part else [head, destiny])
        if (
            self.with_bot_id
            or self.with_business_connection_id
            or self.with_destiny
            or key.thread_id
        ):
            return super().build(key, part)
        # The default settings, on every FSM call: DefaultKeyBuilder's name without its
        # list and join (tests compare both on every setting).
        sep = self.separator
        if part:
            return f"{self.prefix}{sep}{key.chat_id}{sep}{key.user_id}{sep}{part}"
        return f"{self.prefix}{sep}{key.chat_id}{sep}{key.user_id}"
