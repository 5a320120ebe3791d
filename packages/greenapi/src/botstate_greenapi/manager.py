"""``BotstateStateManager``: whatsapp-chatbot-python's ``AbstractStateManager`` on botstate."""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Mapping
from typing import Any

from whatsapp_chatbot_python.manager.state import AbstractStateManager, State

from botstate.errors import InvalidArgument
from botstate.storage import TTL, Storage
from botstate.sync import SyncStorage
from botstate.sync import open_storage as open_sync_storage

__all__ = ["DEFAULT_PREFIX", "BotstateStateManager", "timeout_message"]

logger = logging.getLogger("botstate")

DEFAULT_PREFIX = "greenapi"

Record = dict[str, Any]
"""``{"name": str, "data": dict | None}`` as stored under ``<prefix>:<sender>``."""

StorageSpec = SyncStorage[Any] | Storage[Any] | str | Mapping[str, Any] | None


class BotstateStateManager(AbstractStateManager):  # type: ignore[misc]
    """Dialog states of a green-api bot in any botstate storage, one key per sender.

    >>> from whatsapp_chatbot_python import GreenAPIBot
    >>> from botstate_greenapi import BotstateStateManager
    >>> bot = GreenAPIBot(ID_INSTANCE, API_TOKEN)
    >>> BotstateStateManager("sqlite:///bot.db").attach(bot)

    ``storage`` is a URL or config mapping (opened with
    :func:`botstate.sync.open_storage`, plus ``options``), a
    :class:`~botstate.sync.SyncStorage`, a :class:`~botstate.storage.Storage`
    not yet used elsewhere, or ``None`` for ``BOTSTATE_STORAGE``.

    ``ttl``: seconds a state lives after its last change (``refresh_on_read``
    also counts every read, i.e. every message the state filter checks, as
    activity). ``on_timeout(sender, state)`` is called in a worker thread when
    a state expires: green-api's "session timed out" message (see
    :func:`timeout_message`). It needs an adapter that reports expiries
    (``EXPIRY_EVENTS``: memory, and SQLite when its purge removes a row);
    others raise ``UnsupportedOperation``.

    The methods behave as green-api's in-memory ``StateManager``, except that
    ``get_state`` returns a snapshot: change it through the manager's methods.
    """

    def __init__(
        self,
        storage: StorageSpec = None,
        *,
        prefix: str = DEFAULT_PREFIX,
        ttl: TTL = None,
        refresh_on_read: bool = False,
        on_timeout: Callable[[str, State], object] | None = None,
        **options: Any,
    ) -> None:
        if not prefix or not isinstance(prefix, str):
            raise InvalidArgument("prefix must be a non-empty str")
        self.sync_storage: SyncStorage[Any] = _sync_storage(storage, options)
        self.prefix = prefix
        self.ttl = ttl
        self.refresh_on_read = refresh_on_read
        self._stop_timeouts: Callable[[], None] | None = None
        if on_timeout is not None:
            self._stop_timeouts = self._watch_timeouts(on_timeout)

    def key(self, sender: str) -> str:
        """The botstate key of ``sender``'s state: ``<prefix>:<sender>``."""
        if not isinstance(sender, str) or not sender:
            raise InvalidArgument(f"sender must be a non-empty str, not {sender!r}")
        return f"{self.prefix}:{sender}"

    def _update(self, sender: str, fn: Callable[[Record | None], Record | None]) -> None:
        self.sync_storage.update(self.key(sender), fn, ttl=self.ttl)

    # -- AbstractStateManager ---------------------------------------------
    def get_state(self, sender: str) -> State | None:
        """``State(name, data)`` of ``sender``, or ``None``."""
        key = self.key(sender)
        if self.refresh_on_read:
            record = self.sync_storage.update(key, lambda old: old, ttl=self.ttl)
        else:
            record = self.sync_storage.get(key)
        return None if record is None else State(record["name"], record["data"])

    def set_state(self, sender: str, state_name: str) -> None:
        """Start ``state_name`` for ``sender``; any data is dropped."""
        self.sync_storage.set(
            self.key(sender), {"name": _name(state_name), "data": None}, ttl=self.ttl
        )

    def update_state(self, sender: str, state_name: str) -> None:
        """Change the state's name keeping its data (a new state if there is none)."""
        name = _name(state_name)
        self._update(sender, lambda old: {"name": name, "data": old["data"] if old else None})

    def delete_state(self, sender: str) -> None:
        """Delete the state and its data."""
        self.sync_storage.delete(self.key(sender))

    def get_state_data(self, sender: str) -> dict[str, Any] | None:
        """The state's data (``None`` if there is no state, or no data)."""
        record = self.sync_storage.get(self.key(sender))
        return None if record is None else record["data"]

    def set_state_data(self, sender: str, state_data: dict[str, Any]) -> None:
        """Replace the data, if there is a state (otherwise nothing happens)."""
        self._update(sender, lambda old: None if old is None else {**old, "data": state_data})

    def update_state_data(self, sender: str, state_data: dict[str, Any]) -> None:
        """Merge ``state_data`` into the data, if there is a state."""

        def merge(old: Record | None) -> Record | None:
            if old is None:
                return None
            return {**old, "data": {**(old["data"] or {}), **state_data}}

        self._update(sender, merge)

    def delete_state_data(self, sender: str) -> None:
        """Drop the data, keeping the state."""
        self._update(sender, lambda old: None if old is None else {**old, "data": None})

    # -- wiring -----------------------------------------------------------
    def attach(self, bot: Any) -> BotstateStateManager:
        """Make ``bot`` (a ``GreenAPIBot``, or its ``router``) keep its states here.

        Replaces the state manager that incoming messages (and, where the
        framework shares it, incoming calls) see as ``notification.state_manager``.
        """
        router = getattr(bot, "router", bot)
        router.message.state_manager = self
        incoming_call = getattr(router, "incoming_call", None)
        if incoming_call is not None:
            incoming_call.state_manager = self
        return self

    def _watch_timeouts(self, on_timeout: Callable[[str, State], object]) -> Callable[[], None]:
        head = f"{self.prefix}:"

        def expired(key: str, record: Any) -> None:
            if not key.startswith(head) or not isinstance(record, dict):
                return
            on_timeout(key[len(head) :], State(record.get("name"), record.get("data")))

        return self.sync_storage.on_expire(expired)

    def close(self) -> None:
        """Stop timeout callbacks and close the storage underneath."""
        if self._stop_timeouts is not None:
            self._stop_timeouts()
            self._stop_timeouts = None
        self.sync_storage.close()

    def __repr__(self) -> str:
        return f"BotstateStateManager({self.sync_storage!r}, prefix={self.prefix!r})"


def timeout_message(api: Any, text: str) -> Callable[[str, State], None]:
    """An ``on_timeout`` callback sending ``text`` to the sender whose state expired.

    >>> BotstateStateManager("memory://", ttl=300,
    ...                      on_timeout=timeout_message(bot.api, "Session timed out")).attach(bot)

    ``api`` is the bot's ``GreenAPI`` client (``bot.api``); the message goes to
    the sender's personal chat. A failed send is logged, not raised.
    """

    def send(sender: str, state: State) -> None:
        try:
            api.sending.sendMessage(sender, text)
        except Exception:
            logger.exception("could not send the timeout message to %s", sender)

    return send


def _name(state_name: object) -> str:
    # BaseStates members are str enums: store their value, not "Enum.MEMBER".
    if isinstance(state_name, enum.Enum):
        state_name = state_name.value
    if not isinstance(state_name, str):
        raise InvalidArgument(f"state name must be a str or BaseStates, not {state_name!r}")
    return state_name


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
