"""green-api's whatsapp-chatbot-python state manager on botstate.

>>> from whatsapp_chatbot_python import GreenAPIBot
>>> from botstate_greenapi import BotstateStateManager
>>> bot = GreenAPIBot(ID_INSTANCE, API_TOKEN)
>>> BotstateStateManager("sqlite:///bot.db", ttl=3600).attach(bot)

``router.message(state=...)`` dialogs then survive restarts and can be shared
by several bot processes (SQLite, Redis, DynamoDB). Built on :mod:`botstate.sync`.
"""

from .__about__ import __version__
from .manager import BotstateStateManager, timeout_message

__all__ = ["BotstateStateManager", "__version__", "timeout_message"]
