"""Cases whose botstate side is the same for every adapter: atomic update and sessions.

Each ``bench_<name>.py`` passes its adapter and the raw driver's version of
the work; this module runs both through :meth:`Bench.compare`. The raw side
stores the same JSON bytes (compact separators, as botstate's codec writes).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from botstate import Sessions, Storage
from botstate.adapter import StorageAdapter

from . import Bench

__all__ = [
    "SESSION_TTL",
    "concurrently",
    "dumps",
    "increment",
    "initial",
    "sequentially",
    "session_cases",
    "update_case",
]

SESSION_TTL = 600.0
"""Seconds a session lives; both sides write it with this expiry."""

RawGet = Callable[[str], Awaitable[bytes | None]]
RawSet = Callable[[str, bytes, float], Awaitable[object]]
"""``raw_set(key, value, ttl_seconds)``: a write with the same expiry as botstate's."""


def dumps(value: Any) -> bytes:
    """JSON as botstate's default codec writes it (compact, UTF-8)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def initial() -> dict[str, Any]:
    """A new session's data: a typical small bot state."""
    return {"counter": 0, "name": "", "lang": "en", "step": "start", "cart": []}


def _seed(i: int) -> dict[str, Any]:
    return {"counter": i, "name": f"user {i}", "lang": "en", "step": "menu", "cart": [1, 2, 3]}


def increment(value: int | None) -> int:
    """The update function of the atomic-update case."""
    return (value or 0) + 1


def sequentially(
    op: Callable[..., Awaitable[object]], items: Sequence[Any], *args: object
) -> Callable[[], Awaitable[None]]:
    """One task awaiting ``op(item, *args)`` for each key (or batch of keys) in turn."""
    # Spelled out for no or one extra argument: a call through ``*args`` costs ~70 ns,
    # a third of a memory adapter get, and would be timed on both sides.
    if not args:

        async def run() -> None:
            for item in items:
                await op(item)

    elif len(args) == 1:
        (arg,) = args

        async def run() -> None:
            for item in items:
                await op(item, arg)

    else:

        async def run() -> None:
            for item in items:
                await op(item, *args)

    return run


def concurrently(
    op: Callable[[str], Awaitable[object]], keys: list[str], tasks: int
) -> Callable[[], Awaitable[None]]:
    """``tasks`` asyncio tasks, each running ``op`` over its share of ``keys`` sequentially."""

    async def worker(share: list[str]) -> None:
        for key in share:
            await op(key)

    async def run() -> None:
        await asyncio.gather(*(worker(keys[i::tasks]) for i in range(tasks)))

    return run


async def update_case(
    bench: Bench,
    group: str,
    adapter: StorageAdapter,
    *,
    raw_update: Callable[[], Awaitable[object]],
    ops: int,
    note: str,
    case: str = "atomic update (counter +1, sequential)",
) -> None:
    """``Storage.update(key, lambda v: (v or 0) + 1)`` ``ops`` times, sequentially, on one key.

    ``raw_update()`` is one increment done the raw driver's way; ``note`` says how.
    """
    storage: Storage[Any] = Storage(adapter, namespace="bench")

    async def ours() -> None:
        for _ in range(ops):
            await storage.update("counter", increment)

    async def raw() -> None:
        for _ in range(ops):
            await raw_update()

    await bench.compare(
        group,
        case,
        ours=ours,
        raw=raw,
        ops=ops,
        note="ours: Storage.update = versioned read + compare-and-set write; raw: " + note,
    )


async def session_cases(
    bench: Bench,
    group: str,
    adapter: StorageAdapter,
    *,
    sessions: int,
    raw_get: RawGet,
    raw_set: RawSet,
    raw_note: str,
    writes: Callable[[], int] | None = None,
) -> None:
    """One handler per session key: load, change one field, save; then load without a change.

    ``raw_get``/``raw_set`` take the raw side's own key (``raw:<key>``).
    ``writes()``, if given, counts the adapter's writes, to show that an
    unchanged session writes nothing.
    """
    storage: Storage[Any] = Storage(adapter, namespace="bench")
    opened: Sessions[dict[str, Any]] = Sessions(
        storage, initial=initial, ttl=SESSION_TTL, isolation="process"
    )
    keys = [f"chat:{i}" for i in range(sessions)]
    raw_keys = [f"raw:chat:{i}" for i in range(sessions)]
    for i, (key, raw_key) in enumerate(zip(keys, raw_keys, strict=True)):
        async with opened.open(key) as session:
            session.data = _seed(i)
        await raw_set(raw_key, dumps(_seed(i)), SESSION_TTL)

    async def ours_save() -> None:
        for key in keys:
            async with opened.open(key) as session:
                session.data["counter"] += 1

    async def raw_save() -> None:
        for key in raw_keys:
            stored = await raw_get(key)
            data = initial() if stored is None else json.loads(stored)
            data["counter"] += 1
            await raw_set(key, dumps(data), SESSION_TTL)

    seen = 0

    async def ours_read() -> None:
        nonlocal seen
        for key in keys:
            async with opened.open(key) as session:
                seen += session.data["counter"]

    async def raw_read() -> None:
        nonlocal seen
        for key in raw_keys:
            stored = await raw_get(key)
            data = initial() if stored is None else json.loads(stored)
            seen += data["counter"]

    ours_note = (
        f"ours: Sessions(isolation='process', ttl={SESSION_TTL:g}) open + counter += 1 "
        "(key check, per-key lock, envelope, change detection); raw: "
    )
    await bench.compare(
        group,
        "session open/save (one field changed)",
        ours=ours_save,
        raw=raw_save,
        ops=sessions,
        note=ours_note + f"get + json.loads + modify + json.dumps + set, same TTL ({raw_note})",
    )
    before = writes() if writes else 0
    await bench.compare(
        group,
        "session open, unchanged (no write)",
        ours=ours_read,
        raw=raw_read,
        ops=sessions,
        note="ours: one read, no write; raw: get + json.loads",
    )
    if writes is not None:
        bench.record(f"{group}: writes by 'session open, unchanged' (must be 0)", writes() - before)
