"""``SyncSessions``: sessions for synchronous handlers (TeleBot, Flask, green-api).

>>> sessions = SyncSessions(storage, initial=lambda: {"counter": 0}, ttl=600)
>>> with sessions.open("chat:1") as session:
...     session.data["counter"] += 1     # saved on exit, only if it changed

The same engine as :class:`botstate.sessions.Sessions` (change detection,
untouched ``initial()`` never written, TTL, migrations, isolation) running on
botstate's loop thread; only the waiting happens in the calling thread.
"""

from __future__ import annotations

import asyncio
import builtins
import functools
import inspect
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, Generic, TypeVar, cast

from ..errors import InvalidArgument
from ..sessions import Isolation, Session, Sessions, _SessionScope
from ..storage import TTL
from .loop import LoopThread
from .storage import SyncStorage

__all__ = ["SyncSession", "SyncSessions"]

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


class SyncSessionScope(Generic[T]):
    """``with sessions.open(...)``: lock, load, yield the session, save, unlock."""

    __slots__ = ("_runner", "_scope")

    def __init__(self, scope: _SessionScope[T], runner: LoopThread) -> None:
        self._scope = scope
        self._runner = runner

    def __enter__(self) -> SyncSession[T]:
        scope = self._scope

        async def release(_: Session[T]) -> None:
            # The caller never got the session: unlock without saving anything.
            await scope.__aexit__(asyncio.CancelledError, None, None)

        session = self._runner.run(scope.__aenter__(), undo=release)
        return SyncSession(session, self._runner)

    def __exit__(
        self,
        exc_type: builtins.type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._runner.run(self._scope.__aexit__(exc_type, exc, tb))


def _is_async(fn: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - an object with an async __call__
    )
