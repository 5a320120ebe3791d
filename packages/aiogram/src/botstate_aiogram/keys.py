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
        if self.with_destiny or key.destiny == DEFAULT_DESTINY:
            return super().build(key, part)
        head = super().build(replace(key, destiny=DEFAULT_DESTINY))
        return self.separator.join([head, key.destiny, part] if part else [head, key.destiny])
