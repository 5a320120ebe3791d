"""``AsyncBotstateStateStorage``: the async ``StateStorageBase``, for ``AsyncTeleBot``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable, Mapping
from datetime import timedelta
from types import TracebackType
from typing import Any

from telebot.asyncio_storage import StateStorageBase

from botstate.adapter import seconds
from botstate.errors import ConfigError, InvalidArgument, UsageError
from botstate.locks import Lock
from botstate.opening import open_storage
from botstate.storage import TTL, Storage
from botstate.sync import SyncStorage

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

__all__ = ["AsyncBotstateStateStorage", "AsyncStateData"]


def check_settings(prefix: object, ttl: object, lock_timeout: object) -> tuple[float | None, float]:
    """``(ttl, lock_timeout)`` as seconds; raise if a setting is invalid.

    A ``prefix`` that is not a non-empty str raises ``InvalidArgument``; a
    ``ttl`` that is not ``None`` or a positive number of seconds (``FOREVER``
    allowed), or a ``lock_timeout`` that is not ``>= 0`` seconds, raises
    ``ConfigError``. Called before any storage is opened.
    """
    if not prefix or not isinstance(prefix, str):
        raise InvalidArgument("prefix must be a non-empty str")
    checked_ttl = None if ttl is None else seconds(ttl, "ttl", forever=True, error=ConfigError)
    return checked_ttl, seconds(lock_timeout, "lock_timeout", zero=True, error=ConfigError)


class AsyncBotstateStateStorage(StateStorageBase):
    """States of an ``AsyncTeleBot`` in any botstate storage, one key per user state.

    >>> from telebot.async_telebot import AsyncTeleBot
    >>> from botstate_telebot import AsyncBotstateStateStorage
    >>> bot = AsyncTeleBot(TOKEN, state_storage=AsyncBotstateStateStorage("redis://localhost"))

    ``storage`` is a URL or config mapping (opened with
    :func:`botstate.open_storage`, plus ``options``), a
    :class:`~botstate.storage.Storage`, or ``None`` for ``BOTSTATE_STORAGE``.
    A :class:`~botstate.sync.SyncStorage` is refused: it lives on botstate's
    private loop, not on the bot's. Keys and records are those of
    :class:`~botstate_telebot.BotstateStateStorage`, so a bot can move
    between ``TeleBot`` and ``AsyncTeleBot`` and keep its users' states.

    ``ttl`` is how long a state lives after its last change (``None``: the
    storage's default; ``FOREVER``: no expiry). ``lock_timeout`` is how long
    a ``get_interactive_data`` block waits for another block on the same
    user before raising ``ConflictError``. Both are checked here: a value
    that is not a positive number of seconds (``lock_timeout``: ``>= 0``) at
    most 100 years raises ``ConfigError``, before any storage is opened.
    """

    def __init__(
        self,
        storage: Storage[Any] | str | Mapping[str, Any] | None = None,
        *,
        prefix: str = DEFAULT_PREFIX,
        ttl: TTL = None,
        lock_timeout: float | timedelta = 60.0,
        **options: Any,
    ) -> None:
        super().__init__()
        self.ttl, self.lock_timeout = check_settings(prefix, ttl, lock_timeout)
        # Who holds each key's interactive-data lock (a task, or a thread of the
        # sync storage), to refuse a nested block on the same key at once.
        self._holders: dict[str, Hashable] = {}
        if isinstance(storage, SyncStorage):
            raise InvalidArgument(
                "AsyncBotstateStateStorage needs an async Storage (botstate.open_storage); "
                "a SyncStorage runs on botstate's own loop thread, not on the bot's loop"
            )
        if isinstance(storage, Storage):
            if options:
                raise InvalidArgument(
                    f"options {sorted(options)} only apply when the storage is opened from a URL"
                )
            self.storage: Storage[Any] = storage
        elif storage is None or isinstance(storage, (str, Mapping)):
            self.storage = open_storage(storage, **options)
        else:
            raise InvalidArgument(
                "storage must be a URL, a config mapping or a Storage, "
                f"not {type(storage).__name__}"
            )
        self.prefix = prefix

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

    async def _update(
        self, key: str, fn: Callable[[Record | None], Record | None]
    ) -> Record | None:
        return await self.storage.update(key, fn, ttl=self.ttl)

    # -- StateStorageBase -------------------------------------------------
    async def set_state(
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
        await self._update(key, lambda old: with_state(old, name))
        return True

    async def get_state(
        self,
        chat_id: int | str | None,
        user_id: int | str | None,
        business_connection_id: str | None = None,
        message_thread_id: int | None = None,
        bot_id: int | None = None,
    ) -> str | None:
        """The user's state name, or ``None``."""
        key = self.key(chat_id, user_id, business_connection_id, message_thread_id, bot_id)
        return state_of(await self.storage.get(key))

    async def delete_state(
        self,
        chat_id: int | str | None,
        user_id: int | str | None,
        business_connection_id: str | None = None,
        message_thread_id: int | None = None,
        bot_id: int | None = None,
    ) -> bool:
        """Delete the state and its data; ``False`` if there was none."""
        key = self.key(chat_id, user_id, business_connection_id, message_thread_id, bot_id)
        return await self.storage.delete(key)

    async def set_data(
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
        await self._update(where, lambda old: with_item(old, key, value, where))
        return True

    async def get_data(
        self,
        chat_id: int | str | None,
        user_id: int | str | None,
        business_connection_id: str | None = None,
        message_thread_id: int | None = None,
        bot_id: int | None = None,
    ) -> dict[str, Any]:
        """A copy of the user's data (``{}`` if there is no state)."""
        key = self.key(chat_id, user_id, business_connection_id, message_thread_id, bot_id)
        return data_of(await self.storage.get(key))

    async def reset_data(
        self,
        chat_id: int | str | None,
        user_id: int | str | None,
        business_connection_id: str | None = None,
        message_thread_id: int | None = None,
        bot_id: int | None = None,
    ) -> bool:
        """Empty the data, keeping the state; ``False`` if there is no state."""
        key = self.key(chat_id, user_id, business_connection_id, message_thread_id, bot_id)
        return await self._update(key, lambda old: with_data(old, {})) is not None

    def get_interactive_data(
        self,
        chat_id: int | str | None,
        user_id: int | str | None,
        business_connection_id: str | None = None,
        message_thread_id: int | None = None,
        bot_id: int | None = None,
    ) -> AsyncStateData:
        """``async with storage.get_interactive_data(...) as data:`` — saved on normal exit.

        The block holds the user's lock (:meth:`botstate.Storage.lock`) from
        the read to the save, so blocks on one user run one at a time, across
        processes on an ATOMIC backend: no change is lost.
        """
        return AsyncStateData(
            self, chat_id, user_id, business_connection_id, message_thread_id, bot_id
        )

    async def save(
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
        return await self._update(key, lambda old: with_data(old, data)) is not None

    # -- lifecycle ----------------------------------------------------------
    async def close(self) -> None:
        """Close the storage underneath."""
        await self.storage.close()

    def __repr__(self) -> str:
        return f"AsyncBotstateStateStorage({self.storage!r}, prefix={self.prefix!r})"

    __str__ = __repr__


class AsyncStateData:
    """The context of ``get_interactive_data`` / ``await bot.retrieve_data``.

    ``async with`` takes the user's lock (``Storage.lock`` of the state key:
    a lease shared by every process on ATOMIC backends, a per-key lock in
    this process otherwise), waiting up to the storage's ``lock_timeout``
    (then ``ConflictError``), and reads a copy of the data (``{}`` without a
    state). Leaving the block normally saves the dict (nothing is written if
    there is no state by then); leaving it by an exception saves nothing.
    Either way the lock is released, so concurrent blocks on one user run one
    after another and each sees the previous one's changes. If the lease was
    lost while held (it expired after ``ttl`` seconds of failed renewals),
    nothing is saved and leaving raises ``ConflictError``. A block may not
    open another block on the same user (``UsageError``: it would wait for
    itself).
    """

    def __init__(
        self,
        owner: AsyncBotstateStateStorage,
        chat_id: int | str | None,
        user_id: int | str | None,
        business_connection_id: str | None,
        message_thread_id: int | None,
        bot_id: int | None,
    ) -> None:
        self._owner = owner
        self._where = (chat_id, user_id, business_connection_id, message_thread_id, bot_id)
        self.data: dict[str, Any] = {}
        self.holder: Hashable | None = None
        """Who enters the block (``None``: the current task); the sync storage sets its thread."""
        self._key = ""
        self._lock: Lock | None = None
        self._holder: Hashable | None = None

    async def __aenter__(self) -> dict[str, Any]:
        owner = self._owner
        key = owner.key(*self._where)
        holder = self.holder if self.holder is not None else asyncio.current_task()
        if holder is not None and owner._holders.get(key) == holder:
            raise UsageError(
                f"a get_interactive_data/retrieve_data block on {key!r} is already open here; "
                "nesting one on the same user would wait for itself: use the outer block's data"
            )
        lock = owner.storage.lock(key, timeout=owner.lock_timeout)
        await lock.acquire()
        try:
            self.data = await owner.get_data(*self._where)
        except BaseException:
            await lock.release()
            raise
        self._key, self._lock, self._holder = key, lock, holder
        if holder is not None:
            owner._holders[key] = holder
        return self.data

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        lock, self._lock = self._lock, None
        if lock is None:
            return
        try:
            if exc_type is None and not lock.lost:
                chat_id, user_id, business_connection_id, message_thread_id, bot_id = self._where
                await self._owner.save(
                    chat_id, user_id, self.data, business_connection_id, message_thread_id, bot_id
                )
        finally:
            holders = self._owner._holders
            if self._holder is not None and holders.get(self._key) == self._holder:
                del holders[self._key]
            await lock.__aexit__(exc_type, exc, tb)  # ConflictError if the lease was lost
