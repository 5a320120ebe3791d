"""botstate for aiogram: FSM storage, event isolation and sessions on any botstate storage.

>>> from botstate_aiogram import BotstateStorage
>>> storage = BotstateStorage("sqlite:///bot.db")      # was: MemoryStorage() / RedisStorage...
>>> dp = Dispatcher(storage=storage, events_isolation=storage.create_isolation())

- :class:`BotstateStorage` — aiogram's ``BaseStorage`` (FSM states and data,
  scenes) on memory, SQLite, Redis, DynamoDB or any botstate adapter.
- :class:`BotstateEventIsolation` — one handler per FSM key at a time, across
  processes on ATOMIC adapters (``storage.create_isolation()``).
- :class:`SessionMiddleware` — a lazy botstate session as a handler argument.
- :func:`import_redis_storage` — move an aiogram ``RedisStorage`` keyspace in
  (``python -m botstate_aiogram import-redis``).
"""

from .__about__ import __version__
from .isolation import BotstateEventIsolation
from .keys import BotstateKeyBuilder
from .middleware import SessionMiddleware
from .migrate import ImportReport, import_redis_storage
from .storage import BotstateStorage, DataNotDict

__all__ = [
    "BotstateEventIsolation",
    "BotstateKeyBuilder",
    "BotstateStorage",
    "DataNotDict",
    "ImportReport",
    "SessionMiddleware",
    "__version__",
    "import_redis_storage",
]
