"""``BotstateStateStorage``: pyTelegramBotAPI's ``StateStorageBase`` for ``TeleBot``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

from telebot.storage import StateStorageBase

from botstate.errors import InvalidArgument
from botstate.storage import TTL, Storage
from botstate.sync import SyncStorage
from botstate.sync import open_storage as open_sync_storage

from .records import (
    DEFAULT_PREFIX,
    Record,
    data_of,
    state_key,
    state_name,
    state_of,
    with_data,
    with_item,
    with_state,
)

__all__ = ["BotstateStateStorage", "StateData"]

StorageSpec = SyncStorage[Any] | Storage[Any] | str | Mapping[str, Any] | None


class BotstateStateStorage(StateStorageBase):
    """States of a ``TeleBot`` in any botstate storage, one key per user state.

    >>> from telebot import TeleBot
    >>> from botstate_telebot import BotstateStateStorage
    >>> bot = TeleBot(TOKEN, state_storage=BotstateStateStorage("sqlite:///bot.db"))

    ``storage`` is a URL or config mapping (opened with
    :func:`botstate.sync.open_storage`, plus ``options``), a
    :class:`~botstate.sync.SyncStorage`, a :class:`~botstate.storage.Storage`
    not yet used elsewhere (wrapped), or ``None`` for ``BOTSTATE_STORAGE``.
    ``ttl`` is how long a state lives after its last change (``None``: the
    storage's default). Every change is one atomic ``update`` of that user's
    key, so the worker threads of a threaded ``TeleBot`` (and several bot
    processes on a shared backend) never lose each other's writes.
    """

    def __init__(
        self,
        storage: StorageSpec = None,
        *,
        prefix: str = DEFAULT_PREFIX,
        ttl: TTL = None,
        **options: Any,
    ) -> None:
        super().__init__()
        if not prefix or not isinstance(prefix, str):
            raise InvalidArgument("prefix must be a non-empty str")
        self.storage: SyncStorage[Any] = _sync_storage(storage, options)
        self.prefix = prefix
        self.ttl = ttl

    def key(
        self,
        chat_id: int | str | None,
        user_id: int | str | None,
        business_connection_id: str | None = None,
        message_thread_id: int | None = None,
        bot_id: int | None = None,
    ) -> str:
        """The botstate key of one state (see :mod:`botstate_telebot.records`)."""
        return state_key(
            chat_id,
            user_id,
            bot_id=bot_id,
            business_connection_id=business_connection_id,
            message_thread_id=message_thread_id,
            prefix=self.prefix,
        )

    def _update(self, key: str, fn: Callable[[Record | None], Record | None]) -> Record | None:
        return self.storage.update(key, fn, ttl=self.ttl)

    # -- StateStorageBase -------------------------------------------------
    def set_state(
        self,
        chat_id: int | str | None,
        user_id: int | str | None,
        state: Any,
        business_connection_id: str | None = None,
        message_thread_id: int | None = None,
        bot_id: int | None = None,
    ) -> bool:
        """Set the user's state (a ``State`` or its name), keeping its data."""
        name = state_name(state)
        key = self.key(chat_id, user_id, business_connection_id, message_thread_id, bot_id)
        self._update(key, lambda old: with_state(old, name))
        return True

    def get_state(
        self,
        chat_id: int | str | None,
        user_id: int | str | None,
        business_connection_id: str | None = None,
        message_thread_id: int | None = None,
        bot_id: int | None = None,
    ) -> str | None:
        """The user's state name, or ``None``."""
        key = self.key(chat_id, user_id, business_connection_id, message_thread_id, bot_id)
        return state_of(self.storage.get(key))

    def delete_state(
        self,
        chat_id: int | str | None,
        user_id: int | str | None,
        business_connection_id: str | None = None,
        message_thread_id: int | None = None,
        bot_id: int | None = None,
    ) -> bool:
        """Delete the state and its data; ``False`` if there was none."""
        key = self.key(chat_id, user_id, business_connection_id, message_thread_id, bot_id)
        return self.storage.delete(key)

    def set_data(
        self,
        chat_id: int | str | None,
        user_id: int | str | None,
        key: str,
        value: Any,
        business_connection_id: str | None = None,
        message_thread_id: int | None = None,
        bot_id: int | None = None,
    ) -> bool:
        """Store one data item; raises ``UsageError`` (a ``RuntimeError``) if there is no state."""
        where = self.key(chat_id, user_id, business_connection_id, message_thread_id, bot_id)
        self._update(where, lambda old: with_item(old, key, value, where))
        return True

    def get_data(
        self,
        chat_id: int | str | None,
        user_id: int | str | None,
        business_connection_id: str | None = None,
        message_thread_id: int | None = None,
        bot_id: int | None = None,
    ) -> dict[str, Any]:
        """A copy of the user's data (``{}`` if there is no state)."""
        key = self.key(chat_id, user_id, business_connection_id, message_thread_id, bot_id)
        return data_of(self.storage.get(key))

    def reset_data(
        self,
        chat_id: int | str | None,
        user_id: int | str | None,
        business_connection_id: str | None = None,
        message_thread_id: int | None = None,
        bot_id: int | None = None,
    ) -> bool:
        """Empty the data, keeping the state; ``False`` if there is no state."""
        key = self.key(chat_id, user_id, business_connection_id, message_thread_id, bot_id)
        return self._update(key, lambda old: with_data(old, {})) is not None

    def get_interactive_data(
        self,
        chat_id: int | str | None,
        user_id: int | str | None,
        business_connection_id: str | None = None,
        message_thread_id: int | None = None,
        bot_id: int | None = None,
    ) -> StateData:
        """``with storage.get_interactive_data(...) as data:`` — edit the data, saved on exit.

        Saved only if the block ends normally (an exception is not swallowed).
        """
        return StateData(self, chat_id, user_id, business_connection_id, message_thread_id, bot_id)

    def save(
        self,
        chat_id: int | str | None,
        user_id: int | str | None,
        data: dict[str, Any],
        business_connection_id: str | None = None,
        message_thread_id: int | None = None,
        bot_id: int | None = None,
    ) -> bool:
        """Replace the data; ``False`` (nothing written) if there is no state."""
        key = self.key(chat_id, user_id, business_connection_id, message_thread_id, bot_id)
        return self._update(key, lambda old: with_data(old, data)) is not None

    # -- lifecycle ----------------------------------------------------------
    def close(self) -> None:
        """Close the storage underneath."""
        self.storage.close()

    def __repr__(self) -> str:
        return f"BotstateStateStorage({self.storage!r}, prefix={self.prefix!r})"

    __str__ = __repr__


class StateData:
    """The context of ``get_interactive_data`` / ``bot.retrieve_data``."""

    def __init__(
        self,
        owner: BotstateStateStorage,
        chat_id: int | str | None,
        user_id: int | str | None,
        business_connection_id: str | None,
        message_thread_id: int | None,
        bot_id: int | None,
    ) -> None:
        self._owner = owner
        self._where = (chat_id, user_id, business_connection_id, message_thread_id, bot_id)
        self.data: dict[str, Any] = {}

    def __enter__(self) -> dict[str, Any]:
        self.data = self._owner.get_data(*self._where)
        return self.data

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            chat_id, user_id, business_connection_id, message_thread_id, bot_id = self._where
            self._owner.save(
                chat_id, user_id, self.data, business_connection_id, message_thread_id, bot_id
            )


def _sync_storage(spec: StorageSpec, options: dict[str, Any]) -> SyncStorage[Any]:
    if isinstance(spec, SyncStorage):
        storage = spec
    elif isinstance(spec, Storage):
        storage = SyncStorage(spec)
    elif spec is None or isinstance(spec, (str, Mapping)):
        return open_sync_storage(spec, **options)
    else:
        raise InvalidArgument(
            "storage must be a URL, a config mapping, a Storage or a SyncStorage, "
            f"not {type(spec).__name__}"
        )
    if options:
        raise InvalidArgument(
            f"options {sorted(options)} only apply when the storage is opened from a URL"
        )
    return storage
