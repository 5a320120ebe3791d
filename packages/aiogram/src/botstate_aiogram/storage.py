""":class:`BotstateStorage`: aiogram's FSM storage on any botstate storage."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiogram.exceptions import DataNotDictLikeError
from aiogram.fsm.state import State
from aiogram.fsm.storage.base import (
    BaseStorage,
    KeyBuilder,
    StateType,
    StorageKey,
)

from botstate.errors import ConfigError, DecodeError, InvalidArgument
from botstate.opening import open_storage
from botstate.options import seconds
from botstate.storage import FOREVER, TTL, Storage

from .isolation import BotstateEventIsolation
from .keys import BotstateKeyBuilder

__all__ = ["BotstateStorage", "DataNotDict"]


class DataNotDict(InvalidArgument, DataNotDictLikeError):
    """FSM data that is not a mapping.

    Both botstate's :class:`~botstate.errors.InvalidArgument` and aiogram's
    ``DataNotDictLikeError``, so code written for either catches it.
    """

    def __init__(self, message: str) -> None:
        InvalidArgument.__init__(self, message)
        self.message = message  # what aiogram's DetailedAiogramError shows

    def __str__(self) -> str:
        return self.message


class BotstateStorage(BaseStorage):
    """aiogram's ``BaseStorage`` on a botstate :class:`~botstate.storage.Storage`.

    >>> storage = BotstateStorage("sqlite:///bot.db")        # or "redis://...", a Storage
    >>> dp = Dispatcher(storage=storage, events_isolation=storage.create_isolation())

    Each aiogram :class:`StorageKey` gets two botstate keys, named by
    ``key_builder``: ``<...>:state`` holds the state name (a string) and
    ``<...>:data`` the data dict. A ``None`` state and empty data are deleted,
    not stored. The default :class:`BotstateKeyBuilder` names keys as aiogram's
    ``DefaultKeyBuilder`` (so as aiogram's ``RedisStorage``: ``fsm:<chat>:<user>:state``)
    and also accepts the destinies scenes use.

    Args:
        storage: a botstate ``Storage``, a storage URL (``"redis://..."``,
            ``"sqlite:///bot.db"``) or a config mapping (``{"adapter": ...}``),
            as :func:`botstate.open_storage` takes; without ``type=`` (any
            codec: ``codec="msgpack"`` keeps datetimes and bytes in data). A
            storage opened here from a URL or mapping is closed by
            :meth:`close` (aiogram calls it on shutdown); a ``Storage`` you
            pass stays yours to close.
        key_builder: turns a ``StorageKey`` into key names. To read data an
            aiogram ``RedisStorage`` wrote, keep its settings (``prefix``,
            ``with_bot_id``, ...), e.g. ``BotstateKeyBuilder(with_bot_id=True)``.
        state_ttl / data_ttl: seconds (or ``timedelta``) a state / data entry
            lives after each write; ``None`` uses the storage's default TTL
            (none unless the storage was opened with ``ttl=``).

    ``update_data`` is one atomic ``Storage.update``: concurrent updates of one
    key from several tasks or processes merge, none is lost (across processes
    on ATOMIC adapters: SQLite, Redis, DynamoDB).
    """

    def __init__(
        self,
        storage: Storage[Any] | str | Mapping[str, Any],
        *,
        key_builder: KeyBuilder | None = None,
        state_ttl: TTL = None,
        data_ttl: TTL = None,
    ) -> None:
        if isinstance(storage, Storage):
            self.storage: Storage[Any] = storage
            self._owns_storage = False
        elif isinstance(storage, (str, Mapping)):
            self.storage = open_storage(storage)
            self._owns_storage = True
        else:
            raise ConfigError(
                "storage must be a botstate Storage, a URL or a config mapping, "
                f"not {type(storage).__name__}"
            )
        if self.storage.type is not None:
            raise ConfigError(
                "BotstateStorage keeps a state name and a data dict per key; give it a Storage "
                f"without type= (this one decodes into {self.storage.type!r})"
            )
        if key_builder is not None and not isinstance(key_builder, KeyBuilder):
            raise ConfigError(
                f"key_builder must be an aiogram KeyBuilder, not {type(key_builder).__name__}"
            )
        self.key_builder: KeyBuilder = key_builder or BotstateKeyBuilder()
        self.state_ttl = _ttl(state_ttl, "state_ttl")
        self.data_ttl = _ttl(data_ttl, "data_ttl")

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        key_builder: KeyBuilder | None = None,
        state_ttl: TTL = None,
        data_ttl: TTL = None,
        **options: Any,
    ) -> BotstateStorage:
        """Open the storage at ``url`` (like aiogram's ``RedisStorage.from_url``).

        ``options`` go to :func:`botstate.open_storage`: ``namespace``,
        ``ttl``, ``codec`` and the adapter's own options.

        >>> storage = BotstateStorage.from_url("redis://localhost:6379/0", namespace="mybot")
        """
        return cls(
            open_storage(url, **options),
            key_builder=key_builder,
            state_ttl=state_ttl,
            data_ttl=data_ttl,
        )._own()

    def _own(self) -> BotstateStorage:
        self._owns_storage = True
        return self

    def create_isolation(
        self, *, ttl: float = 30.0, timeout: float = 60.0
    ) -> BotstateEventIsolation:
        """An event isolation on this storage: one handler per FSM key at a time.

        Built on ``Storage.lock``: on ATOMIC adapters (SQLite, Redis, DynamoDB)
        a lease held across processes and hosts, renewed while the handler
        runs (``ttl``: lease length); on memory and non-ATOMIC adapters a lock
        in this process.
        ``timeout``: seconds an update waits for the key before
        :class:`~botstate.errors.ConflictError`.
        """
        return BotstateEventIsolation(
            self.storage, key_builder=self.key_builder, ttl=ttl, timeout=timeout
        )

    # -- state --------------------------------------------------------------
    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        """Store ``state`` (a ``State`` or its name); ``None`` deletes it."""
        name = state.state if isinstance(state, State) else state
        storage_key = self.key_builder.build(key, "state")
        if name is None:
            await self.storage.delete(storage_key)
            return
        if not isinstance(name, str):
            raise InvalidArgument(
                f"FSM state must be a State, a str or None, not {type(name).__name__}"
            )
        await self.storage.set(storage_key, name, ttl=self.state_ttl)

    async def get_state(self, key: StorageKey) -> str | None:
        """The state name stored for ``key``, or ``None``."""
        storage_key = self.key_builder.build(key, "state")
        value = await self.storage.get(storage_key)
        if value is not None and not isinstance(value, str):
            raise DecodeError(
                f"FSM state under {storage_key!r} is a {type(value).__name__}, not a str",
                storage_key,
            )
        return value

    # -- data ---------------------------------------------------------------
    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        """Replace the data of ``key``; empty data deletes the entry."""
        # No copy of a dict: Storage.set encodes it before its first await.
        value = data if type(data) is dict else _as_dict(data)
        storage_key = self.key_builder.build(key, "data")
        if not value:
            await self.storage.delete(storage_key)
        else:
            await self.storage.set(storage_key, value, ttl=self.data_ttl)

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        """A copy of the data of ``key`` (``{}`` if none)."""
        storage_key = self.key_builder.build(key, "data")
        return _stored_dict(storage_key, await self.storage.get(storage_key))

    async def update_data(self, key: StorageKey, data: Mapping[str, Any]) -> dict[str, Any]:
        """Merge ``data`` into the stored data in one atomic update; return the result.

        Unlike aiogram's default (read, merge, write), concurrent updates of
        one key never overwrite each other's fields.
        """
        patch = dict(data) if type(data) is dict else _as_dict(data)
        storage_key = self.key_builder.build(key, "data")

        def merge(old: Any) -> dict[str, Any] | None:
            # ``old`` is decoded afresh for each attempt and the result is
            # encoded before it is stored: merging in place is safe.
            merged = _stored_dict(storage_key, old)
            merged.update(patch)
            return merged or None  # empty data is not stored

        new = await self.storage.update(storage_key, merge, ttl=self.data_ttl)
        return new if new else {}  # merge's own dict: nothing else holds it

    async def close(self) -> None:
        """Close the botstate storage if this object opened it (from a URL or mapping)."""
        if self._owns_storage:
            await self.storage.close()

    def __repr__(self) -> str:
        return f"BotstateStorage({self.storage!r}, key_builder={self.key_builder!r})"


def _ttl(value: TTL, name: str) -> TTL:
    """Check a TTL setting up front (``None`` = the storage's default)."""
    if value is None:
        return None
    number = seconds(value, name, forever=True, error=ConfigError)
    return FOREVER if number == FOREVER else number


def _as_dict(data: object) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise DataNotDict(f"Data must be a dict or dict-like object, got {type(data).__name__}")
    return dict(data)


def _stored_dict(storage_key: str, value: object) -> dict[str, Any]:
    """The decoded data (a fresh object per read: no copy needed), checked to be a dict."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise DecodeError(
            f"FSM data under {storage_key!r} is a {type(value).__name__}, not a dict", storage_key
        )
    return value
