"""botstate for synchronous bots: the same API, blocking.

>>> from botstate.sync import SyncSessions, open_storage
>>> storage = open_storage("sqlite:///bot.db", namespace="mybot")
>>> sessions = SyncSessions(storage, initial=lambda: {"counter": 0}, ttl=600)
>>> with sessions.open("chat:1") as session:
...     session.data["counter"] += 1

For pyTelegramBotAPI's ``TeleBot``, green-api's bots, Flask or Django views,
and any code without an event loop. Every call runs the async implementation
on botstate's private event loop (one daemon thread per process) and waits,
so keys, codecs, TTLs, sessions and errors behave exactly as in the async
API; ``SyncMultiSessions`` opens several scopes (chat + user) together, as
``botstate.MultiSessions``. Plain calls on the memory adapter run in the
calling thread instead (see :mod:`botstate.sync.loop`). Safe from many
threads at once. Called from a thread that runs an event loop, it raises
:class:`~botstate.errors.UsageError`: use the async API there.
A process that never closes its storages still exits promptly.
"""

from .sessions import SyncMultiSessions, SyncSession, SyncSessions, SyncSessionScope
from .storage import SyncLock, SyncStorage, open_storage

__all__ = [
    "SyncLock",
    "SyncMultiSessions",
    "SyncSession",
    "SyncSessionScope",
    "SyncSessions",
    "SyncStorage",
    "open_storage",
]
