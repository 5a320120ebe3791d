"""Where a SQLite session block's time goes, against raw aiosqlite (issue 14).

``python -m tooling.bench.session_floor_sqlite [repeats]`` (in the bench
environment) times the "session open, unchanged" case of ``bench_sqlite``
block by block, in CPU time (``time.process_time``: the read threads count,
other processes' load less), with the process pinned to one CPU as the bench
pins it:

- RAW: ``SELECT`` with aiosqlite's ``execute_fetchall`` + ``json.loads``, as
  :func:`tooling.bench._cases.session_cases` runs it, and its read alone;
- OURS: ``Sessions(isolation="process")`` opened and left unchanged, and the
  adapter's ``get_versioned`` alone;
- FLOOR: :class:`tooling.bench.session_floor.Floor` on the SQLite adapter, a
  block with every guarantee of a session and no structure at all.

Each row runs ``BLOCKS`` keys in turn; the rows are interleaved within each
repeat (every other repeat in reverse). OURS minus FLOOR is what the session
layer's structure costs; after a hop to the read thread and back, Python work
costs about 3x its warm microbenchmark time, so every object and call an open
makes shows here. Trust ratios, not absolute numbers.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiosqlite

from botstate import Sessions, Storage
from botstate_storage_sqlite import SqliteAdapter

from . import one_cpu
from ._cases import SESSION_TTL, dumps, initial
from .bench_sqlite import SELECT, UPSERT, open_raw
from .session_floor import Floor

BLOCKS = 2_000
REPEAT = 9


async def measure(repeat: int) -> None:
    with one_cpu(True) as pinned, tempfile.TemporaryDirectory(prefix="botstate-floor-") as tmp:
        print(f"SQLite session block, CPU time per block ({pinned}), {repeat} repeats")
        adapter = SqliteAdapter.from_url(f"sqlite:///{tmp}/ours.db")
        db = await open_raw(Path(tmp) / "raw.db")
        try:
            await _rows(adapter, db, repeat)
        finally:
            await adapter.close()
            await db.close()


async def _rows(adapter: SqliteAdapter, db: aiosqlite.Connection, repeat: int) -> None:
    storage: Storage[Any] = Storage(adapter, namespace="bench")
    sessions: Sessions[dict[str, Any]] = Sessions(
        storage, initial=initial, ttl=SESSION_TTL, isolation="process"
    )
    keys = [f"chat:{i}" for i in range(BLOCKS)]
    raw_keys = [f"raw:{key}" for key in keys]
    full_keys = [storage.full_key(key) for key in keys]
    for i, (key, raw_key) in enumerate(zip(keys, raw_keys, strict=True)):
        data = {"counter": i, "name": f"user {i}", "lang": "en", "step": "menu", "cart": [1, 2]}
        async with sessions.open(key) as session:
            session.data = data
        await db.execute(UPSERT, (raw_key, dumps(data), time.time() + SESSION_TTL))
        await db.commit()
    locks: dict[str, list[Any]] = {}
    seen = 0

    async def raw_block() -> None:
        nonlocal seen
        for key in raw_keys:
            rows = list(await db.execute_fetchall(SELECT, (key, time.time())))
            data = initial() if not rows else json.loads(rows[0][0])
            seen += data["counter"]

    async def raw_read() -> None:
        for key in raw_keys:
            await db.execute_fetchall(SELECT, (key, time.time()))

    async def ours_block() -> None:
        nonlocal seen
        for key in keys:
            async with sessions.open(key) as session:
                seen += session.data["counter"]

    async def ours_read() -> None:
        for key in full_keys:
            await adapter.get_versioned(key)

    async def floor_block() -> None:
        nonlocal seen
        for key in keys:
            async with Floor(storage, locks, key) as block:
                seen += block.data["counter"]

    table: list[tuple[str, Callable[[], Awaitable[None]]]] = [
        ("RAW block: execute_fetchall + json.loads", raw_block),
        ("  raw execute_fetchall", raw_read),
        ("OURS block: Sessions open, unchanged", ours_block),
        ("  adapter.get_versioned", ours_read),
        ("FLOOR block (every guarantee, no structure)", floor_block),
    ]
    times: dict[str, list[float]] = {name: [] for name, _ in table}
    for _, fn in table:
        await fn()  # warm-up: statements prepared, pages cached
    for i in range(repeat):
        for name, fn in table if i % 2 == 0 else table[::-1]:
            start = time.process_time()
            await fn()
            times[name].append((time.process_time() - start) / BLOCKS * 1e6)
    print(f"{'per block, CPU time':<46} {'min µs':>7} {'med µs':>7}")
    mids: dict[str, float] = {}
    for name, _ in table:
        ordered = sorted(times[name])
        mids[name.split(":")[0].split(" (")[0]] = ordered[repeat // 2]
        print(f"{name:<46} {ordered[0]:>7.2f} {ordered[repeat // 2]:>7.2f}")
    raw, ours, floor = mids["RAW block"], mids["OURS block"], mids["FLOOR block"]
    print(
        f"medians: raw/ours {raw / ours:.2f}×, raw/floor {raw / floor:.2f}×, "
        f"structure {ours - floor:.2f} µs of {ours:.2f}"
    )


def main() -> None:
    asyncio.run(measure(int(sys.argv[1]) if len(sys.argv) > 1 else REPEAT))


if __name__ == "__main__":
    main()
