"""``BotstateStateStorage``: pyTelegramBotAPI's ``StateStorageBase`` for ``TeleBot``.

The record logic lives once, in :class:`~botstate_telebot.AsyncBotstateStateStorage`;
this class runs each of its methods on botstate's loop thread (:mod:`botstate.sync`)
and waits, so the two storages cannot drift apart.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Coroutine, Mapping
from datetime import timedelta
from typing import Any, Concatenate, ParamSpec, TypeVar

from telebot.storage import StateStorageBase

from botstate.errors import InvalidArgument
from botstate.storage import TTL, Storage
from botstate.sync import SyncStorage
from botstate.sync import open_storage as open_sync_storage
from botstate.sync.storage import BlockingContext

from .asyncio_storage import AsyncBotstateStateStorage, AsyncStateData, check_settings
from .records import DEFAULT_PREFIX

__all__ = ["BotstateStateStorage", "StateData"]

StorageSpec = SyncStorage[Any] | Storage[Any] | str | Mapping[str, Any] | None
P = ParamSpec("P")
R = TypeVar("R")


def _blocking(
    method: Callable[Concatenate[AsyncBotstateStateStorage, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[BotstateStateStorage, P], R]:
    """The blocking twin of an ``AsyncBotstateStateStorage`` method (same arguments, docs)."""

    @functools.wraps(method)
    def call(self: BotstateStateStorage, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.storage.runner.run(method(self.states, *args, **kwargs))

    return call


def _interactive(
    method: Callable[Concatenate[AsyncBotstateStateStorage, P], AsyncStateData],
) -> Callable[Concatenate[BotstateStateStorage, P], StateData]:
    """``get_interactive_data`` as a ``with`` block over the async one."""

    @functools.wraps(method)
    def call(self: BotstateStateStorage, /, *args: P.args, **kwargs: P.kwargs) -> StateData:
        return StateData(self.storage, method(self.states, *args, **kwargs))

    call.__doc__ = (
        "``with storage.get_interactive_data(...) as data:`` — saved on normal exit.\n\n"
        "The block holds the user's lock from the read to the save (see :class:`StateData`): "
        "blocks on one user from many threads or processes run one at a time, none is lost."
    )
    return call


def _on_states(name: str, doc: str) -> Any:
    """An attribute kept once, on ``states`` (the async storage doing the work)."""
    return property(
        lambda self: getattr(self.states, name),
        lambda self, value: setattr(self.states, name, value),
        doc=doc,
    )


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
    storage's default). Every method is one atomic ``update`` (or read) of
    that user's key, and a ``retrieve_data`` block holds the user's lock from
    its read to its save (waiting up to ``lock_timeout`` seconds for another
    block, then ``ConflictError``), so the worker threads of a threaded
    ``TeleBot`` (and several bot processes on an ATOMIC backend) never lose
    each other's writes. Settings are checked before anything is opened: a
    bad ``ttl`` or ``lock_timeout`` raises ``ConfigError``.

    Methods, keys and records are those of
    :class:`~botstate_telebot.AsyncBotstateStateStorage` (``states``), run on
    botstate's loop thread: a bot can move between ``TeleBot`` and
    ``AsyncTeleBot`` and keep its users' states.
    """

    def __init__(
        self,
        storage: StorageSpec = None,
        *,
        prefix: str = DEFAULT_PREFIX,
        ttl: TTL = None,
        lock_timeout: float | timedelta = 60.0,
        **options: Any,
    ) -> None:
        super().__init__()
        check_settings(prefix, ttl, lock_timeout)  # before a storage is opened
        self.storage: SyncStorage[Any] = _sync_storage(storage, options)
        self.states = AsyncBotstateStateStorage(
            self.storage.storage, prefix=prefix, ttl=ttl, lock_timeout=lock_timeout
        )
        """The async storage doing the work, on botstate's loop (use it only there)."""

    prefix: str = _on_states("prefix", "The first part of every key (``telebot``).")
    ttl: TTL = _on_states(
        "ttl", "How long a state lives after its last change (``None``: default)."
    )
    lock_timeout: float = _on_states(
        "lock_timeout", "How long a ``retrieve_data`` block waits for the user's lock."
    )

    def key(
        self,
        chat_id: int | str | None,
        user_id: int | str | None,
        business_connection_id: str | None = None,
        message_thread_id: int | None = None,
        bot_id: int | None = None,
    ) -> str:
        """The botstate key of one state (see :mod:`botstate_telebot.records`)."""
        return self.states.key(chat_id, user_id, business_connection_id, message_thread_id, bot_id)

    # -- StateStorageBase, blocking -----------------------------------------
    set_state = _blocking(AsyncBotstateStateStorage.set_state)
    get_state = _blocking(AsyncBotstateStateStorage.get_state)
    delete_state = _blocking(AsyncBotstateStateStorage.delete_state)
    set_data = _blocking(AsyncBotstateStateStorage.set_data)
    get_data = _blocking(AsyncBotstateStateStorage.get_data)
    reset_data = _blocking(AsyncBotstateStateStorage.reset_data)
    save = _blocking(AsyncBotstateStateStorage.save)
    get_interactive_data = _interactive(AsyncBotstateStateStorage.get_interactive_data)

    # -- lifecycle ----------------------------------------------------------
    def close(self) -> None:
        """Close the storage underneath."""
        self.storage.close()

    def __repr__(self) -> str:
        return f"BotstateStateStorage({self.storage!r}, prefix={self.prefix!r})"

    __str__ = __repr__


class StateData(BlockingContext[dict[str, Any]]):
    """The context of ``get_interactive_data`` / ``bot.retrieve_data``.

    ``with`` takes the user's lock and reads a copy of the data (``{}``
    without a state); the dict is saved when the block ends normally, nothing
    is saved if it raises (the exception is not swallowed), and the lock is
    released either way, as :class:`~botstate_telebot.AsyncStateData` does on
    botstate's loop. Ctrl-C while waiting for the lock or the read leaves it
    free and saves nothing.
    """

    __slots__ = ("_block",)

    def __init__(self, storage: SyncStorage[Any], block: AsyncStateData) -> None:
        super().__init__(storage.runner)
        self._block = block

    @property
    def data(self) -> dict[str, Any]:
        """The data being edited (read on entering the block)."""
        return self._block.data

    def __enter__(self) -> dict[str, Any]:
        self._block.holder = ("thread", threading.get_ident())  # the loop task is not the caller
        return self._enter(self._block)


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
