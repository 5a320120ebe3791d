"""Layer 3: sessions, the per-chat / per-user state a bot handler works with.

>>> sessions = Sessions(storage, initial=lambda: {"counter": 0}, ttl=600)
>>> async with sessions.open("chat:1") as session:
...     session.data["counter"] += 1     # saved on exit, only if it changed

Stored values are envelopes ``{"_v": schema version, "_d": data}`` (plus
``"_e"``, the fixed expiry, when ``sliding=False``), encoded by the storage's
codec. Nothing is written when the data did not change, and an untouched
``initial()`` is never written. If the handler raises, nothing is saved.
With ``type=``, ``data`` is decoded into that type after any migrations ran
on the plain stored data (see :func:`botstate.typed.converter`).
"""

from __future__ import annotations

import builtins
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from types import TracebackType
from typing import Any, Generic, Literal, TypeVar

from .capabilities import Capability
from .contract import Version
from .errors import (
    ConfigError,
    ConflictError,
    DecodeError,
    MigrationError,
    UnsupportedOperation,
    UsageError,
)
from .leases import Lease
from .locks import KeyedLock
from .options import seconds
from .storage import TTL, Storage

__all__ = ["Isolation", "MultiSession", "MultiSessions", "Session", "Sessions"]

logger = logging.getLogger("botstate")

T = TypeVar("T")
Isolation = Literal["none", "process", "distributed"]
_ISOLATIONS = ("none", "process", "distributed")
_V, _D, _E = "_v", "_d", "_e"


class Session(Generic[T]):
    """The data of one session key for the duration of one ``open()`` block.

    ``data`` is the value (``initial()`` for a new session). Assign ``data``
    to replace it, set it to ``None`` or call :meth:`clear` to delete the
    session. A lazy session reads storage only on ``await session.load()``.
    """

    def __init__(
        self, sessions: Sessions[T], key: str, full: str, acquire: Callable[[], Awaitable[None]]
    ) -> None:
        self._sessions = sessions
        self.key = key
        self._full = full  # the adapter key, validated once per open()
        self._acquire = acquire
        self._loaded = False
        self._assigned = False
        self._data: T | None = None
        self._raw: bytes | None = None  # the stored bytes, for an existing session
        self._snapshot: bytes | None = None  # encoded initial(), for a new session
        self._exists = False
        self._version: Version | None = None
        self._fixed_expiry: float | None = None

    @property
    def loaded(self) -> bool:
        """Whether storage has been read (or the data assigned) in this block."""
        return self._loaded or self._assigned

    @property
    def data(self) -> T:
        """The session's data. On a lazy session, ``await load()`` first."""
        if not self.loaded:
            raise UsageError(
                f"lazy session {self.key!r} is not loaded yet: use `await session.load()`"
            )
        return self._data  # type: ignore[return-value]

    @data.setter
    def data(self, value: T | None) -> None:
        self._data = value
        self._assigned = True

    def clear(self) -> None:
        """Delete the session when the block ends."""
        self.data = None

    async def load(self) -> T:
        """Read the session (once) and return its data; lazy sessions need this."""
        if not self.loaded:
            await self._acquire()
            await self._sessions._load(self)
        return self.data

    @property
    def changed(self) -> bool:
        """Whether leaving the block would write or delete anything."""
        return self._sessions._pending_write(self) is not None

    def __repr__(self) -> str:
        state = repr(self._data) if self.loaded else "<not loaded>"
        return f"Session({self.key!r}, {state})"


class Sessions(Generic[T]):
    """Opens sessions on a :class:`Storage` with defaults, TTL, migrations and isolation.

    Args:
        storage: where sessions live (any adapter; JSON codec recommended),
            opened without ``type=``: it holds envelopes, not bare data.
        initial: factory of the data of a new session (default: ``None``).
        type: decode ``data`` into this type (dataclass, pydantic model,
            msgspec Struct, TypedDict…), after migrations; data that does not
            fit raises :class:`DecodeError` naming the key and the field.
            Needs ``botstate[msgspec]`` (``botstate[pydantic]`` for a model).
        key: a fixed key, or a function turning the object given to
            :meth:`open` (an update, a context) into a key. Without it,
            ``open()`` takes the key itself.
        ttl: seconds a session lives; ``None`` uses the storage's default.
        sliding: each save pushes the expiry to ``now + ttl`` (default); with
            ``False`` the expiry is fixed when the session is created.
        version / migrations: the schema version of ``data``;
            ``migrations[n]`` turns version ``n - 1`` data into version ``n``.
            Data newer than ``version`` raises :class:`MigrationError`.
        isolation: ``"none"``; ``"process"`` (default: one handler per key at a
            time in this process); ``"distributed"`` (a lease lock in the
            storage, for several processes or hosts; needs ATOMIC).
        lazy: open sessions lazily by default (no I/O until ``load()``).
        on_expire: ``callback(key, data)`` when a session expires; needs an
            adapter with EXPIRY_EVENTS.
        lock_ttl / lock_timeout: lease length and how long to wait for it.
    """

    def __init__(
        self,
        storage: Storage[Any],
        *,
        initial: Callable[[], T] | None = None,
        type: builtins.type[T] | None = None,
        key: str | Callable[[Any], str] | None = None,
        ttl: TTL = None,
        sliding: bool = True,
        version: int = 1,
        migrations: Mapping[int, Callable[[Any], Any]] | None = None,
        isolation: Isolation = "process",
        lazy: bool = False,
        on_expire: Callable[[str, T], Awaitable[None] | None] | None = None,
        lock_ttl: float = 30.0,
        lock_timeout: float = 60.0,
    ) -> None:
        if isolation not in _ISOLATIONS:
            raise ConfigError(
                f"isolation must be one of {', '.join(_ISOLATIONS)}, not {isolation!r}"
            )
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise ConfigError(f"version must be an int >= 1, got {version!r}")
        migrations = dict(migrations or {})
        for step in migrations:
            if not isinstance(step, int) or not 1 <= step <= version:
                raise ConfigError(f"migration key {step!r} must be an int in 1..{version}")
        if not isinstance(sliding, bool):
            raise ConfigError(f"sliding must be True or False, got {sliding!r}")
        lock_ttl_s = seconds(lock_ttl, "lock_ttl", error=ConfigError)
        lock_timeout = seconds(lock_timeout, "lock_timeout", zero=True, error=ConfigError)
        if isolation == "distributed" and Capability.ATOMIC not in storage.adapter.capabilities:
            raise UnsupportedOperation(
                f"isolation='distributed' needs an ATOMIC adapter; "
                f"{builtins.type(storage.adapter).__name__} is not"
            )
        if storage.type is not None:
            raise ConfigError(
                "Sessions stores envelopes: open its storage without type= and pass "
                f"type= to Sessions instead (storage has type={storage.type!r})"
            )
        self.storage = storage
        self.initial = initial
        self.type = type
        self._convert: Callable[[Any], Any] | None = None
        if type is not None:
            from .typed import converter

            self._convert = converter(type)
        self.key = key
        self.ttl = None if ttl is None else seconds(ttl, "ttl", forever=True, error=ConfigError)
        self.sliding = sliding
        self.version = version
        self.migrations = migrations
        self.isolation = isolation
        self.lazy = lazy
        self.lock_ttl = lock_ttl_s
        self.lock_timeout = float(lock_timeout)
        self._locks = KeyedLock()
        # Lease entries live beside the sessions, in the namespace "<namespace>~lock".
        self._lock_storage = (
            storage.with_namespace(f"{storage.namespace or 'botstate'}~lock")
            if isolation == "distributed"
            else None
        )
        self._unsubscribe: Callable[[], None] | None = None
        if on_expire is not None:
            self._unsubscribe = self._subscribe(on_expire)

    # -- opening ----------------------------------------------------------
    def key_for(self, target: Any) -> str:
        """The session key for what was passed to :meth:`open`."""
        if callable(self.key):
            return self.key(target)
        if isinstance(self.key, str):
            return self.key
        if not isinstance(target, str):
            raise ConfigError(
                "Sessions has no key function, so open() needs the key as a str, "
                f"got {type(target).__name__}"
            )
        return target

    def open(self, target: Any = None, *, lazy: bool | None = None) -> _SessionScope[T]:
        """Open the session of ``target`` (a key, or what the key function takes).

        Use as ``async with sessions.open(update) as session``. Saves on normal
        exit if the data changed; saves nothing if the block raises.
        """
        key = self.key_for(target)
        full = self.storage.full_key(key)  # validated before any lock is taken
        return _SessionScope(self, key, full, self.lazy if lazy is None else lazy)

    def handler(
        self, key: Callable[..., Any] | None = None, *, arg: str = "session"
    ) -> Callable[[Callable[..., Awaitable[Any]]], Callable[..., Awaitable[Any]]]:
        """Decorate an async handler so it receives its session as keyword ``arg``.

        ``key(*args, **kwargs)`` gives what :meth:`open` takes (default: the
        first positional argument, e.g. the update). Works with aiogram,
        python-telegram-bot, discord.py or any async handler::

            @sessions.handler(lambda update, context: update.effective_chat.id)
            async def on_message(update, context, session): ...
        """

        def decorate(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
            @functools.wraps(fn)
            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                target = key(*args, **kwargs) if key else (args[0] if args else None)
                async with self.open(target) as session:
                    return await fn(*args, **kwargs, **{arg: session})

            return wrapper

        return decorate

    def _lease(self, key: str) -> Lease:
        assert self._lock_storage is not None  # built for isolation="distributed"
        return Lease(
            self._lock_storage.adapter,
            self._lock_storage.full_key(key),
            ttl=self.lock_ttl,
            timeout=self.lock_timeout,
            clock=self.storage.clock,
        )

    # -- load / save ------------------------------------------------------
    def _new_data(self) -> T | None:
        return self.initial() if self.initial is not None else None

    async def _load(self, session: Session[T]) -> None:
        adapter, full = self.storage.adapter, session._full
        if self.isolation == "distributed":
            got = await adapter.get_versioned(full)
            raw, session._version = (None, None) if got is None else got
        else:
            raw = await adapter.get(full)
        if raw is None:
            data = self._new_data()
            session._exists = False
            # Snapshot initial() so an untouched new session is not written.
            session._snapshot = None if data is None else self.storage.encode(session.key, data)
        else:
            data = self._typed(
                session.key, self._unwrap(session, self.storage.decode(session.key, raw))
            )
            session._exists = True
            session._raw = raw
        session._data = data
        session._loaded = True

    def _unwrap(self, session: Session[T], stored: Any) -> T:
        if isinstance(stored, dict) and _V in stored and _D in stored:
            found, data, session._fixed_expiry = stored[_V], stored[_D], stored.get(_E)
        else:
            found, data = (0, stored) if 1 in self.migrations else (self.version, stored)
        if not isinstance(found, int) or found > self.version:
            raise MigrationError(
                f"session {session.key!r} has schema version {found!r}, newer than this "
                f"code's version {self.version}; refusing to downgrade it"
            )
        for step in range(found + 1, self.version + 1):
            migrate = self.migrations.get(step)
            if migrate is None:
                raise MigrationError(
                    f"session {session.key!r} is at version {found} but there is no "
                    f"migration to version {step}"
                )
            try:
                data = migrate(data)
            except Exception as err:
                raise MigrationError(
                    f"migration to version {step} failed for session {session.key!r}: {err}"
                ) from err
        return data  # type: ignore[no-any-return]

    def _typed(self, key: str, data: Any) -> T:
        """``data`` (plain, migrated) decoded into ``type``; unchanged without a type."""
        if self._convert is None or data is None:
            return data  # type: ignore[no-any-return]
        try:
            return self._convert(data)  # type: ignore[no-any-return]
        except ValueError as err:
            raise DecodeError(f"session {key!r}: {err}", key) from err

    def _pending_write(
        self, session: Session[T]
    ) -> tuple[bytes, float | None] | Literal["delete"] | None:
        """What saving would do: ``(bytes, expires_at)``, ``"delete"``, or ``None``.

        Unchanged means: the envelope encodes to exactly the stored bytes (one
        encode, no copy of the data kept), or, for a new session, the data
        encodes to what ``initial()`` did.
        """
        if not session.loaded:
            return None
        if session._data is None:
            # Deleting matters if something is stored, or may be (assigned unread).
            return "delete" if session._exists or not session._loaded else None
        new = session._loaded and not session._exists and session._snapshot is not None
        if new and self.storage.encode(session.key, session._data) == session._snapshot:
            return None
        if self.sliding or session._fixed_expiry is None:
            expires_at = self.storage.expires_at(self.ttl)
        else:
            expires_at = session._fixed_expiry
        envelope: dict[str, Any] = {_V: self.version, _D: session._data}
        if not self.sliding and expires_at is not None:
            envelope[_E] = expires_at
        data = self.storage.encode(session.key, envelope)
        if data == session._raw:  # migrated data differs: its envelope has the new version
            return None
        return data, expires_at

    async def _save(self, session: Session[T]) -> None:
        pending = self._pending_write(session)
        if pending is None:
            return
        adapter, full = self.storage.adapter, session._full
        distributed = self.isolation == "distributed" and session._loaded
        if pending == "delete":
            if distributed and session._version is not None:
                await adapter.delete_if(full, version=session._version)
            else:
                await adapter.delete(full)
            return
        data, expires_at = pending
        if expires_at is not None and not self.sliding and expires_at <= self.storage.clock():
            return  # the session's fixed lifetime is over; let it expire
        if distributed:
            if not await adapter.set_if(
                full, data, version=session._version, expires_at=expires_at
            ):
                raise ConflictError(
                    f"session {session.key!r} was changed by another holder while this one "
                    "held the lock (lease expired?); this update was not saved"
                )
        else:
            await adapter.set(full, data, expires_at=expires_at)

    # -- expiry -----------------------------------------------------------
    def _subscribe(
        self, callback: Callable[[str, T], Awaitable[None] | None]
    ) -> Callable[[], None]:
        def relay(key: str, stored: Any) -> Awaitable[None] | None:
            # Only session envelopes: lock entries and foreign values are not sessions.
            if not (isinstance(stored, dict) and _V in stored and _D in stored):
                return None
            try:
                data = self._typed(key, stored[_D])
            except DecodeError as err:
                logger.warning("expired session %r does not fit its type: %s", key, err)
                return None
            return callback(key, data)

        return self.storage.on_expire(relay)

    def close(self) -> None:
        """Stop delivering expiry callbacks (the storage stays open)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    @property
    def idle_locks(self) -> int:
        """Per-key process locks currently allocated (0 when no handler runs)."""
        return len(self._locks)


class _SessionScope(Generic[T]):
    """``async with sessions.open(...)``: lock, load, yield the session, save, unlock."""

    __slots__ = (
        "_before",
        "_full",
        "_hold",
        "_key",
        "_lazy",
        "_lease",
        "_locked",
        "_session",
        "_sessions",
    )

    def __init__(self, sessions: Sessions[T], key: str, full: str, lazy: bool) -> None:
        self._sessions = sessions
        self._key = key
        self._full = full
        self._lazy = lazy
        # Scopes that must be locked before this one (MultiSessions: the parts
        # before it), so lazy parts loaded in any order still lock in one order.
        self._before: tuple[_SessionScope[Any], ...] = ()
        self._locked = False
        self._hold: Any = None
        self._lease: Lease | None = None
        self._session: Session[T] | None = None

    async def _acquire(self) -> None:
        if self._locked:
            return
        for earlier in self._before:
            await earlier._acquire()
        self._locked = True
        sessions = self._sessions
        if sessions.isolation == "none":
            return
        hold = sessions._locks.hold(self._key)
        await hold.__aenter__()
        self._hold = hold
        if sessions.isolation == "distributed":
            lease = sessions._lease(self._key)
            await lease.acquire()
            self._lease = lease

    async def _release(self) -> None:
        lease, hold = self._lease, self._hold
        self._lease = self._hold = None
        try:
            if lease is not None:
                await lease.release()
        finally:
            if hold is not None:
                await hold.__aexit__(None, None, None)

    async def __aenter__(self) -> Session[T]:
        session: Session[T] = Session(self._sessions, self._key, self._full, self._acquire)
        self._session = session
        if not self._lazy:
            try:
                await session.load()
            except BaseException:
                await self._release()
                raise
        return session

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session = self._session
        try:
            if exc_type is None and session is not None and session.loaded:
                await self._acquire()  # data assigned without load(): write under the lock
                await self._sessions._save(session)
        finally:
            await self._release()


class MultiSession:
    """Several named sessions opened together: ``multi["user"]`` or ``multi.user``."""

    def __init__(self, parts: Mapping[str, Session[Any]]) -> None:
        self._parts = dict(parts)

    def __getitem__(self, name: str) -> Session[Any]:
        return self._parts[name]

    def __getattr__(self, name: str) -> Session[Any]:
        try:
            return self._parts[name]
        except KeyError:
            raise AttributeError(name) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._parts)

    def __repr__(self) -> str:
        return f"MultiSession({self._parts!r})"


class MultiSessions:
    """Named :class:`Sessions` opened as one, each with its own storage, key and initial.

    >>> multi = MultiSessions({"user": user_sessions, "chat": chat_sessions})
    >>> async with multi.open(update) as s:
    ...     s.user.data["lang"] = "en"; s.chat.data["messages"] += 1

    Parts are locked in the order given, so concurrent handlers cannot deadlock:
    loading a lazy part first takes the locks of the parts before it (locks
    only, no reads). Each part keeps its own ``lazy`` setting (or pass
    ``lazy=`` to override all).
    """

    def __init__(self, parts: Mapping[str, Sessions[Any]]) -> None:
        if not parts:
            raise ConfigError("MultiSessions needs at least one part")
        self.parts = dict(parts)

    @asynccontextmanager
    async def open(
        self, target: Any = None, *, lazy: bool | None = None
    ) -> AsyncIterator[MultiSession]:
        async with AsyncExitStack() as stack:
            opened: dict[str, Session[Any]] = {}
            scopes: list[_SessionScope[Any]] = []
            for name, part in self.parts.items():
                scope = part.open(target, lazy=lazy)
                scope._before = tuple(scopes)
                scopes.append(scope)
                opened[name] = await stack.enter_async_context(scope)
            yield MultiSession(opened)
