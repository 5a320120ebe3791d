"""``SyncStorage``: the blocking face of :class:`~botstate.storage.Storage`."""

from __future__ import annotations

import asyncio
import builtins
from asyncio import _get_running_loop
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, Generic, TypeVar, overload

from ..capabilities import Capability
from ..codecs import Codec
from ..contract import BlockingOps
from ..errors import InvalidArgument
from ..opening import open_storage as _open_async
from ..storage import FOREVER, TTL, Storage
from .loop import LoopThread, loop_thread

__all__ = ["SyncLock", "SyncStorage", "open_storage"]

T = TypeVar("T")
A = TypeVar("A")

_KEYS_PER_HOP = 500  # keys() fetches this many per trip to the loop thread


class SyncStorage(Generic[T]):
    """A :class:`~botstate.storage.Storage` with blocking methods, safe from any thread.

    >>> from botstate.sync import open_storage
    >>> storage = open_storage("sqlite:///bot.db", namespace="mybot")
    >>> storage.set("chat:1", {"step": "ask_name"}, ttl=600)
    >>> storage.get("chat:1")
    {'step': 'ask_name'}

    Each call runs the async method on botstate's private event loop (one
    daemon thread per process) and waits for it, so the semantics are the
    async ones: same keys, codecs, TTLs, errors. Calls from many threads run
    concurrently on that loop. ``get``, ``set``, ``has``, ``delete``, ``ttl``
    and the batches skip the loop when the adapter offers blocking twins of
    them (see :class:`~botstate.adapter.BlockingOps`): they then run in the
    calling thread. Calling from a thread that runs an event loop
    raises :class:`~botstate.errors.UsageError` (use the async API there).

    Wrapping an existing ``Storage`` is allowed if it has not been used on
    another event loop; afterwards use it only through this wrapper.
    """

    def __init__(self, storage: Storage[T], *, runner: LoopThread | None = None) -> None:
        if not isinstance(storage, Storage):
            raise InvalidArgument(
                f"SyncStorage wraps a botstate Storage, not {type(storage).__name__}"
            )
        self._storage = storage
        self._runner = runner = runner or loop_thread()
        self._run = runner.run
        # Plain operations of an in-process adapter start in the calling thread
        # (see botstate.sync.loop): no hop to the loop thread when they need no I/O.
        inline = getattr(storage.adapter, "runs_inline", False) is True
        self._run_plain = runner.run_inline if inline else self._run
        # Better still, the adapter's blocking twins (BlockingOps), called right here:
        # under the loop's lock for an in-process adapter, else directly.
        self._find_ops: Callable[[], BlockingOps | None] | None = getattr(
            storage.adapter, "blocking", None
        )
        self._ops: BlockingOps | None = None
        self._here: Callable[..., Any] = runner.call_inline if inline else runner.call_here
        self._inline_runner = runner if inline else None

    @property
    def storage(self) -> Storage[T]:
        """The wrapped async storage; it lives on botstate's loop: use it only there."""
        return self._storage

    @property
    def runner(self) -> LoopThread:
        """The loop thread this storage's calls run on."""
        return self._runner

    @property
    def namespace(self) -> str | None:
        """The key prefix isolating this storage's keys (``None``: none)."""
        return self._storage.namespace

    @property
    def default_ttl(self) -> float | None:
        """Seconds a write lives when it passes no ``ttl`` (``None``: forever)."""
        return self._storage.default_ttl

    @property
    def type(self) -> Any:
        """The type values are decoded into, or ``None`` for plain decoded data."""
        return self._storage.type

    @property
    def codec(self) -> Codec[T]:
        """The codec turning values into stored bytes."""
        return self._storage.codec

    @property
    def capabilities(self) -> frozenset[Capability]:
        """What the adapter underneath does natively (``ATOMIC``, ``SCAN``, ...)."""
        return self._storage.adapter.capabilities

    def _blocking(self) -> BlockingOps | None:
        """The adapter's blocking twins, once it offers them (then kept)."""
        find = self._find_ops
        if find is None:
            return None
        ops = find()
        if ops is not None:
            self._ops = ops
            self._find_ops = None
        return ops

    # Each plain operation below is the async one's body with the adapter call
    # made through its blocking twin in this thread. When there is no twin, or
    # the call answers NotImplemented (the twin cannot do it now, or an
    # in-process adapter's loop is busy), the async method runs instead.

    # -- single keys ------------------------------------------------------
    def get(self, key: str, default: T | None = None) -> T | None:
        """Return the value of ``key``, or ``default`` if it is absent or expired."""
        ops = self._ops or self._blocking()
        if ops is not None:
            storage = self._storage
            full = storage.full_key(key)
            runner = self._inline_runner
            if runner is None:
                data = self._here(ops.get, full)
            # The hottest call: LoopThread.call_inline spelled out (a frame fewer).
            elif runner.loop_wants_lock or _get_running_loop() or not runner.try_lock(False):
                data = NotImplemented
            else:
                try:
                    data = ops.get(full)
                finally:
                    runner.unlock()
            if data is not NotImplemented:
                return default if data is None else storage.decode(key, data)
        return self._run_plain(self._storage.get(key, default))

    def has(self, key: str) -> bool:
        """Return ``True`` if ``key`` holds a live value."""
        ops = self._ops or self._blocking()
        if ops is not None:
            found = self._here(ops.has, self._storage.full_key(key))
            if found is not NotImplemented:
                return found  # type: ignore[no-any-return]
        return self._run_plain(self._storage.has(key))

    def set(self, key: str, value: T, *, ttl: TTL = None) -> None:
        """Store ``value`` under ``key``; when this returns, the adapter has acknowledged it."""
        ops = self._ops or self._blocking()
        if ops is not None:
            storage = self._storage
            full = storage.full_key(key)
            data = storage.encode(key, value)
            if self._here(ops.set, full, data, storage.expires_at(ttl)) is not NotImplemented:
                return
        self._run_plain(self._storage.set(key, value, ttl=ttl))

    def delete(self, key: str) -> bool:
        """Delete ``key``; return ``True`` if it held a live value."""
        ops = self._ops or self._blocking()
        if ops is not None:
            deleted = self._here(ops.delete, self._storage.full_key(key))
            if deleted is not NotImplemented:
                return deleted  # type: ignore[no-any-return]
        return self._run_plain(self._storage.delete(key))

    def ttl(self, key: str) -> float | None:
        """Remaining seconds before ``key`` expires.

        :data:`~botstate.storage.FOREVER` (``math.inf``) if it never expires,
        ``None`` if it is absent.
        """
        ops = self._ops or self._blocking()
        if ops is not None:
            storage = self._storage
            left = self._here(_ttl, ops, storage.full_key(key), storage.clock)
            if left is not NotImplemented:
                return left  # type: ignore[no-any-return]
        return self._run_plain(self._storage.ttl(key))

    # -- batches ----------------------------------------------------------
    def get_many(self, keys: Iterable[str]) -> dict[str, T]:
        """Return ``{key: value}`` for the keys that hold live values."""
        keys = list(keys)
        ops = self._ops or self._blocking()
        if ops is not None:
            storage = self._storage
            wanted = {storage.full_key(key): key for key in keys}
            if not wanted:
                return {}
            found = self._here(ops.get_many, list(wanted))
            if found is not NotImplemented:
                decode = storage.decode
                return {wanted[full]: decode(wanted[full], data) for full, data in found.items()}
        return self._run_plain(self._storage.get_many(keys))

    def set_many(self, items: Mapping[str, T], *, ttl: TTL = None) -> None:
        """Store every item with one expiry; nothing is written if any value fails to encode."""
        ops = self._ops or self._blocking()
        if ops is not None:
            storage = self._storage
            encode, full_key = storage.encode, storage.full_key
            encoded = {full_key(key): encode(key, value) for key, value in items.items()}
            if not encoded:
                return
            expires_at = storage.expires_at(ttl)
            if self._here(ops.set_many, encoded, expires_at) is not NotImplemented:
                return
        self._run_plain(self._storage.set_many(dict(items), ttl=ttl))

    def delete_many(self, keys: Iterable[str]) -> int:
        """Delete ``keys``; return how many held live values."""
        keys = list(keys)
        ops = self._ops or self._blocking()
        if ops is not None:
            full_key = self._storage.full_key
            fulls = list(dict.fromkeys(full_key(key) for key in keys))
            if not fulls:
                return 0
            removed = self._here(ops.delete_many, fulls)
            if removed is not NotImplemented:
                return removed  # type: ignore[no-any-return]
        return self._run_plain(self._storage.delete_many(keys))

    def keys(self, prefix: str = "") -> Iterator[str]:
        """Iterate over the keys starting with ``prefix`` (namespace stripped).

        Keys arrive in batches of a few hundred per trip to the loop. An
        iterator dropped before its end is closed on the loop in the background.
        """
        return _iterate(self._runner, self._storage.keys(prefix))

    def clear(self) -> int:
        """Delete every key of this namespace (of the whole store if there is none)."""
        return self._run(self._storage.clear())

    # -- atomic update ----------------------------------------------------
    def update(
        self,
        key: str,
        fn: Callable[[T | None], T | None] | Callable[[T | None], Awaitable[T | None]],
        *,
        ttl: TTL = None,
    ) -> T | None:
        """Replace the value of ``key`` with ``fn(old)`` atomically; return the new value.

        As :meth:`Storage.update <botstate.storage.Storage.update>`: ``fn``
        gets ``None`` for an absent key, returning ``None`` deletes, and it may
        run more than once when another writer got in between. ``fn`` runs on
        botstate's loop thread: keep it a quick, pure function (it cannot call
        this storage: that raises ``UsageError``).

        >>> storage.update("hits", lambda v: (v or 0) + 1)
        1
        """
        return self._run(self._storage.update(key, fn, ttl=ttl))

    # -- locks --------------------------------------------------------------
    def lock(self, key: str, *, ttl: float = 30.0, timeout: float = 60.0) -> SyncLock:
        """``with storage.lock(key):`` — one holder of ``key`` at a time, as ``Storage.lock``.

        On ATOMIC adapters a lease shared by every process (renewed on
        botstate's loop while the block runs, however long it blocks); else a
        per-key lock within this process. ``ConflictError`` after ``timeout``.
        """
        # Storage.lock arrives with the lock rework; typed loosely until then.
        storage: Any = self._storage
        return SyncLock(self._runner, lambda: storage.lock(key, ttl=ttl, timeout=timeout))

    # -- events and lifecycle ---------------------------------------------
    def on_expire(
        self, callback: Callable[[str, T | None], object], *, evictions: bool = False
    ) -> Callable[[], None]:
        """Call ``callback(key, last_value)`` in a worker thread when a key expires.

        Needs an adapter with ``EXPIRY_EVENTS`` (the memory adapter). The
        callback runs on the loop's default executor, so it may block (send a
        message) and may use this storage. Returns an unsubscribe function.
        """
        runner = self._runner

        async def relay(key: str, value: T | None) -> None:
            await runner.loop.run_in_executor(None, callback, key, value)

        unsubscribe = runner.call(lambda: self._storage.on_expire(relay, evictions=evictions))

        def stop() -> None:
            if runner.in_loop_thread():
                unsubscribe()
            else:
                runner.call(unsubscribe)

        return stop

    def with_namespace(self, namespace: str | None) -> SyncStorage[T]:
        """A view of the same adapter under another namespace (same codec, TTL and clock)."""
        return SyncStorage(self._storage.with_namespace(namespace), runner=self._runner)

    def close(self) -> None:
        """Close the adapter (shared with ``with_namespace`` views). Idempotent."""
        self._run(self._storage.close())

    def __enter__(self) -> SyncStorage[T]:
        return self

    def __exit__(
        self,
        exc_type: builtins.type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Sync{self._storage!r}"


class BlockingContext(Generic[A]):
    """A ``with`` block over an async context manager, entered and left on the loop thread.

    The base of :class:`SyncLock` and the session scopes: a subclass's
    ``__enter__`` calls :meth:`_enter` with the async context manager and
    turns what it yields into its blocking counterpart.
    """

    __slots__ = ("_context", "_runner")

    def __init__(self, runner: LoopThread) -> None:
        self._runner = runner
        self._context: AbstractAsyncContextManager[A] | None = None  # the one entered

    def _enter(self, context: AbstractAsyncContextManager[A]) -> A:
        self._context = context

        async def leave(_: A) -> None:
            # Interrupted (Ctrl-C) once inside: the caller never got it. Leave as if
            # cancelled, so nothing is saved and every lock taken is released.
            await context.__aexit__(asyncio.CancelledError, asyncio.CancelledError(), None)

        return self._runner.run(context.__aenter__(), undo=leave)

    def _abandon(self) -> None:
        """Leave the entered context as if cancelled: ``__enter__`` failed after ``_enter``.

        A subclass's ``__enter__`` calls this when an exception (a Ctrl-C) hits
        it between acquiring and returning, when ``__exit__`` will never run.
        """
        context, self._context = self._context, None
        if context is not None:
            self._runner.run(
                context.__aexit__(asyncio.CancelledError, asyncio.CancelledError(), None),
                finish=True,
            )

    def __exit__(
        self,
        exc_type: builtins.type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        context = self._context
        if context is not None:
            # finish: Ctrl-C while waiting here stops the wait, not the exit, which
            # saves (or not) and releases the lock or lease the block held.
            self._runner.run(context.__aexit__(exc_type, exc, tb), finish=True)


class SyncLock(BlockingContext[Any]):
    """The ``with`` block of :meth:`SyncStorage.lock`: acquired on enter, released on exit."""

    __slots__ = ("_make",)

    def __init__(self, runner: LoopThread, make: Callable[[], Any]) -> None:
        super().__init__(runner)
        self._make = make

    def __enter__(self) -> None:
        self._enter(self._make())  # a fresh lock context each time the block is entered


def _iterate(runner: LoopThread, keys: AsyncIterator[str]) -> Iterator[str]:
    finished = False
    try:
        while not finished:
            batch, finished = runner.run(_take(keys, _KEYS_PER_HOP))
            yield from batch
    finally:
        if not finished:
            runner.submit(_aclose(keys))


def _ttl(ops: BlockingOps, full: str, clock: Callable[[], float]) -> float | None:
    """``Storage.ttl`` over blocking twins (one inline section for both calls)."""
    expires_at = ops.get_expiry(full)
    if expires_at is None:
        found = ops.has(full)
        return found if found is NotImplemented else FOREVER if found else None
    if expires_at is NotImplemented:
        return expires_at  # type: ignore[no-any-return]
    return max(0.0, expires_at - clock())


async def _take(keys: AsyncIterator[str], count: int) -> tuple[list[str], bool]:
    """Up to ``count`` keys, and whether the iterator is exhausted."""
    batch: list[str] = []
    try:
        while len(batch) < count:
            batch.append(await keys.__anext__())
    except StopAsyncIteration:
        return batch, True
    return batch, False


async def _aclose(keys: AsyncIterator[str]) -> None:
    aclose = getattr(keys, "aclose", None)
    if aclose is not None:
        await aclose()


@overload
def open_storage(
    spec: str | Mapping[str, Any] | None = None,
    *,
    type: builtins.type[T],
    namespace: str | None = None,
    ttl: TTL = None,
    codec: str | Codec[Any] | None = None,
    **options: Any,
) -> SyncStorage[T]: ...


@overload
def open_storage(
    spec: str | Mapping[str, Any] | None = None,
    *,
    type: object = None,
    namespace: str | None = None,
    ttl: TTL = None,
    codec: str | Codec[Any] | None = None,
    **options: Any,
) -> SyncStorage[Any]: ...


def open_storage(
    spec: str | Mapping[str, Any] | None = None,
    *,
    type: Any = None,
    namespace: str | None = None,
    ttl: TTL = None,
    codec: str | Codec[Any] | None = None,
    **options: Any,
) -> SyncStorage[Any]:
    """Open a :class:`SyncStorage` from a URL, an adapter name, a config mapping, or the env.

    >>> from botstate.sync import open_storage
    >>> open_storage("memory://")
    >>> open_storage("redis://localhost:6379/0", namespace="mybot", ttl=3600)
    >>> open_storage({"adapter": "sqlite", "url": "sqlite:///bot.db"})
    >>> open_storage("sqlite:///bot.db", type=Cart)   # values decoded into Cart
    >>> open_storage()          # reads BOTSTATE_STORAGE

    Takes exactly the arguments of :func:`botstate.open_storage`; the
    storage is built on botstate's loop thread, where all its work runs.
    """
    runner = loop_thread()

    def build() -> Storage[Any]:
        return _open_async(spec, type=type, namespace=namespace, ttl=ttl, codec=codec, **options)

    return SyncStorage(runner.call(build), runner=runner)
