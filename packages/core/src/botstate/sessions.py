"""Layer 3: sessions, the per-chat / per-user state a bot handler works with.

>>> sessions = Sessions(storage, initial=lambda: {"counter": 0}, ttl=600)
>>> async with sessions.open("chat:1") as session:
...     session.data["counter"] += 1     # saved on exit, only if it changed

Stored values are envelopes ``{"_v": schema version, "_d": data}`` (plus
``"_e"``, the fixed expiry, when ``sliding=False``, and ``"_l"``, the lock of
an ``isolation="distributed"`` holder, which readers ignore), encoded by the
storage's codec. Nothing is written when the data did not change, and an untouched
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
import marshal
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeAlias, TypeVar

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
from .leases import BUSY, Busy, Lease
from .locks import Hold, KeyedLock, Lock
from .options import seconds
from .storage import FOREVER, TTL, Storage

if TYPE_CHECKING:
    import asyncio  # imported where used: `import botstate` loads no asyncio

__all__ = ["Isolation", "MultiSession", "MultiSessions", "Session", "Sessions"]

logger = logging.getLogger("botstate")

T = TypeVar("T")
S = TypeVar("S")  # the kind of session a MultiSession holds (botstate.sync reuses it)
Isolation = Literal["none", "process", "distributed"]
_ISOLATIONS = ("none", "process", "distributed")
_V, _D, _E, _L = "_v", "_d", "_e", "_l"


class _Stored:
    """What a session's key holds as far as this block knows (after a read or a write)."""

    __slots__ = ("fixed_expiry", "image", "raw", "read", "snapshot", "version", "versioned")

    def __init__(
        self,
        read: bool = True,  # False: assigned without a read, so what is stored is unknown
        raw: bytes | None = None,  # the stored bytes; None: nothing stored (or not read)
        snapshot: bytes | None = None,  # a new session: initial() encoded, to spot "untouched"
        version: Version | None = None,  # for compare-and-set (isolation="distributed")
        versioned: bool = False,  # whether ``version`` is known (read or written with one)
        fixed_expiry: float | None = None,  # the envelope's "_e" (sliding=False)
        image: bytes | None = None,  # the data as read, see _image; None: compare encodings
    ) -> None:
        self.read = read
        self.raw = raw
        self.snapshot = snapshot
        self.version = version
        self.versioned = versioned
        self.fixed_expiry = fixed_expiry
        self.image = image


def _image(data: Any) -> bytes | None:
    """An image of ``data`` that changes whenever its encoding could, or ``None``.

    Unchanged data is spotted by comparing images taken on load and on save:
    ``marshal`` at format version 2 (no shared references, so the bytes depend
    on nothing but types and values) is exact about types (``1``, ``1.0`` and
    ``True`` differ, as in JSON) and order, and costs a fraction of encoding.
    It refuses other types than the plain built-in ones (subclasses,
    dataclasses, datetimes…): those sessions compare encoded bytes instead.
    """
    try:
        return marshal.dumps(data, 2)
    except ValueError:
        return None


_UNREAD = _Stored(read=False)
_UNDECODED: Any = object()  # Sessions._loaded() without an already decoded value


_Write: TypeAlias = "tuple[bytes | None, float | None, dict[str, Any] | None]"
"""What saving does: store the bytes (of the envelope given third) until the
expiry, or delete (bytes ``None``)."""


class Session(Generic[T]):
    """The data of one session key for the duration of one ``open()`` block.

    ``data`` is the value (``initial()`` for a new session). Assign ``data``
    to replace it, set it to ``None`` or call :meth:`clear` to delete the
    session. A lazy session reads storage only on ``await session.load()``;
    its ``data`` before that raises :class:`~botstate.errors.UsageError`.

    :meth:`Sessions.open` returns it unentered: ``async with`` it once (the
    block locks, loads, saves and unlocks; see ``__aenter__``/``__aexit__``).
    The session is its own context manager, so opening one makes one object.
    Entering it again, or ``load()`` outside its block, raises
    :class:`~botstate.errors.UsageError` (it could take a lock nothing releases).
    """

    __slots__ = (
        "_assigned",
        "_before",
        "_block",
        "_data",
        "_entry",
        "_full",
        "_held",
        "_lazy",
        "_lease",
        "_lock",
        "_sessions",
        "_stored",
        "key",
    )

    def __init__(
        self,
        sessions: Sessions[T],
        key: str,
        full: str,
        lazy: bool,
        before: tuple[Session[Any], ...] = (),
    ) -> None:
        self.key = key
        self._full = full  # the storage key (sessions.storage.full_key(key): validated)
        self._entry: Entry | None = None  # made by _the_entry() when first needed
        self._sessions = sessions
        self._lazy = lazy
        # Sessions that must be locked before this one (MultiSessions: the parts
        # before it), so lazy parts loaded in any order still lock in one order.
        self._before = before
        # The block's lock, taken once before any I/O: ``_held`` when a free key was
        # taken at once in-process (the key's waiter list, no lock object), else
        # ``_lock``; _acquire() returns the entry's lease (isolation="distributed"),
        # which read the entry while taking it.
        self._held: list[asyncio.Future[None]] | None = None
        self._lock: Lock | Hold | None = None
        self._lease: _EntryLease | None = None  # set once the lock is taken
        self._stored: _Stored | None = None  # None: storage not read in this block
        self._data: T | None = None
        self._assigned = False
        self._block = 0  # 0: not entered yet, 1: inside its block, 2: the block ended

    @property
    def loaded(self) -> bool:
        """Whether storage has been read (or the data assigned) in this block."""
        return self._stored is not None or self._assigned

    @property
    def data(self) -> T:
        """The session's data. On a lazy session, ``await load()`` first."""
        if self._stored is None and not self._assigned:  # not self.loaded, inlined
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
            if self._block != 1:
                raise UsageError(
                    f"session {self.key!r}: load() works inside its "
                    "`async with sessions.open(...)` block only"
                )
            if not self._take_now():
                self._lease = await self._acquire()
            reading = self._sessions._reading(self._the_entry(), self._lease)
            self._got(None if reading is None else await reading)
        return self._data  # type: ignore[return-value]

    def _got(self, got: Any) -> None:
        """Take what :meth:`Sessions._reading` returned as this block's data and stored state."""
        self._data, self._stored = self._sessions._loaded(self.key, got, self._lease)

    @property
    def changed(self) -> bool:
        """Whether saving now would write or delete anything."""
        if not self.loaded:
            return False
        return self._sessions._plan(self.key, self._data, self._stored or _UNREAD) is not None

    def _unchanged(self) -> bool:
        """Whether the data read is certainly unchanged (so saving writes nothing).

        The usual exit, in short: its image (see :func:`_image`) is the one
        taken on load. ``False`` means "ask :meth:`_saving`", not "changed".
        """
        stored = self._stored
        if stored is None or stored.image is None or self._data is None:
            return False
        try:
            return marshal.dumps(self._data, 2) == stored.image  # type: ignore[arg-type]
        except ValueError:  # now holds what marshal refuses: not the data imaged
            return False

    def _saving(self) -> Awaitable[None] | None:
        """What the block's normal exit awaits to save; ``None``: nothing to save, no I/O."""
        stored = self._stored
        if stored is None:
            return self.save() if self._assigned else None
        plan = self._sessions._plan(self.key, self._data, stored)
        return None if plan is None else self._write(stored, plan)

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
            self._lease = await self._acquire()  # assigned without load(): write locked
        plan = self._sessions._plan(self.key, self._data, stored)
        if plan is not None:
            await self._write(stored, plan)

    async def _write(self, stored: _Stored, plan: _Write) -> None:
        self._stored = await self._sessions._save(self._the_entry(), plan, stored, self._lease)

    async def _finish(self) -> _EntryLease | None:
        """On a normal exit with ``isolation="distributed"``: hand what to save to the lease.

        The lease's release then writes it (one ``set_if`` that saves and
        unlocks at once). Returns the lease when it has something to save.
        """
        if self._stored is None and not self._assigned:
            return None
        lease = self._lease = await self._acquire()
        plan = self._sessions._plan(self.key, self._data, self._stored or _UNREAD)
        if lease is None or plan is None:
            return None
        lease.finish(plan[0], plan[2])
        return lease

    def _the_entry(self) -> Entry:
        """This session's :class:`Entry` (made once, when a block first needs one)."""
        entry = self._entry
        if entry is None:
            entry = self._entry = Entry(self._sessions.storage, self.key)
        return entry

    # -- the block: lock, load, save, unlock --------------------------------
    def _take_now(self) -> bool:
        """Hold this block's lock now if that needs no wait and no I/O; ``False``: await
        :meth:`_acquire`. (A handler's usual case, isolation "none" or "process" on a
        free key, without the awaits.)"""
        if self._held is not None or self._lock is not None or self._before:
            return False
        sessions = self._sessions
        if sessions._process:
            self._held = sessions._locks.take(self.key)
            return self._held is not None
        return sessions.isolation == "none"

    async def _acquire(self) -> _EntryLease | None:
        """Take this block's lock (after the earlier parts' locks), once; return its lease."""
        if self._held is not None or self._lock is not None:
            return self._lease
        for earlier in self._before:
            await earlier._acquire()
        lock, lease = self._sessions._lock(self._the_entry())
        if lock is None:
            return None
        self._lock, self._lease = lock, lease  # first: a concurrent load() does not lock twice
        try:
            await lock.acquire()
        except BaseException:
            self._lock = self._lease = None
            raise
        return lease

    def _let_go(self) -> None:
        """Release the in-process lock taken by :meth:`_take_now`, if held."""
        held, self._held = self._held, None
        if held is not None:
            self._sessions._locks.give_back(self.key, held)

    async def _release(self, *, quiet: bool) -> None:
        self._let_go()
        lock, self._lock = self._lock, None
        if lock is None:
            return
        if not isinstance(lock, Lock):
            lock.release()  # the in-process lock (isolation="process")
            return
        lease = self._lease
        saving = lease is not None and lease.saving and not quiet
        try:
            await lock.release()  # distributed: writes the session's change and unlocks at once
        except Exception as err:
            if not quiet:
                raise
            logger.warning("releasing the lock of session %r failed: %s", self.key, err)
            return
        if saving and lock.lost:
            raise _lost_lease(self.key)

    async def __aenter__(self) -> Session[T]:
        if self._block:
            raise UsageError(
                f"session {self.key!r} was opened already: each `async with` needs "
                "its own sessions.open(...)"
            )
        self._block = 1
        if not self._lazy:
            try:
                if self._take_now():
                    # load() without its coroutine for a free key, and _reading() and
                    # _got() inlined, on the adapter itself (no Entry made: a block
                    # that only reads needs none): every handler's hot path.
                    sessions = self._sessions
                    adapter = sessions._adapter
                    atomic = sessions._atomic
                    got: Any = await (
                        adapter.get_versioned(self._full) if atomic else adapter.get(self._full)
                    )
                    if got is None or sessions._convert is not None:
                        self._data, self._stored = sessions._loaded(self.key, got, None)
                        return self
                    raw, version = got if atomic else (got, None)
                    stored = sessions.storage.decode(self.key, raw)
                    if not sessions._is_current(stored):
                        self._data, self._stored = sessions._loaded(self.key, got, None, stored)
                        return self
                    # _loaded()'s common case (no lock in it, no migration, no type) inlined.
                    data = self._data = stored[_D]
                    try:  # _image(data) inlined
                        image: bytes | None = marshal.dumps(data, 2)
                    except ValueError:
                        image = None
                    self._stored = _Stored(True, raw, None, version, atomic, stored.get(_E), image)
                else:
                    await self.load()
            except BaseException:
                self._block = 2
                await self._release(quiet=True)
                raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._block = 2
        try:
            if exc_type is None:
                sessions = self._sessions
                stored = self._stored
                if sessions._distributed:
                    await self._finish()  # the release below saves
                elif self._unchanged():
                    pass
                elif (
                    stored is not None
                    and stored.image is not None
                    and stored.versioned
                    and sessions.sliding
                    and self._data is not None
                ):
                    # A handler's usual save (read, changed, sliding expiry, ATOMIC
                    # adapter): _saving(), _write(), _save() and Entry.set_if() inlined.
                    plan = sessions._plan(self.key, self._data, stored, imaged=True)
                    if plan is not None:
                        raw = plan[0]
                        if type(raw) is not bytes:  # a codec gave something else
                            await self._write(stored, plan)  # Entry.set_if says so
                        else:
                            storage = sessions.storage
                            version = await sessions._adapter.set_if(
                                self._full,
                                raw,
                                version=stored.version,
                                expires_at=storage.expires_at(sessions.ttl),
                            )
                            if version is None:
                                raise _changed(self.key)
                            self._stored = _Stored(True, raw, None, version, True, None)
                else:
                    saving = self._saving()
                    if saving is not None:
                        await saving
        except BaseException:
            await self._release(quiet=True)
            raise
        if self._lock is None:  # the in-process lock taken at once (or none): no await
            held = self._held
            if held is not None:  # self._let_go() inlined
                self._held = None
                self._sessions._locks.give_back(self.key, held)
            return
        await self._release(quiet=exc_type is not None)

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
            time in this process); ``"distributed"`` (one handler per key
            across processes and hosts; needs ATOMIC). On ATOMIC adapters
            every mode saves compare-and-set against the version read, so a
            save that lost the race to another worker raises
            :class:`ConflictError` instead of overwriting; on other adapters
            saves are plain writes (one worker per store). ``"distributed"``
            keeps its lock in the session's own entry (an ``"_l"`` field, a
            lock-only placeholder for a new session) rather than using
            :meth:`Storage.lock`: reading and locking are one read and one
            ``set_if``, and the exit saves and unlocks in one ``set_if``, so a
            block costs 3 round trips instead of 4 (lock, read, write,
            release). The lease logic (renewal every ``lock_ttl / 3``,
            takeover after ``lock_ttl``, no lock left behind by a cancelled
            handler) is :class:`Storage.lock`'s, shared.
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
        self._process = isolation == "process"
        # ATOMIC adapters: every mode reads with a version and saves compare-and-set.
        self._atomic = Capability.ATOMIC in storage.adapter.capabilities
        self._adapter = storage.adapter  # a session's read goes to it directly
        self._locks = KeyedLock()  # isolation="process" (and "distributed": waiters queue here)
        self._lock_tasks: set[asyncio.Task[Any]] = set()  # lease cleanups still running
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

    def open(self, target: Any = None, *, lazy: bool | None = None) -> Session[T]:
        """Open the session of ``target`` (a key, or what the key function takes).

        Use as ``async with sessions.open(update) as session``. Saves on normal
        exit if the data changed; saves nothing if the block raises.
        """
        # _scope(target, lazy, ()) inlined: opening is every handler's hot path.
        key = target if self.key is None and type(target) is str else self.key_for(target)
        full = self.storage.full_key(key)  # validated before any lock
        return Session(self, key, full, self.lazy if lazy is None else lazy)

    def _scope(
        self, target: Any, lazy: bool | None, before: tuple[Session[Any], ...]
    ) -> Session[T]:
        key = target if self.key is None and type(target) is str else self.key_for(target)
        full = self.storage.full_key(key)  # validated before any lock
        return Session(self, key, full, self.lazy if lazy is None else lazy, before)

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

    def _lock(self, entry: Entry) -> tuple[Lock | Hold | None, _EntryLease | None]:
        """The lock a block on ``entry`` holds, per ``isolation`` (``None``: no lock).

        ``"distributed"``: a lease kept in the session's own entry (see
        :class:`_EntryLease`), after this process's waiters queued locally.
        """
        if self._distributed:
            lease = _EntryLease(self, entry)
            return Lock(
                entry.key, self._locks.hold(entry.key), lease, timeout=self.lock_timeout
            ), lease
        if self.isolation == "process":
            return self._locks.hold(entry.key), None
        return None, None

    # -- read / write (called by Session) ---------------------------------
    def _reading(self, entry: Entry, lease: _EntryLease | None) -> Awaitable[Any] | None:
        """The read of ``entry`` for :meth:`_loaded`, for the caller to await; ``None``:
        no I/O (with ``lease``, isolation="distributed", the lease read the entry
        when it was taken). On ATOMIC adapters the read has a version for the
        compare-and-set save; other adapters read plainly.

        The caller awaits the adapter's own awaitable: no coroutine of ours around it.
        """
        if lease is not None:
            return None
        return entry.get_versioned() if self._atomic else entry.get()

    def _loaded(
        self, key: str, got: Any, lease: _EntryLease | None, decoded: Any = _UNDECODED
    ) -> tuple[T | None, _Stored]:
        """From what :meth:`_reading` got: the current data (migrated, or ``initial()``)
        and what is stored. ``decoded``: the stored bytes already decoded, if they were.

        Bytes, not values: saving compares the bytes it would write with these.
        """
        version: Version | None = None
        versioned = self._atomic and lease is None
        stored: Any = None
        if lease is not None:
            raw, stored = lease.body, lease.envelope
        else:
            if versioned:
                raw, version = (None, None) if got is None else got
            else:
                raw = got
            if raw is not None:
                stored = self.storage.decode(key, raw) if decoded is _UNDECODED else decoded
                if self._convert is None and self._is_current(stored):
                    # The common case (no lock in it, no migration, no type) in short.
                    data = stored[_D]
                    image = _image(data)  # unchanged data then means nothing to write
                    return data, _Stored(True, raw, None, version, versioned, stored.get(_E), image)
                raw, stored = self._without_lock(key, raw, stored)  # a lock is not data
        if raw is None:
            data = self.initial() if self.initial is not None else None
            # Image initial() so an untouched new session is not written.
            image = snapshot = None
            if data is not None:
                image = _image(data) if self._convert is None else None
                if image is None:
                    snapshot = self.storage.encode(key, data)
            return data, _Stored(
                snapshot=snapshot, version=version, versioned=versioned, image=image
            )
        plain, fixed_expiry = self._upgrade(key, stored)
        image = None
        if self._convert is None and self._is_current(stored):
            image = _image(plain)  # unchanged data then means nothing to write
        data = self._typed(key, plain)
        return data, _Stored(True, raw, None, version, versioned, fixed_expiry, image)

    def _is_current(self, stored: Any) -> bool:
        """Whether ``stored`` is the envelope unchanged data would be saved as.

        Its schema version is ours (no migration ran) and it has exactly the
        fields :meth:`_plan` writes: then its data unchanged needs no write.
        """
        return (
            type(stored) is dict
            and type(stored.get(_V)) is int
            and stored[_V] == self.version
            and _D in stored
            and (len(stored) == 2 if self.sliding else len(stored) == 3 and _E in stored)
        )

    def _without_lock(self, key: str, raw: bytes, stored: Any) -> tuple[bytes | None, Any]:
        """``raw`` (decoded: ``stored``) minus a distributed holder's lock field.

        ``(None, None)`` for a lock-only entry: a new session whose first
        handler still runs, which readers see as absent.
        """
        if not (isinstance(stored, dict) and _L in stored):
            return raw, stored
        body = {name: value for name, value in stored.items() if name != _L}
        if _D not in body:
            return None, None
        return self.storage.encode(key, body), body

    def _expiry(self, envelope: Mapping[str, Any]) -> float | None:
        """When ``envelope``, stored now, expires: ``now + ttl`` (sliding) or its ``"_e"``."""
        if self.sliding:
            return self.storage.expires_at(self.ttl)
        fixed = envelope.get(_E)
        return float(fixed) if isinstance(fixed, (int, float)) else None

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

    def _plan(
        self, key: str, data: T | None, stored: _Stored, imaged: bool = False
    ) -> _Write | None:
        """What saving ``data`` would do, given what is stored.

        Unchanged means: the data has the image it had when read (see
        :func:`_image`; one ``marshal.dumps``); for data ``marshal`` refuses,
        the envelope encodes to exactly the stored bytes (one encode), or, for a
        new session, the data encodes to what ``initial()`` did. ``imaged``: the
        caller has compared the image already (and found it differs, or none).
        """
        if data is None:
            # Deleting matters if something is stored, or may be (assigned unread).
            return (None, None, None) if stored.raw is not None or not stored.read else None
        if stored.image is not None:
            if not imaged and _image(data) == stored.image:
                return None
        elif stored.snapshot is not None and self.storage.encode(key, data) == stored.snapshot:
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
        raw = stored.raw
        if self._convert is not None and raw is not None and stored.image is None:
            return (
                None if self._reencodes_to(key, raw, encoded) else (encoded, expires_at, envelope)
            )
        return encoded, expires_at, envelope

    def _reencodes_to(self, key: str, raw: bytes, encoded: bytes) -> bool:
        """Whether the stored ``raw``, decoded into ``type`` afresh, encodes to ``encoded``.

        A typed value need not encode back to the bytes it came from: a ``set``
        is rebuilt on decode and may iterate (so encode) in another order. Data
        decoded from the same bytes iterates alike, so this tells an untouched
        typed session from a changed one. Only for a current (not migrated)
        envelope: a migrated one must be written.
        """
        stored = self.storage.decode(key, raw)
        if not (isinstance(stored, dict) and stored.get(_V) == self.version and _D in stored):
            return False
        again = dict(stored)
        again[_D] = self._typed(key, stored[_D])
        return self.storage.encode(key, again) == encoded

    async def _save(
        self, entry: Entry, plan: _Write, stored: _Stored, lease: _EntryLease | None
    ) -> _Stored:
        """Do ``plan`` (see :meth:`_plan`); return what is stored afterwards.

        With ``lease`` (isolation="distributed") the write keeps the lock in
        the entry; on ATOMIC adapters it is compare-and-set against the
        version read (or last written); otherwise a plain write.
        """
        key = entry.key
        data, expires_at, envelope = plan
        if lease is not None:
            if data is not None and not self.sliding and _over(expires_at, self.storage):
                return stored  # the session's fixed lifetime is over; let it expire
            if not await lease.store(data, envelope):
                raise _lost_lease(key)
            if data is None:
                return _Stored()  # absent: a next save creates it
            return _Stored(True, data, None, None, False, None if self.sliding else expires_at)
        if data is None:
            if stored.versioned:
                if stored.version is not None and not await entry.delete_if(version=stored.version):
                    raise _changed(key)
            else:
                await entry.delete()
            return _Stored(versioned=stored.versioned)  # absent: a next save creates it
        ttl: TTL = self.ttl
        if not self.sliding:
            if expires_at is None:
                ttl = FOREVER
            elif _over(expires_at, self.storage):
                return stored  # the session's fixed lifetime is over; let it expire
            else:
                ttl = expires_at - self.storage.clock()
        fixed = None if self.sliding else expires_at
        if stored.versioned:
            version = await entry.set_if(data, version=stored.version, ttl=ttl)
            if version is None:
                raise _changed(key)
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
        """Stop delivering expiry callbacks (the storage stays open). Idempotent.

        Waits for lock releases still running after a cancelled handler.
        """
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._lock_tasks:
            import asyncio

            await asyncio.gather(*self._lock_tasks, return_exceptions=True)

    @property
    def idle_locks(self) -> int:
        """Per-key process locks currently allocated (0 when no handler runs)."""
        return len(self._locks)


def _over(expires_at: float | None, storage: Storage[Any]) -> bool:
    return expires_at is not None and expires_at <= storage.clock()


def _changed(key: str) -> ConflictError:
    return ConflictError(
        f"session {key!r} was changed by another worker since it was read; this update "
        "was not saved (use isolation='distributed' to serialise handlers across processes)"
    )


def _lost_lease(key: str) -> ConflictError:
    return ConflictError(
        f"session {key!r} was changed by another holder while this one held the lock "
        "(lease expired?); this update was not saved"
    )


class _EntryLease(Lease):
    """The lock of ``isolation="distributed"``, kept in the session's own entry.

    The entry holds the session's envelope plus ``"_l": [token, expiry]``
    (the lock's owner and absolute expiry); a new session's entry holds only
    ``{"_l": ...}`` (a placeholder, absent for readers, expiring with the
    lock). Taking it reads the entry (``get_versioned``) and, unless someone
    else's lock is live, writes the same envelope with our lock
    (``set_if`` on the version read): the read the session needs and the
    version for its save come with it. Renewing rewrites the envelope with a
    new lock expiry. Releasing writes the envelope without the lock (the
    session's final save when it changed), or deletes a placeholder: one
    ``set_if``/``delete_if``. So a block costs 3 round trips instead of the
    4 of a separate lock entry (take, read, write, release).

    Everything about cancellation, renewal and unknown write outcomes is
    :class:`~botstate.leases.Lease`'s; this class only says what is written.
    The entry's expiry stays the session's: ``now + ttl`` (sliding) or its
    ``"_e"`` (fixed), never earlier than the lock's.
    """

    def __init__(self, sessions: Sessions[Any], entry: Entry) -> None:
        storage = sessions.storage
        super().__init__(
            storage.adapter,
            storage.full_key(entry.key),
            ttl=sessions.lock_ttl,
            clock=storage.clock,
            background=sessions._lock_tasks,
        )
        self._sessions = sessions
        self._name = entry.key
        self._owner = self._token.hex()
        self.body: bytes | None = None  # the stored envelope without the lock; None: absent
        self.envelope: dict[str, Any] | None = None  # ``body`` decoded (legacy values wrapped)
        self._final: tuple[bytes | None, dict[str, Any] | None] | None = None

    @property
    def saving(self) -> bool:
        """Whether the release is to write a change (see :meth:`finish`)."""
        return self._final is not None

    def finish(self, body: bytes | None, envelope: dict[str, Any] | None) -> None:
        """Make the release store ``body`` (``None``: delete) instead of restoring the entry."""
        self._final = (body, envelope)

    async def store(self, body: bytes | None, envelope: dict[str, Any] | None) -> bool:
        """Save ``body`` now, keeping the lock (``None``: delete the session); ``False``: lost."""
        self.body, self.envelope = body, envelope
        return await self.rewrite()

    # -- Lease hooks ------------------------------------------------------
    async def _claim(self) -> Version | Busy | None:
        got = await self._adapter.get_versioned(self.key)
        if got is None:
            self.body = self.envelope = None
            return None
        raw, version = got
        stored = self._sessions.storage.decode(self._name, raw)
        lock = stored.get(_L) if isinstance(stored, dict) else None
        if (
            isinstance(lock, list)
            and len(lock) == 2
            and lock[0] != self._owner
            and isinstance(lock[1], (int, float))
            and lock[1] > self._clock()
        ):
            return BUSY  # a live lock of someone else; an expired one is taken over
        self._adopt(raw, stored)
        return version

    def _adopt(self, raw: bytes, stored: Any) -> None:
        """Take what the entry holds as the session's stored state."""
        self.body, self.envelope = self._sessions._without_lock(self._name, raw, stored)
        if self.envelope is not None and not (
            isinstance(self.envelope, dict) and _V in self.envelope and _D in self.envelope
        ):
            # A value stored without an envelope: wrapped while locked, restored as it was.
            found = 0 if 1 in self._sessions.migrations else self._sessions.version
            self.envelope = {_V: found, _D: self.envelope}

    def _put(self, version: Version | None, expires_at: float) -> Awaitable[Version | None]:
        locked: dict[str, Any] = dict(self.envelope or {})
        locked[_L] = [self._owner, expires_at]
        until: float | None = expires_at
        if self.envelope is not None:
            session_expiry = self._sessions._expiry(self.envelope)
            until = None if session_expiry is None else max(session_expiry, expires_at)
        data = self._sessions.storage.encode(self._name, locked)
        return self._adapter.set_if(self.key, data, version=version, expires_at=until)

    async def _unlock(self, version: Version) -> bool:
        body, envelope = self._final if self._final is not None else (self.body, self.envelope)
        if body is None or envelope is None:
            return await self._adapter.delete_if(self.key, version=version)
        expires_at = self._sessions._expiry(envelope)
        if _over(expires_at, self._sessions.storage):  # a fixed lifetime ran out meanwhile
            return await self._adapter.delete_if(self.key, version=version)
        written = await self._adapter.set_if(self.key, body, version=version, expires_at=expires_at)
        return written is not None

    def _is_ours(self, stored: bytes) -> bool:
        value = self._sessions.storage.decode(self._name, stored)
        lock = value.get(_L) if isinstance(value, dict) else None
        if not (isinstance(lock, list) and lock and lock[0] == self._owner):
            return False
        self._adopt(stored, value)  # a write whose outcome was unknown: this is what landed
        return True


class MultiSession(Generic[S]):
    """Several named sessions opened together: ``multi["user"]`` or ``multi.user``."""

    def __init__(self, parts: Mapping[str, S]) -> None:
        self._parts = dict(parts)

    def __getitem__(self, name: str) -> S:
        return self._parts[name]

    def __getattr__(self, name: str) -> S:
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
    ) -> AsyncIterator[MultiSession[Session[Any]]]:
        async with AsyncExitStack() as stack:
            opened: dict[str, Session[Any]] = {}
            scopes: list[Session[Any]] = []
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
