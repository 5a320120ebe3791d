"""SQLite adapter vs raw aiosqlite doing the same work on the same table shape and pragmas.

Raw aiosqlite is used the way its docs suggest: one ``execute_fetchall`` per
read, ``execute`` + ``commit`` per write (so every write is committed before
its await returns, as the adapter guarantees). Both sides use WAL,
synchronous=NORMAL and the same busy timeout, each on its own file.

- sequential get/set: one task, one op at a time (target ≥ 0.9×).
- 50 concurrent writers: raw shares one connection under an ``asyncio.Lock``
  and commits each write; the adapter group-commits (target ≥ 3×).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

import aiosqlite

from botstate_storage_sqlite import SqliteAdapter

from . import Bench

N_SEQ = 2_000
WRITERS = 50
PER_WRITER = 40
VALUE = b"x" * 100
LIVE = "(expires_at IS NULL OR expires_at > ?)"
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS botstate (key TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL, "
    "expires_at REAL, version INTEGER NOT NULL)"
)
INDEX = (
    "CREATE INDEX IF NOT EXISTS botstate_expires_at ON botstate (expires_at) "
    "WHERE expires_at IS NOT NULL"
)
UPSERT = (
    "INSERT INTO botstate (key, value, expires_at, version) VALUES (?, ?, ?, 1) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
    "expires_at = excluded.expires_at, version = botstate.version + 1"
)
SELECT = f"SELECT value FROM botstate WHERE key = ? AND {LIVE}"


async def open_raw(path: Path) -> aiosqlite.Connection:
    db = await aiosqlite.connect(path, timeout=5.0)
    await db.execute("PRAGMA busy_timeout = 5000")
    await db.execute("PRAGMA journal_mode = WAL")
    await db.execute("PRAGMA synchronous = NORMAL")
    await db.execute(SCHEMA)
    await db.execute(INDEX)
    await db.commit()
    return db


async def run(bench: Bench) -> None:
    with tempfile.TemporaryDirectory(prefix="botstate-bench-") as tmp:
        adapter = SqliteAdapter.from_url(f"sqlite:///{tmp}/ours.db")
        db = await open_raw(Path(tmp) / "raw.db")
        try:
            await _sequential(bench, adapter, db)
            await _concurrent(bench, adapter, db)
        finally:
            await adapter.close()
            await db.close()


async def _sequential(bench: Bench, adapter: SqliteAdapter, db: aiosqlite.Connection) -> None:
    keys = [f"user:{i}" for i in range(N_SEQ)]

    async def ours_set() -> None:
        for key in keys:
            await adapter.set(key, VALUE)

    async def raw_set() -> None:
        for key in keys:
            await db.execute(UPSERT, (key, VALUE, None))
            await db.commit()

    async def ours_get() -> None:
        for key in keys:
            await adapter.get(key)

    async def raw_get() -> None:
        for key in keys:
            await db.execute_fetchall(SELECT, (key, time.time()))

    await bench.compare(
        "sqlite", "sequential set (commit each)", ours=ours_set, raw=raw_set, ops=N_SEQ, target=0.9
    )
    await bench.compare(
        "sqlite", "sequential get", ours=ours_get, raw=raw_get, ops=N_SEQ, target=0.9
    )


async def _concurrent(bench: Bench, adapter: SqliteAdapter, db: aiosqlite.Connection) -> None:
    lock = asyncio.Lock()
    keys = [[f"w{w}:{i}" for i in range(PER_WRITER)] for w in range(WRITERS)]

    async def ours_writer(mine: list[str]) -> None:
        for key in mine:
            await adapter.set(key, VALUE)

    async def raw_writer(mine: list[str]) -> None:
        for key in mine:
            async with lock:
                await db.execute(UPSERT, (key, VALUE, None))
                await db.commit()

    async def ours() -> None:
        await asyncio.gather(*(ours_writer(mine) for mine in keys))

    async def raw() -> None:
        await asyncio.gather(*(raw_writer(mine) for mine in keys))

    before = (adapter.transactions, adapter.writes)
    await bench.compare(
        "sqlite",
        f"{WRITERS} concurrent writers (set)",
        ours=ours,
        raw=raw,
        ops=WRITERS * PER_WRITER,
        target=3.0,
    )
    batches = adapter.transactions - before[0]
    if batches:
        bench.record(
            "sqlite group commit: mean writes per transaction (50 writers)",
            round((adapter.writes - before[1]) / batches, 1),
        )
