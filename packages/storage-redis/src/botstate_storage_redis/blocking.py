"""Blocking twins of the adapter's plain operations, for ``botstate.sync``.

:class:`BlockingRedis` runs ``get``, ``set``, ``has``, ``delete``,
``get_expiry`` and the batches in the calling thread over redis-py's
synchronous client: no hop to botstate's loop thread. Its client is built on
first use from the adapter's URL and options (the same settings as the async
client, see :func:`config.pool_settings`) over a blocking connection pool
capped at ``max_connections``, so several threads can call at once; a thread
beyond the cap waits up to ``socket_timeout`` for a connection. Commands,
key layout and the ``get_many`` strategy are the async adapter's (see
:mod:`.plans`); errors go through the adapter's ``_error``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

import redis
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError, ResponseError
from redis.retry import Retry

from botstate import StorageUnavailable

from .config import Target, pool_settings
from .plans import Eval, Plan, Request, get_many, mset_commands

if TYPE_CHECKING:
    from .adapter import RedisAdapter

__all__ = ["BlockingRedis"]

_DRIVER_ERRORS = (RedisError, OSError)
_T = TypeVar("_T")


class BlockingRedis:
    """The adapter's plain operations as blocking, thread-safe calls (a standalone server).

    Same results, errors and versions as the async methods of the same name.
    Once the adapter is closed every call raises ``StorageUnavailable`` and
    nothing reconnects; :meth:`close` (called by the adapter's ``close``)
    disconnects the pool.
    """

    def __init__(self, adapter: RedisAdapter, target: Target) -> None:
        self._adapter = adapter
        self._target = target
        self._prefix = adapter.prefix
        self._lock = threading.Lock()
        self._client: redis.Redis | None = None

    def _redis(self) -> redis.Redis:
        """The client, built on first use; refuses work once the adapter is closed."""
        self._adapter.check_open()
        client = self._client
        if client is None:
            with self._lock:
                client = self._client
                if client is None:
                    settings = pool_settings(
                        self._target,
                        self._adapter.options,
                        unix=redis.UnixDomainSocketConnection,
                        ssl=redis.SSLConnection,
                    )
                    pool = redis.BlockingConnectionPool(  # type: ignore[no-untyped-call]
                        timeout=self._adapter.options.socket_timeout,
                        retry=Retry(NoBackoff(), 0),
                        **settings,
                    )
                    client = self._client = redis.Redis(connection_pool=pool)
        return client

    def _call(self, command: Request) -> Any:
        """One command or script; driver errors are left to the caller."""
        client = self._redis()
        execute: Callable[..., Any] = client.execute_command
        try:
            if not isinstance(command, Eval):
                return execute(*command)
            script, keys = command
            try:
                return execute("EVALSHA", script.sha, len(keys), *keys)
            except NoScriptError:
                return execute("EVAL", script.text, len(keys), *keys)
        except Exception as err:
            self._raise_if_closed(err)
            raise
        finally:
            if self._adapter.closed:
                # A call racing close() may have reconnected after close disconnected.
                client.connection_pool.disconnect()

    def _run(self, *args: Any) -> Any:
        """One command, driver errors wrapped into botstate errors."""
        try:
            return self._call(args)
        except _DRIVER_ERRORS as err:
            raise self._adapter._error(err) from err

    def _step(self, requests: list[Request]) -> list[Any]:
        """The replies to one step of a plan; several commands go as one pipeline."""
        if len(requests) == 1 or isinstance(requests[0], Eval):
            return [self._call(request) for request in requests]
        client = self._redis()
        pipe = client.pipeline(transaction=False)
        for request in requests:
            pipe.execute_command(*request)  # type: ignore[no-untyped-call]
        try:
            return list(pipe.execute())
        except Exception as err:
            self._raise_if_closed(err)
            raise
        finally:
            if self._adapter.closed:
                client.connection_pool.disconnect()  # as in _call

    def _raise_if_closed(self, err: Exception) -> None:
        """Raise ``StorageUnavailable`` (from ``err``) if the adapter was closed during a call.

        ``close()`` (on another thread) disconnects connections in use: redis-py
        then raises whatever the cut leads to, not always one of its errors.
        """
        if self._adapter.closed:
            raise StorageUnavailable(f"{self._adapter!r} is closed") from err

    def _drive(self, plan: Plan[_T]) -> _T:
        """Run ``plan`` (see :mod:`.plans`) to its result, driver errors wrapped."""
        try:
            step = next(plan)
            while True:
                step = plan.send(self._step(step))
        except StopIteration as done:
            return cast("_T", done.value)
        except _DRIVER_ERRORS as err:
            raise self._adapter._error(err) from err

    # -- the twins ------------------------------------------------------------
    def get(self, key: str) -> bytes | None:
        raw = self._run("GET", self._prefix + key)
        return None if raw is None else self._adapter._value(key, raw)

    def has(self, key: str) -> bool:
        return bool(self._run("EXISTS", self._prefix + key))

    def set(self, key: str, value: bytes, expires_at: float | None = None) -> None:
        self._run(*self._adapter._set_command(key, value, expires_at))

    def delete(self, key: str) -> bool:
        return bool(self._run("DEL", self._prefix + key))

    def get_expiry(self, key: str) -> float | None:
        adapter = self._adapter
        if adapter._pexpiretime is not False:
            try:
                ms = int(self._call(("PEXPIRETIME", self._prefix + key)))
            except ResponseError as err:
                if not adapter._lacks_pexpiretime(err):
                    raise adapter._error(err) from err
            except _DRIVER_ERRORS as err:
                raise adapter._error(err) from err
            else:
                adapter._pexpiretime = True
                return None if ms < 0 else ms / 1000
        now = time.time()
        ms = int(self._run("PTTL", self._prefix + key))
        return None if ms < 0 else now + ms / 1000

    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        if not keys:
            return {}
        prefix = self._prefix
        full = [prefix + key for key in keys] if prefix else list(keys)
        return self._adapter._found(keys, self._drive(get_many(full)))

    def set_many(self, items: Mapping[str, bytes], expires_at: float | None = None) -> None:
        if not items:
            return
        if expires_at is None:
            commands = mset_commands(self._prefix, items)
        else:
            make = self._adapter._set_command
            commands = [make(key, value, expires_at) for key, value in items.items()]
        try:
            self._step(commands)
        except _DRIVER_ERRORS as err:
            raise self._adapter._error(err) from err

    def delete_many(self, keys: Sequence[str]) -> int:
        full = list(dict.fromkeys(self._prefix + key for key in keys))
        return int(self._run("DEL", *full)) if full else 0

    def close(self) -> None:
        """Disconnect every connection of the pool (the adapter is closed first)."""
        client = self._client
        if client is not None:
            client.connection_pool.disconnect()
