"""``BotstatePersistence``: python-telegram-bot's ``BasePersistence`` on any botstate storage."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, MutableMapping
from contextlib import AbstractAsyncContextManager
from typing import Any

from telegram.ext import BasePersistence, PersistenceInput

from botstate import Capability
from botstate.adapter import Version
from botstate.errors import DecodeError, InvalidArgument
from botstate.opening import open_storage
from botstate.storage import TTL, Storage

from .layout import Layout
from .values import UnstorableValue, from_stored, join_top, split_top, to_stored

__all__ = ["BotstatePersistence", "plain_state"]

Data = dict[Any, Any]
ConversationKey = tuple[int | str, ...]
ConversationDict = dict[ConversationKey, object]
CDCData = tuple[list[tuple[str, float, dict[str, Any]]], dict[str, str]]
_MISSING = object()
_BATCH = 500  # keys per get_many when loading everything at start
_EMPTY_CALLBACK_DATA: dict[str, Any] = {"~t": [[], {}]}  # an unused cache: not worth a key


class BotstatePersistence(BasePersistence[Data, Data, Data]):
    """PTB persistence that keeps each user's, chat's and conversation's state under its own key.

    >>> persistence = BotstatePersistence("sqlite:///bot.db")
    >>> application = Application.builder().token(TOKEN).persistence(persistence).build()

    ``storage`` is a :class:`botstate.Storage`, a URL (``"redis://localhost:6379/0"``)
    or a config mapping (``{"adapter": "redis", "url": ..., "namespace": "mybot"}``).
    A storage opened here from a URL or mapping is closed by :meth:`flush` (at
    ``Application.shutdown``) and opened again if the application is initialized
    again; a :class:`~botstate.Storage` you pass stays yours to close.

    What PTB documents for each method holds:

    - ``get_*`` load everything stored (PTB keeps it in memory), one key per
      user and chat, read in batches (needs an adapter with ``SCAN``).
    - ``update_*`` write the data PTB hands over, when PTB calls them: every
      ``update_interval`` seconds, at shutdown, and after every update with
      :class:`~botstate_ptb.BotstateApplication`. Only the top-level keys that
      changed since this process last read or wrote that user's/chat's/bot's
      data are written, merged into the stored value in one atomic update
      (a compare-and-set on the version this process last wrote or read, so
      one round trip unless another process wrote that key since; else a
      ``Storage.update``): processes changing different keys never undo each
      other; for one key the later write wins. Unchanged data is not written;
      data that became empty deletes its key.
    - ``refresh_*`` (before every handler) read the stored data and bring in what
      another process changed since this one last read or wrote it, key by
      top-level key; changes this process has not flushed yet are kept.
    - ``drop_*`` delete the key; ``update_conversation(..., None)`` deletes the
      conversation's key.

    ``shared=False`` is for a bot that runs as one process and is the only
    writer of its keys: ``refresh_*`` read nothing, and the user/chat data of
    one flush are written whole, in ``set_many`` batches, instead of one
    read-merge-write per user/chat.

    A value that cannot be stored raises :class:`~botstate_ptb.UnstorableValue`
    (a :class:`botstate.EncodeError`) from ``update_*``, naming where it sits
    (``chat_data[42]['when']``); PTB hands errors raised while persisting to the
    application's error handlers. Nothing of that user/chat is written.

    ``data_ttl`` makes ``user_data``/``chat_data`` expire that long after their
    last change, ``conversation_ttl`` likewise for conversation states (default:
    kept until dropped). ``prefix`` starts every key (see :mod:`botstate_ptb.layout`).
    """

    def __init__(
        self,
        storage: Storage[Any] | str | Mapping[str, Any],
        *,
        store_data: PersistenceInput | None = None,
        update_interval: float = 60,
        prefix: str = "ptb",
        data_ttl: TTL = None,
        conversation_ttl: TTL = None,
        shared: bool = True,
        lock_ttl: float = 30.0,
        lock_timeout: float = 60.0,
    ) -> None:
        super().__init__(store_data=store_data, update_interval=update_interval)
        if not isinstance(prefix, str) or not prefix:
            raise InvalidArgument(f"prefix must be a non-empty str, got {prefix!r}")
        if isinstance(storage, Storage):
            self._spec: str | Mapping[str, Any] | None = None
            self._storage: Storage[Any] | None = storage
        elif isinstance(storage, (str, Mapping)):
            self._spec = storage
            self._storage = open_storage(storage)
        else:
            raise InvalidArgument(
                f"storage must be a botstate.Storage, a URL or a config mapping, "
                f"not {type(storage).__name__}"
            )
        self.layout = Layout(prefix)
        self.data_ttl = data_ttl
        self.conversation_ttl = conversation_ttl
        self.shared = shared
        self.lock_ttl = lock_ttl
        self.lock_timeout = lock_timeout
        self.storage.expires_at(data_ttl)  # validates both TTLs up front
        self.storage.expires_at(conversation_ttl)
        # What this process last read or wrote, per key, as {top-level key: stored tree}
        # (a conversation's or callback data's stored tree as is). Decides whether a
        # write is needed and what another process changed since.
        self._seen: dict[str, Any] = {}
        # shared=True on ATOMIC adapters: per key, the version this process last wrote or
        # read and the stored {top-level key: tree} it had. The next merge-write applies its
        # changes to that and writes with set_if(version): one round trip instead of a
        # read and a write, falling back to read-merge-write if another process wrote since.
        self._versions: dict[str, tuple[Version, dict[Any, Any]]] = {}
        self._key_locks: dict[str, list[Any]] = {}  # key: [lock, holders and waiters]
        self._pending: dict[str, Any] = {}  # shared=False: writes waiting for _writer
        self._writer: asyncio.Future[None] | None = None

    # -- the storage --------------------------------------------------------
    @property
    def storage(self) -> Storage[Any]:
        """The botstate storage; reopened from the URL/mapping after :meth:`flush` closed it."""
        if self._storage is None:
            assert self._spec is not None
            self._storage = open_storage(self._spec)
        return self._storage

    async def flush(self) -> None:
        """Called by ``Application.shutdown`` after the last ``update_*``.

        Every write has already happened (``update_*`` write through); this closes
        a storage opened from a URL or mapping and forgets what was seen.
        """
        self._seen.clear()
        self._versions.clear()
        if self._spec is not None and self._storage is not None:
            storage, self._storage = self._storage, None
            await storage.close()

    def lock(self, key: str) -> AbstractAsyncContextManager[object]:
        """One holder of ``key`` at a time: across processes on ATOMIC adapters.

        ``Storage.lock(key, ttl=lock_ttl, timeout=lock_timeout)``; raises
        ``ConflictError`` when not got within ``lock_timeout`` seconds.
        """
        return self.storage.lock(key, ttl=self.lock_ttl, timeout=self.lock_timeout)

    def _hold(self, key: str) -> _Hold:
        """One read-merge or write of ``key`` at a time in this process."""
        return _Hold(self._key_locks, key)

    # -- user and chat data -------------------------------------------------
    async def get_user_data(self) -> dict[int, Data]:
        """Every stored ``user_data``, by user id."""
        return await self._load_all("user_data")

    async def get_chat_data(self) -> dict[int, Data]:
        """Every stored ``chat_data``, by chat id."""
        return await self._load_all("chat_data")

    async def update_user_data(self, user_id: int, data: Data) -> None:
        """Write one user's data (skipped if unchanged; deleted if empty)."""
        await self._write("user_data", user_id, data)

    async def update_chat_data(self, chat_id: int, data: Data) -> None:
        """Write one chat's data (skipped if unchanged; deleted if empty)."""
        await self._write("chat_data", chat_id, data)

    async def refresh_user_data(self, user_id: int, user_data: Data) -> None:
        """Bring in what other processes changed in this user's data, in place."""
        if self.shared:
            await self._refresh(self.layout.data("user_data", user_id), user_data)

    async def refresh_chat_data(self, chat_id: int, chat_data: Data) -> None:
        """Bring in what other processes changed in this chat's data, in place."""
        if self.shared:
            await self._refresh(self.layout.data("chat_data", chat_id), chat_data)

    async def drop_user_data(self, user_id: int) -> None:
        """Delete one user's data."""
        await self._drop(self.layout.data("user_data", user_id))

    async def drop_chat_data(self, chat_id: int) -> None:
        """Delete one chat's data."""
        await self._drop(self.layout.data("chat_data", chat_id))

    async def _load_all(self, kind: str) -> dict[int, Data]:
        prefix = self.layout.kind_prefix(kind)
        keys = [key async for key in self.storage.keys(prefix)]
        loaded: dict[int, Data] = {}
        for start in range(0, len(keys), _BATCH):
            found = await self.storage.get_many(keys[start : start + _BATCH])
            for key, tree in found.items():
                try:
                    ident = int(key[len(prefix) :])
                except ValueError:
                    raise DecodeError(
                        f"key {key!r} is not a {kind} key of botstate-ptb (no id after "
                        f"{prefix!r}); another program wrote under this prefix",
                        key,
                    ) from None
                top = self._split(key, tree)
                self._seen[key] = top
                loaded[ident] = from_stored(tree, key=key)
        return loaded

    async def _write(self, kind: str, ident: int, data: Data) -> None:
        key = self.layout.data(kind, ident)
        tree = to_stored(data, key=key, where=f"{kind}[{ident}]")
        if self.shared:
            await self._merge_write(key, tree, self.data_ttl)
            return
        top = split_top(tree)
        async with self._hold(key):
            if top == (self._seen.get(key) or {}):
                return
            if not top:
                await self.storage.delete(key)
                self._seen.pop(key, None)
                return
            await self._batched_set(key, tree)
            self._seen[key] = top

    async def _batched_set(self, key: str, tree: Any) -> None:
        """Write ``key`` together with the other writes of this flush, in ``set_many`` batches.

        PTB starts every ``update_*`` of a flush at once; the first one to get
        here schedules one writer for all of them.
        """
        self._pending[key] = tree
        if self._writer is None:
            self._writer = asyncio.ensure_future(self._write_pending())
        await asyncio.shield(self._writer)

    async def _write_pending(self) -> None:
        await asyncio.sleep(0)  # let the rest of this flush's update_* calls queue up
        pending, self._pending, self._writer = self._pending, {}, None
        keys = list(pending)
        for start in range(0, len(keys), _BATCH):
            chunk = {key: pending[key] for key in keys[start : start + _BATCH]}
            await self.storage.set_many(chunk, ttl=self.data_ttl)

    async def _merge_write(self, key: str, tree: Any, ttl: TTL) -> None:
        """Write the top-level keys of ``tree`` changed since this process last saw ``key``.

        One atomic compare-and-set: what another process stored under other
        top-level keys is kept; an empty result deletes the key. One round trip
        when this process holds the key's current version (it wrote or
        refreshed the key last), else a versioned read and the write.
        """
        top = split_top(tree)
        async with self._hold(key):
            base = self._seen.get(key) or {}
            if top == base:
                return
            changed = {
                name: top.get(name, _MISSING)
                for name in base.keys() | top.keys()
                if top.get(name, _MISSING) != base.get(name, _MISSING)
            }

            def apply(merged: dict[Any, Any]) -> dict[Any, Any]:
                for name, value in changed.items():
                    if value is _MISSING:
                        merged.pop(name, None)
                    else:
                        merged[name] = value
                return merged

            def merge(stored: Any) -> Any:
                merged = apply({} if stored is None else self._split(key, stored))
                return join_top(merged) if merged else None

            if not await self._versioned_write(key, apply, ttl):
                await self.storage.update(key, merge, ttl=ttl)
            # What this process's copy now matches; other processes' keys are
            # brought in by the next refresh.
            if top:
                self._seen[key] = top
            else:
                self._seen.pop(key, None)

    async def _versioned_write(
        self, key: str, apply: Callable[[dict[Any, Any]], dict[Any, Any]], ttl: TTL
    ) -> bool:
        """``apply`` the changes to the stored data of ``key`` and compare-and-set it.

        From the version this process last wrote or read (no read), else after one
        ``get_versioned``. ``False`` if the adapter is not ATOMIC or another writer
        got in between: then the caller does a full ``Storage.update``.
        """
        if Capability.ATOMIC not in self.storage.adapter.capabilities:
            return False
        known = self._versions.pop(key, None)
        if known is None:
            got = await self.storage.get_versioned(key)
            version, stored = (None, {}) if got is None else (got[1], self._split(key, got[0]))
        else:
            version, stored = known[0], dict(known[1])
        merged = apply(stored)
        if merged:
            new = await self.storage.set_if(key, join_top(merged), version=version, ttl=ttl)
            if new is None:
                return False
            self._versions[key] = (new, merged)
            return True
        return version is None or await self.storage.delete_if(key, version=version)

    async def _refresh(self, key: str, target: MutableMapping[Any, Any]) -> None:
        async with self._hold(key):
            if Capability.ATOMIC in self.storage.adapter.capabilities:
                got = await self.storage.get_versioned(key)
                tree = None if got is None else got[0]
            else:
                got, tree = None, await self.storage.get(key)
            theirs = {} if tree is None else self._split(key, tree)
            self._versions.pop(key, None)
            if got is not None:
                self._versions[key] = (got[1], theirs)
            base = self._seen.get(key) or {}
            if theirs == base:
                return
            for name in base.keys() | theirs.keys():
                before, after = base.get(name, _MISSING), theirs.get(name, _MISSING)
                if before == after or _changed_here(target, name, before):
                    continue
                if after is _MISSING:
                    del target[name]
                else:
                    target[name] = from_stored(after, key=key)
            if theirs:
                self._seen[key] = theirs
            else:
                self._seen.pop(key, None)

    async def _drop(self, key: str) -> None:
        async with self._hold(key):
            await self.storage.delete(key)
            self._seen.pop(key, None)
            self._versions.pop(key, None)

    @staticmethod
    def _split(key: str, tree: Any) -> dict[Any, Any]:
        try:
            return split_top(tree)
        except ValueError as err:
            raise DecodeError(f"stored PTB data under {key!r} is not a dict: {err}", key) from err

    # -- bot data -----------------------------------------------------------
    async def get_bot_data(self) -> Data:
        """The stored ``bot_data``, or an empty dict."""
        key = self.layout.bot_data
        tree = await self.storage.get(key)
        if tree is None:
            self._seen.pop(key, None)
            return {}
        self._seen[key] = self._split(key, tree)
        result = from_stored(tree, key=key)
        assert isinstance(result, dict)
        return result

    async def update_bot_data(self, data: Data) -> None:
        """Write the top-level keys of ``bot_data`` this process changed, merged atomically."""
        key = self.layout.bot_data
        await self._merge_write(key, to_stored(data, key=key, where="bot_data"), None)

    async def refresh_bot_data(self, bot_data: Data) -> None:
        """Bring in what other processes changed in ``bot_data``, in place."""
        if self.shared:
            await self._refresh(self.layout.bot_data, bot_data)

    # -- callback data ------------------------------------------------------
    async def get_callback_data(self) -> CDCData | None:
        """The stored callback-data cache, or ``None`` if none was stored."""
        key = self.layout.callback_data
        tree = await self.storage.get(key)
        if tree is None:
            return None
        self._seen[key] = tree
        result = from_stored(tree, key=key)
        return result  # type: ignore[no-any-return]

    async def update_callback_data(self, data: CDCData) -> None:
        """Write the callback-data cache (skipped if unchanged)."""
        key = self.layout.callback_data
        tree = to_stored(data, key=key, where="callback_data")
        async with self._hold(key):
            seen = self._seen.get(key, _MISSING)
            if tree == seen or (seen is _MISSING and tree == _EMPTY_CALLBACK_DATA):
                return
            await self.storage.set(key, tree)
            self._seen[key] = tree

    # -- conversations ------------------------------------------------------
    async def get_conversations(self, name: str) -> ConversationDict:
        """Every stored state of the conversation handler ``name``, by conversation key."""
        prefix = self.layout.conversation_prefix(name)
        keys: dict[str, ConversationKey] = {}
        async for full in self.storage.keys(prefix):
            conversation = self.layout.conversation_key(full[len(prefix) :])
            if conversation is not None:
                keys[full] = conversation
        states: ConversationDict = {}
        names = list(keys)
        for start in range(0, len(names), _BATCH):
            found = await self.storage.get_many(names[start : start + _BATCH])
            for full, tree in found.items():
                states[keys[full]] = from_stored(tree, key=full)
        return states

    async def update_conversation(
        self, name: str, key: ConversationKey, new_state: object | None
    ) -> None:
        """Store one conversation's new state; ``None`` (the conversation ended) deletes it."""
        full = self.layout.conversation(name, key)
        if new_state is None:
            await self.storage.delete(full)
            return
        tree = to_stored(
            plain_state(new_state), key=full, where=f"the state of conversation {name!r} {key}"
        )
        await self.storage.set(full, tree, ttl=self.conversation_ttl)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.storage!r}, prefix={self.layout.prefix!r})"


class _Hold:
    """``async with``: the per-key lock of one ``BotstatePersistence``.

    A lock exists only while a task holds or waits for its key. A class, not an
    ``asynccontextmanager``: that costs 2 µs more per use, and every write of a
    flush takes one.
    """

    __slots__ = ("_key", "_locks")

    def __init__(self, locks: dict[str, list[Any]], key: str) -> None:
        self._locks = locks
        self._key = key

    async def __aenter__(self) -> None:
        entry = self._locks.get(self._key)
        if entry is None:
            entry = self._locks[self._key] = [asyncio.Lock(), 0]
        entry[1] += 1
        try:
            await entry[0].acquire()
        except BaseException:
            self._leave(entry)
            raise

    async def __aexit__(self, *exc_info: object) -> None:
        entry = self._locks[self._key]
        entry[0].release()
        self._leave(entry)

    def _leave(self, entry: list[Any]) -> None:
        entry[1] -= 1
        if not entry[1]:
            del self._locks[self._key]


def _changed_here(target: Mapping[Any, Any], name: Any, before: Any) -> bool:
    """Whether this process changed ``target[name]`` since it last read or wrote it."""
    current = target.get(name, _MISSING)
    if current is _MISSING or before is _MISSING:
        return current is not before
    try:
        return bool(to_stored(current, key="", where="") != before)
    except UnstorableValue:
        return True  # it cannot be what was stored


def plain_state(state: object) -> object:
    """A conversation state as stored: ``IntEnum``/``StrEnum`` members as their int/str.

    They compare and hash equal to their value, so the ``ConversationHandler``
    finds the same handlers for the loaded state.
    """
    if isinstance(state, bool):
        return state
    if isinstance(state, int):
        return int(state)
    if isinstance(state, str):
        return str(state)
    return state
