"""pyTelegramBotAPI state storage on botstate.

>>> from telebot import TeleBot
>>> from botstate_telebot import BotstateStateStorage
>>> bot = TeleBot(TOKEN, state_storage=BotstateStateStorage("sqlite:///bot.db"))

``BotstateStateStorage`` is for ``TeleBot`` (built on :mod:`botstate.sync`),
``AsyncBotstateStateStorage`` for ``AsyncTeleBot``. Both store one key per
user state (see :mod:`botstate_telebot.records`) in any botstate backend.
"""

from .__about__ import __version__
from .asyncio_storage import AsyncBotstateStateStorage, AsyncStateData
from .records import state_key
from .storage import BotstateStateStorage, StateData

__all__ = [
    "AsyncBotstateStateStorage",
    "AsyncStateData",
    "BotstateStateStorage",
    "StateData",
    "__version__",
    "state_key",
]
