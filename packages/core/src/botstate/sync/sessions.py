"""``SyncSessions``: sessions for synchronous handlers (TeleBot, Flask, green-api).

>>> sessions = SyncSessions(storage, initial=lambda: {"counter": 0}, ttl=600)
>>> with sessions.open("chat:1") as session:
...     session.data["counter"] += 1     # saved on exit, only if it changed

The same engine as :class:`botstate.sessions.Sessions` (change detection,
untouched ``initial()`` never written, TTL, migrations, isolation) running on
botstate's loop thread; only the waiting happens in the calling thread.
"""

from __future__ import annotations

import builtins
import functools
import inspect
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, Generic, TypeVar, cast

from ..errors import ConfigError, InvalidArgument
from ..sessions import Isolation, MultiSession, MultiSessions, Session, Sessions
from ..storage import TTL
from .loop import LoopThread
from .storage import BlockingContext, SyncStorage

__all__ = [
    "SyncMultiSessionScope",
    "SyncMultiSessions",
    "SyncSession",
    "SyncSessionScope",
    "SyncSessions",
]

T = TypeVar("T")


class SyncSession(Generic[T]):
    """The data of one session key for the duration of one ``with`` block.

    ``data`` is the value (``initial()`` for a new session); assign it to
    replace it, set it to ``None`` or call :meth:`clear` to delete the
    session. A lazy session reads storage only on :meth:`load`.
    """

    __slots__ = ("_runner", "_session")

    def __init__(self, session: Session[T], runner: LoopThread) -> None:
        self._session = session
        self._runner = runner

    @property
    def key(self) -> str:
        """The session key."""
        return self._session.key

    @property
    def data(self) -> T:
        """The session's data. On a lazy session, call :meth:`load` first."""
        return self._session.data

    @data.setter
    def data(self, value: T | None) -> None:
        self._session.data = value

    @property
    def loaded(self) -> bool:
        """Whether storage has been read (or the data assigned) in this block."""
        return self._session.loaded

    @property
    def changed(self) -> bool:
        """Whether leaving the block would write or delete anything."""
        return self._session.changed

    def load(self) -> T:
        """Read the session (once) and return its data; lazy sessions need this."""
        if self._session.loaded:
            return self._session.data
        return self._runner.run(self._session.load())

    def clear(self) -> None:
        """Delete the session when the block ends."""
        self._session.clear()

    def __repr__(self) -> str:
        return f"Sync{self._session!r}"


class SyncSessions(Generic[T]):
    """Opens sessions on a :class:`SyncStorage`; the options are those of ``Sessions``.

    >>> sessions = SyncSessions(storage, initial=lambda: {"step": "start"}, ttl=3600)
    >>> @bot.message_handler(commands=["start"])
    ... @sessions.handler(lambda message: f"chat:{message.chat.id}")
    ... def start(message, session):
    ...     session.data["step"] = "ask_name"

    With ``type=`` the data is decoded into that type (a dataclass, a
    pydantic model, ...), as in ``Sessions``. ``isolation="process"``
    (default) lets one thread at a time hold a key, so handlers running on
    many worker threads never lose an update;
    ``"distributed"`` extends that across processes (ATOMIC adapters).
    ``on_expire(key, data)`` runs in a worker thread and may block.
    """

    def __init__(
        self,
        storage: SyncStorage[Any],
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
        on_expire: Callable[[str, T], object] | None = None,
        lock_ttl: float = 30.0,
        lock_timeout: float = 60.0,
    ) -> None:
        if not isinstance(storage, SyncStorage):
            raise InvalidArgument(
                "SyncSessions needs a botstate.sync.SyncStorage, not "
                f"{builtins.type(storage).__name__} (for a Storage, use botstate.Sessions "
                "with async handlers)"
            )
        runner = storage.runner
        relay: Callable[[str, T], Awaitable[None]] | None = None
        if on_expire is not None:
            callback = on_expire

            async def relay(key: str, data: T) -> None:
                await runner.loop.run_in_executor(None, callback, key, data)

        def build() -> Sessions[T]:
            return Sessions(
                storage.storage,
                initial=initial,
                type=type,
                key=key,
                ttl=ttl,
                sliding=sliding,
                version=version,
                migrations=migrations,
                isolation=isolation,
                lazy=lazy,
                on_expire=relay,
                lock_ttl=lock_ttl,
                lock_timeout=lock_timeout,
            )

        self.storage = storage
        self._runner = runner
        # Built on the loop: subscribing to expiry events touches the adapter.
        self._sessions: Sessions[T] = runner.call(build)

    @property
    def sessions(self) -> Sessions[T]:
        """The async ``Sessions`` underneath (it lives on botstate's loop)."""
        return self._sessions

    def key_for(self, target: Any) -> str:
        """The session key for what was passed to :meth:`open`."""
        return self._sessions.key_for(target)

    def open(self, target: Any = None, *, lazy: bool | None = None) -> SyncSessionScope[T]:
        """Open the session of ``target`` (a key, or what the key function takes).

        Use as ``with sessions.open(message) as session``. Saves on normal
        exit if the data changed; saves nothing if the block raises.
        """
        return SyncSessionScope(self._sessions.open(target, lazy=lazy), self._runner)

    def handler(
        self, key: Callable[..., Any] | None = None, *, arg: str = "session"
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorate a synchronous handler so it receives its session as keyword ``arg``.

        ``key(*args, **kwargs)`` gives what :meth:`open` takes (default: the
        first positional argument, e.g. the message)::

            @bot.message_handler(func=lambda m: True)
            @sessions.handler(lambda message: f"chat:{message.chat.id}")
            def count(message, session):
                session.data["counter"] += 1

        An ``async def`` handler is refused (:class:`InvalidArgument`): use
        ``botstate.Sessions.handler`` for those.
        """

        def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
            if _is_async(fn):
                raise InvalidArgument(
                    f"{getattr(fn, '__name__', fn)!r} is async: decorate it with "
                    "botstate.Sessions(...).handler, SyncSessions is for synchronous handlers"
                )

            @functools.wraps(fn)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                target = key(*args, **kwargs) if key else (args[0] if args else None)
                with self.open(target) as session:
                    return fn(*args, **kwargs, **{arg: session})

            # Frameworks that pass arguments by the handler's signature (TeleBot with
            # class middlewares) must not see the session parameter: we supply it.
            try:
                signature = inspect.signature(fn)
            except (TypeError, ValueError):
                return wrapper
            params = [p for name, p in signature.parameters.items() if name != arg]
            wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
            return wrapper

        return decorate

    @property
    def idle_locks(self) -> int:
        """Per-key process locks currently allocated (0 when no handler runs)."""
        return self._sessions.idle_locks

    def close(self) -> None:
        """Stop delivering expiry callbacks (the storage stays open)."""

        async def stop() -> None:
            # Sessions.close() becomes async with the lock rework; accept both.
            result = cast("Callable[[], object]", self._sessions.close)()
            if inspect.isawaitable(result):
                await result

        self._runner.run(stop())

    def __repr__(self) -> str:
        return f"SyncSessions({self.storage!r}, isolation={self._sessions.isolation!r})"


class SyncSessionScope(BlockingContext[Session[T]]):
    """``with sessions.open(...)``: lock, load, yield the session, save, unlock."""

    __slots__ = ("_scope",)

    def __init__(self, scope: Session[T], runner: LoopThread) -> None:
        super().__init__(runner)
        self._scope = scope

    def __enter__(self) -> SyncSession[T]:
        session = self._enter(self._scope)
        try:  # from here on the key is held: a Ctrl-C before the block begins releases it
            return SyncSession(session, self._runner)
        except BaseException:
            self._abandon()
            raise


class SyncMultiSessions:
    """Named :class:`SyncSessions` opened as one, each with its own storage, key and initial.

    >>> multi = SyncMultiSessions({"user": user_sessions, "chat": chat_sessions})
    >>> with multi.open(message) as s:
    ...     s.user.data["lang"] = "en"
    ...     s.chat.data["messages"] += 1

    The blocking face of :class:`botstate.MultiSessions`, with its semantics:
    each part keeps its own key function, ``initial``, TTL and isolation;
    parts are locked in the order given, so handlers on many threads cannot
    deadlock (loading a lazy part first takes the locks of the parts before
    it); each part keeps its own ``lazy`` setting unless ``open(lazy=)``
    overrides all. Every part saves on normal exit if it changed; none saves
    if the block raises.
    """

    def __init__(self, parts: Mapping[str, SyncSessions[Any]]) -> None:
        if not parts:
            raise ConfigError("SyncMultiSessions needs at least one part")
        runners = set()
        for name, part in parts.items():
            if not isinstance(part, SyncSessions):
                raise InvalidArgument(
                    f"part {name!r} is a {builtins.type(part).__name__}: SyncMultiSessions "
                    "combines botstate.sync.SyncSessions (for Sessions, use botstate.MultiSessions)"
                )
            runners.add(part.storage.runner)
        if len(runners) > 1:
            raise InvalidArgument("the parts of a SyncMultiSessions must share one loop thread")
        self.parts = dict(parts)
        self._runner: LoopThread = runners.pop()
        self._multi = MultiSessions({name: part.sessions for name, part in parts.items()})

    def open(self, target: Any = None, *, lazy: bool | None = None) -> SyncMultiSessionScope:
        """Open every part for ``target`` (what each part's key function takes).

        Use as ``with multi.open(message) as s``; ``s.user`` / ``s["user"]``
        is that part's :class:`SyncSession`.
        """
        return SyncMultiSessionScope(self._multi.open(target, lazy=lazy), self._runner)

    def __repr__(self) -> str:
        return f"SyncMultiSessions({list(self.parts)!r})"


class SyncMultiSessionScope(BlockingContext[MultiSession[Session[Any]]]):
    """``with multi.open(...)``: lock and load every part, yield them, save, unlock."""

    __slots__ = ("_scope",)

    def __init__(
        self, scope: AbstractAsyncContextManager[MultiSession[Session[Any]]], runner: LoopThread
    ) -> None:
        super().__init__(runner)
        self._scope = scope

    def __enter__(self) -> MultiSession[SyncSession[Any]]:
        """The parts by name: ``s.user`` or ``s["user"]``, each a :class:`SyncSession`."""
        multi = self._enter(self._scope)
        try:  # as in SyncSessionScope.__enter__
            return MultiSession({name: SyncSession(multi[name], self._runner) for name in multi})
        except BaseException:
            self._abandon()
            raise


def _is_async(fn: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - an object with an async __call__
    )
