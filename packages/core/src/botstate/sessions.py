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

Who owns what: a :class:`Session` holds the state of one opened key (its
data, what was read, the version) and loads and saves itself; :class:`Sessions`
is the factory and the policy (initial, TTL, migrations, isolation) and does
the reading and writing, through the public :class:`~botstate.storage.Storage`
API only.
"""

from __future__ import annotations

import builtins
import functools
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from types import TracebackType
from typing import Any, Generic, Literal, TypeAlias, TypeVar

from .capabilities import Capability
from .contract import Version
from .entry import Entry
from .errors import (
    ConfigError,
    ConflictError,
    DecodeError,
    InvalidArgument,
    MigrationError,
    UnsupportedOperation,
    UsageError,
)
from .locks import Hold, KeyedLock, Lock
from .options import seconds
from .storage import FOREVER, TTL, Storage

__all__ = ["Isolation", "MultiSession", "MultiSessions", "Session", "Sessions"]

logger = logging.getLogger("botstate")

T = TypeVar("T")
Isolation = Literal["none", "process", "distributed"]
_ISOLATIONS = ("none", "process", "distributed")
_V, _D, _E = "_v", "_d", "_e"


class _Stored:
    """What a session's key holds as far as this block knows (after a read or a write)."""

    __slots__ = ("fixed_expiry", "raw", "read", "snapshot", "version", "versioned")

    def __init__(
        self,
        read: bool = True,  # False: assigned without a read, so what is stored is unknown
        raw: bytes | None = None,  # the stored bytes; None: nothing stored (or not read)
        snapshot: bytes | None = None,  # a new session: initial() encoded, to spot "untouched"
        version: Version | None = None,  # for compare-and-set (isolation="distributed")
        versioned: bool = False,  # whether ``version`` is known (read or written with one)
        fixed_expiry: float | None = None,  # the envelope's "_e" (sliding=False)
    ) -> None:
        self.read = read
        self.raw = raw
        self.snapshot = snapshot
        self.version = version
        self.versioned = versioned
        self.fixed_expiry = fixed_expiry


_UNREAD = _Stored(read=False)


_Write: TypeAlias = "tuple[bytes | None, float | None]"
"""What saving does: store the bytes until the expiry, or delete (bytes ``None``)."""


class Session(Generic[T]):
    """The data of one session key for the duration of one ``open()`` block.

    ``data`` is the value (``initial()`` for a new session). Assign ``data``
    to replace it, set it to ``None`` or call :meth:`clear` to delete the
    session. A lazy session reads storage only on ``await session.load()``;
    its ``data`` before that raises :class:`~botstate.errors.UsageError`.
    """

    def __init__(
        self, sessions: Sessions[T], entry: Entry, acquire: Callable[[], Awaitable[None]]
    ) -> None:
        self.key = entry.key
        self._entry = entry  # the storage key, validated once per open()
        self._sessions = sessions
        self._acquire = acquire  # takes the block's lock (once) before any I/O
        self._stored: _Stored | None = None  # None: storage not read in this block
        self._data: T | None = None
        self._assigned = False

    @property
    def loaded(self) -> bool:
        """Whether storage has been read (or the data assigned) in this block."""
        return self._stored is not None or self._assigned

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
        if self._stored is None and not self._assigned:
            await self._acquire()
            self._data, self._stored = await self._sessions._read(self._entry)
        return self._data  # type: ignore[return-value]

    @property
    def changed(self) -> bool:
        """Whether saving now would write or delete anything."""
        if not self.loaded:
            return False
        return self._sessions._plan(self.key, self._data, self._stored or _UNREAD) is not None

    async def save(self) -> None:
        """Write the session now if it changed (the block does this on normal exit).

        Later saves in the same block write only what changed since; with
        ``isolation="distributed"`` the next save is compare-and-set on the
        version this one wrote.
        """
        stored = self._stored
        if stored is None:
            if not self._assigned:
                return  # nothing read, nothing assigned: nothing to save
            stored = _UNREAD
            await self._acquire()  # data assigned without load(): write under the lock
        self._stored = await self._sessions._save(self._entry, self._data, stored)

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
            time in this process); ``"distributed"`` (``storage.lock(key)``,
            a lease in the storage, for several processes or hosts; needs
            ATOMIC; saves are compare-and-set).
        lazy: open sessions lazily by default (no I/O until ``load()``).
        on_expire: ``callback(key, data)`` when a session expires; needs an
            adapter with EXPIRY_EVENTS. ``await sessions.close()`` stops it.
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
        self._distributed = isolation == "distributed"
        self._locks = KeyedLock()  # isolation="process"
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
            hint = ""
            if isinstance(target, int) and not isinstance(target, bool):
                hint = f" (for a chat or user id say which: chat_key({target}), user_key(...))"
            raise ConfigError(
                "Sessions has no key function, so open() needs the key as a str, "
                f"got {type(target).__name__}{hint}"
            )
        return target

    def open(self, target: Any = None, *, lazy: bool | None = None) -> _SessionScope[T]:
        """Open the session of ``target`` (a key, or what the key function takes).

        Use as ``async with sessions.open(update) as session``. Saves on normal
        exit if the data changed; saves nothing if the block raises.
        """
        return self._scope(target, lazy, ())

    def _scope(
        self, target: Any, lazy: bool | None, before: tuple[_SessionScope[Any], ...]
    ) -> _SessionScope[T]:
        entry = Entry(self.storage, self.key_for(target))  # validated before any lock
        return _SessionScope(self, entry, self.lazy if lazy is None else lazy, before)

    def handler(
        self, key: Callable[..., Any] | None = None, *, arg: str = "session"
    ) -> Callable[[Callable[..., Awaitable[Any]]], Callable[..., Awaitable[Any]]]:
        """Decorate an async handler so it receives its session as keyword ``arg``.

        ``key(*args, **kwargs)`` gives what :meth:`open` takes (default: the
        first positional argument, e.g. the update); it gets only the
        arguments it declares, so ``lambda message: message.chat.id`` works
        where aiogram also passes ``state=``, ``bot=``… Works with aiogram,
        python-telegram-bot, discord.py or any async handler; a synchronous
        one is refused with :class:`InvalidArgument` (see ``botstate.sync``)::

            @sessions.handler(lambda update, context: chat_key(update.effective_chat.id))
            async def on_message(update, context, session): ...
        """

        def decorate(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
            if not (
                inspect.iscoroutinefunction(fn)
                or inspect.iscoroutinefunction(getattr(fn, "__call__", None))  # noqa: B004
            ):
                # A sync handler would get a coroutine nobody awaits: nothing stored, no error.
                raise InvalidArgument(
                    f"{getattr(fn, '__name__', fn)!r} is not async: Sessions.handler wraps "
                    "async handlers; for synchronous bots use botstate.sync.SyncSessions"
                )

            pick = _taking_what_it_declares(key) if key else None

            @functools.wraps(fn)
            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                target = pick(*args, **kwargs) if pick else (args[0] if args else None)
                async with self.open(target) as session:
                    return await fn(*args, **kwargs, **{arg: session})

            return wrapper

        return decorate

    def _lock(self, key: str) -> Lock | Hold | None:
        """The lock a block on ``key`` holds, per ``isolation`` (``None``: no lock)."""
        if self._distributed:
            return self.storage.lock(key, ttl=self.lock_ttl, timeout=self.lock_timeout)
        if self.isolation == "process":
            return self._locks.hold(key)
        return None

    # -- read / write (called by Session) ---------------------------------
    async def _read(self, entry: Entry) -> tuple[T | None, _Stored]:
        """Read ``entry``: its current data (migrated, or ``initial()``) and what is stored.

        Bytes, not values: saving compares the bytes it would write with these.
        """
        key = entry.key
        version: Version | None = None
        if self._distributed:
            got = await entry.get_versioned()
            raw, version = (None, None) if got is None else got
        else:
            raw = await entry.get()
        if raw is None:
            data = self.initial() if self.initial is not None else None
            # Snapshot initial() so an untouched new session is not written.
            snapshot = None if data is None else self.storage.encode(key, data)
            return data, _Stored(snapshot=snapshot, versioned=self._distributed)
        plain, fixed_expiry = self._upgrade(key, self.storage.decode(key, raw))
        data = self._typed(key, plain)
        return data, _Stored(True, raw, None, version, self._distributed, fixed_expiry)

    def _typed(self, key: str, data: Any) -> T:
        """``data`` (plain, migrated) decoded into ``type``; unchanged without a type."""
        if self._convert is None or data is None:
            return data  # type: ignore[no-any-return]
        try:
            return self._convert(data)  # type: ignore[no-any-return]
        except ValueError as err:
            raise DecodeError(f"session {key!r}: {err}", key) from err

    def _upgrade(self, key: str, stored: Any) -> tuple[T, float | None]:
        """The data in a stored value brought to ``version``, and its fixed expiry."""
        fixed_expiry = None
        if isinstance(stored, dict) and _V in stored and _D in stored:
            found, data, fixed_expiry = stored[_V], stored[_D], stored.get(_E)
        else:
            found, data = (0, stored) if 1 in self.migrations else (self.version, stored)
        if not isinstance(found, int) or found > self.version:
            raise MigrationError(
                f"session {key!r} has schema version {found!r}, newer than this "
                f"code's version {self.version}; refusing to downgrade it"
            )
        for step in range(found + 1, self.version + 1):
            migrate = self.migrations.get(step)
            if migrate is None:
                raise MigrationError(
                    f"session {key!r} is at version {found} but there is no "
                    f"migration to version {step}"
                )
            try:
                data = migrate(data)
            except Exception as err:
                raise MigrationError(
                    f"migration to version {step} failed for session {key!r}: {err}"
                ) from err
        return data, fixed_expiry

    def _plan(self, key: str, data: T | None, stored: _Stored) -> _Write | None:
        """What saving ``data`` would do, given what is stored.

        Unchanged means: the envelope encodes to exactly the stored bytes (one
        encode, no copy of the data kept), or, for a new session, the data
        encodes to what ``initial()`` did.
        """
        if data is None:
            # Deleting matters if something is stored, or may be (assigned unread).
            return (None, None) if stored.raw is not None or not stored.read else None
        if stored.snapshot is not None and self.storage.encode(key, data) == stored.snapshot:
            return None
        envelope: dict[str, Any] = {_V: self.version, _D: data}
        expires_at = None  # sliding: the write's ttl sets it
        if not self.sliding:
            expires_at = stored.fixed_expiry
            if expires_at is None:
                expires_at = self.storage.expires_at(self.ttl)
            if expires_at is not None:
                envelope[_E] = expires_at
        encoded = self.storage.encode(key, envelope)
        if encoded == stored.raw:
            return None  # migrated data differs: its envelope has the new version
        return encoded, expires_at

    async def _save(self, entry: Entry, value: T | None, stored: _Stored) -> _Stored:
        """Save ``value`` if it changed; return what is stored afterwards."""
        key = entry.key
        plan = self._plan(key, value, stored)
        if plan is None:
            return stored
        data, expires_at = plan
        if data is None:
            if stored.versioned and stored.version is not None:
                await entry.delete_if(version=stored.version)
            else:
                await entry.delete()
            return _Stored(versioned=stored.versioned)  # absent: a next save creates it
        ttl: TTL = self.ttl
        if not self.sliding:
            if expires_at is None:
                ttl = FOREVER
            elif expires_at <= self.storage.clock():
                return stored  # the session's fixed lifetime is over; let it expire
            else:
                ttl = expires_at - self.storage.clock()
        fixed = None if self.sliding else expires_at
        if stored.versioned:
            version = await entry.set_if(data, version=stored.version, ttl=ttl)
            if version is None:
                raise ConflictError(
                    f"session {key!r} was changed by another holder while this one "
                    "held the lock (lease expired?); this update was not saved"
                )
            return _Stored(True, data, None, version, True, fixed)
        await entry.set(data, ttl=ttl)
        return _Stored(True, data, None, None, False, fixed)

    # -- expiry -----------------------------------------------------------
    def _subscribe(
        self, callback: Callable[[str, T], Awaitable[None] | None]
    ) -> Callable[[], None]:
        def relay(key: str, stored: Any) -> Awaitable[None] | None:
            # Only session envelopes: foreign values are not sessions.
            if not (isinstance(stored, dict) and _V in stored and _D in stored):
                return None
            try:
                data = self._typed(key, stored[_D])
            except DecodeError as err:
                logger.warning("expired session %r does not fit its type: %s", key, err)
                return None
            return callback(key, data)

        return self.storage.on_expire(relay)

    async def close(self) -> None:
        """Stop delivering expiry callbacks (the storage stays open). Idempotent."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    @property
    def idle_locks(self) -> int:
        """Per-key process locks currently allocated (0 when no handler runs)."""
        return len(self._locks)


class _SessionScope(Generic[T]):
    """``async with sessions.open(...)``: lock, load, yield the session, save, unlock."""

    __slots__ = ("_before", "_entry", "_lazy", "_lock", "_session", "_sessions")

    def __init__(
        self,
        sessions: Sessions[T],
        entry: Entry,
        lazy: bool,
        before: tuple[_SessionScope[Any], ...] = (),
    ) -> None:
        self._sessions = sessions
        self._entry = entry
        self._lazy = lazy
        # Scopes that must be locked before this one (MultiSessions: the parts
        # before it), so lazy parts loaded in any order still lock in one order.
        self._before = before
        self._lock: Lock | Hold | None = None
        self._session: Session[T] | None = None

    async def _acquire(self) -> None:
        """Take this block's lock (after the earlier parts' locks); once."""
        if self._lock is not None:
            return
        for earlier in self._before:
            await earlier._acquire()
        lock = self._sessions._lock(self._entry.key)
        if lock is None:
            return
        self._lock = lock  # set first: a concurrent load() of this block does not lock twice
        try:
            await lock.acquire()
        except BaseException:
            self._lock = None
            raise

    async def _release(self, *, quiet: bool) -> None:
        lock, self._lock = self._lock, None
        if lock is None:
            return
        if not isinstance(lock, Lock):
            lock.release()  # the in-process lock (isolation="process")
            return
        try:
            await lock.release()  # a lost lease is fine here: saves were compare-and-set
        except Exception as err:
            if not quiet:
                raise
            logger.warning("releasing the lock of session %r failed: %s", self._entry.key, err)

    async def __aenter__(self) -> Session[T]:
        session: Session[T] = Session(self._sessions, self._entry, self._acquire)
        self._session = session
        if not self._lazy:
            try:
                await session.load()
            except BaseException:
                await self._release(quiet=True)
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
            if exc_type is None and session is not None:
                await session.save()
        except BaseException:
            await self._release(quiet=True)
            raise
        await self._release(quiet=exc_type is not None)


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
                scope = part._scope(target, lazy, tuple(scopes))
                scopes.append(scope)
                opened[name] = await stack.enter_async_context(scope)
            yield MultiSession(opened)


def _taking_what_it_declares(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` called with only the positional and keyword arguments it declares.

    Frameworks pass handlers more than a key function needs (aiogram adds
    ``state=``, ``bot=``…; PTB passes ``update, context``).
    """
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):  # no signature to read: pass everything
        return fn
    kinds = {p.kind for p in params}
    if inspect.Parameter.VAR_POSITIONAL in kinds and inspect.Parameter.VAR_KEYWORD in kinds:
        return fn
    positional = sum(
        p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        for p in params
    )
    names = {p.name for p in params if p.kind is not inspect.Parameter.POSITIONAL_ONLY}
    any_positional = inspect.Parameter.VAR_POSITIONAL in kinds
    any_keyword = inspect.Parameter.VAR_KEYWORD in kinds

    def call(*args: Any, **kwargs: Any) -> Any:
        if not any_positional:
            args = args[:positional]
        if not any_keyword:
            kwargs = {name: value for name, value in kwargs.items() if name in names}
        return fn(*args, **kwargs)

    return call
