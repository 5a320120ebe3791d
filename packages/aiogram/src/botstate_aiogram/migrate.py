"""Import the FSM states and data an aiogram ``RedisStorage`` left in Redis.

aiogram's ``RedisStorage`` with a ``DefaultKeyBuilder`` writes, per
``StorageKey``, ``<prefix>:[bot]:[business]:<chat>:[thread]:<user>:[destiny]:state``
(the state name as a plain string) and ``...:data`` (the data as a JSON
object), plus short-lived ``...:lock`` entries for ``RedisEventIsolation``.
:class:`~botstate_aiogram.BotstateStorage` with the same key builder uses
the very same key names, so importing copies each state and data entry
under its own name, decoded, with its remaining TTL; lock entries are skipped.

    $ python -m botstate_aiogram import-redis redis://old-host:6379/0 sqlite:///bot.db

Needs redis-py (``pip install "botstate-aiogram[redis]"``, which any
``aiogram[redis]`` install already has).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botstate.errors import ConfigError, DecodeError, StorageUnavailable
from botstate.storage import FOREVER, Storage
from botstate.urls import redact_url

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["ImportReport", "import_redis_storage"]

_BATCH = 500


@dataclass
class ImportReport:
    """What :func:`import_redis_storage` found and did."""

    states: int = 0
    """State entries copied (or that would be, with ``dry_run``)."""
    data: int = 0
    """Data entries copied."""
    locks: int = 0
    """Isolation lock entries skipped (they only matter while a handler runs)."""
    skipped: list[str] = field(default_factory=list)
    """Keys under the prefix that are not FSM state or data: not copied."""
    expired: int = 0
    """Entries that expired between the scan and the read: not copied."""

    @property
    def copied(self) -> int:
        return self.states + self.data


async def import_redis_storage(
    source: str | Redis,
    target: Storage[Any],
    *,
    prefix: str = "fsm",
    separator: str = ":",
    json_loads: Callable[[str], Any] = json.loads,
    dry_run: bool = False,
) -> ImportReport:
    """Copy the FSM keyspace of an aiogram ``RedisStorage`` into ``target``.

    Args:
        source: the Redis URL aiogram used (``RedisStorage.from_url``), or a
            ``redis.asyncio.Redis`` client (left open).
        target: the botstate storage the bot will use through
            ``BotstateStorage(target)`` (same namespace, default key builder
            or the same ``prefix``/``separator`` as the source's).
        prefix / separator: those of the source's ``DefaultKeyBuilder``.
        json_loads: the ``json_loads`` given to ``RedisStorage``, if any.
        dry_run: count what would be copied, write nothing.

    Entries keep their remaining TTL; entries without one get none, whatever
    the target's default TTL. Existing target entries with the same names
    are overwritten. Raises :class:`~botstate.errors.StorageUnavailable` if
    Redis cannot be reached and :class:`~botstate.errors.DecodeError` (naming
    the key) for a data entry that is not a JSON object.

    >>> report = await import_redis_storage("redis://localhost:6379/0", storage)
    >>> report.states, report.data
    (120, 87)
    """
    try:
        from redis.asyncio import Redis
        from redis.exceptions import RedisError
    except ImportError as err:  # pragma: no cover - redis-py is in the [redis] extra
        raise ConfigError(
            'importing from Redis needs redis-py: pip install "botstate-aiogram[redis]"'
        ) from err
    if not prefix or not separator:
        raise ConfigError("prefix and separator must be non-empty")
    client = Redis.from_url(source) if isinstance(source, str) else source
    where = redact_url(source) if isinstance(source, str) else repr(client)
    report = ImportReport()
    try:
        batch: list[bytes] = []
        async for raw_key in client.scan_iter(match=_glob(prefix + separator) + "*", count=1000):
            batch.append(raw_key)
            if len(batch) >= _BATCH:
                await _copy(client, batch, target, separator, json_loads, dry_run, report)
                batch = []
        if batch:
            await _copy(client, batch, target, separator, json_loads, dry_run, report)
    except RedisError as err:
        raise StorageUnavailable(f"reading {where} failed: {type(err).__name__}: {err}") from err
    finally:
        if isinstance(source, str):
            await client.aclose()
    return report


async def _copy(
    client: Redis,
    raw_keys: list[bytes],
    target: Storage[Any],
    separator: str,
    json_loads: Callable[[str], Any],
    dry_run: bool,
    report: ImportReport,
) -> None:
    keys = [k.decode() if isinstance(k, bytes) else str(k) for k in raw_keys]
    wanted = []
    for key in keys:
        part = key.rsplit(separator, 1)[-1]
        if part == "lock":
            report.locks += 1
        elif part in ("state", "data"):
            wanted.append((key, part))
        else:
            report.skipped.append(key)
    if not wanted:
        return
    pipe = client.pipeline(transaction=False)
    for key, _ in wanted:
        pipe.get(key)
        pipe.pttl(key)
    replies = await pipe.execute()
    for index, (key, part) in enumerate(wanted):
        raw, pttl = replies[2 * index], replies[2 * index + 1]
        if raw is None or pttl == -2:
            report.expired += 1
            continue
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        if part == "state":
            value: Any = text
            report.states += 1
        else:
            try:
                value = json_loads(text)
            except ValueError as err:
                raise DecodeError(f"FSM data under {key!r} is not JSON: {err}", key) from err
            if not isinstance(value, dict):
                raise DecodeError(f"FSM data under {key!r} is not a JSON object", key)
            report.data += 1
        if not dry_run:
            ttl = pttl / 1000 if pttl > 0 else FOREVER
            await target.set(key, value, ttl=ttl)


def _glob(text: str) -> str:
    """``text`` with Redis glob metacharacters escaped."""
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)
