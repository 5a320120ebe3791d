"""SQLite adapter vs raw aiosqlite doing the same work on the same table shape and pragmas.

Raw aiosqlite is used the way its docs suggest: one ``execute_fetchall`` per
read, ``execute`` + ``commit`` per write (so every write is committed before
its await returns, as the adapter guarantees). Both sides use WAL,
synchronous=NORMAL and the same busy timeout, each on its own file.

- sequential get/set: one task, one op at a time (target ≥ 0.9×).
- 50 concurrent writers: raw shares one connection under an ``asyncio.Lock``
  and commits each write; the adapter group-commits (target ≥ 3×).
- get_many(100): raw is one ``SELECT ... WHERE key IN (100 ?)``; set_many(100)
  with expiry: raw is ``executemany`` in one transaction (target ≥ 0.9×).
- informational: atomic update (raw: ``BEGIN IMMEDIATE``, SELECT, upsert,
  COMMIT on one connection) and sessions (raw: SELECT, upsert + commit).
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from pathlib import Path

import aiosqlite

from botstate_storage_sqlite import SqliteAdapter

from . import Bench, one_cpu
from ._cases import SESSION_TTL, dumps, sequentially, session_cases, update_case

N_SEQ = 2_000
BATCH = 100
BATCH_CALLS = 100  # get_many / set_many calls per timed run
N_ATOMIC = 1_500
N_SESSIONS = 1_500
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
SELECT_MANY = f"SELECT key, value FROM botstate WHERE key IN ({','.join('?' * BATCH)}) AND {LIVE}"


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
    # aiosqlite runs each connection on its own thread: pin, see tooling.bench.one_cpu.
    with one_cpu(bench.pin) as pinned, tempfile.TemporaryDirectory(prefix="botstate-bench-") as tmp:
        print(f"sqlite   ({pinned})")
        bench.record("sqlite CPU pinning", pinned)
        adapter = SqliteAdapter.from_url(f"sqlite:///{tmp}/ours.db")
        db = await open_raw(Path(tmp) / "raw.db")
        try:
            await _sequential(bench, adapter, db)
            await _concurrent(bench, adapter, db)
            await _batches(bench, adapter, db)
            await _atomic_and_sessions(bench, adapter, db)
        finally:
            await adapter.close()
            await db.close()


async def _sequential(bench: Bench, adapter: SqliteAdapter, db: aiosqlite.Connection) -> None:
    keys = [f"user:{i}" for i in range(N_SEQ)]

    async def raw_set(key: str) -> None:
        await db.execute(UPSERT, (key, VALUE, None))
        await db.commit()

    async def raw_get(key: str) -> None:
        await db.execute_fetchall(SELECT, (key, time.time()))

    await bench.compare(
        "sqlite",
        "sequential set (commit each)",
        ours=sequentially(adapter.set, keys, VALUE),
        raw=sequentially(raw_set, keys),
        ops=N_SEQ,
        target=0.9,
    )
    await bench.compare(
        "sqlite",
        "sequential get",
        ours=sequentially(adapter.get, keys),
        raw=sequentially(raw_get, keys),
        ops=N_SEQ,
        target=0.9,
    )


async def _concurrent(bench: Bench, adapter: SqliteAdapter, db: aiosqlite.Connection) -> None:
    lock = asyncio.Lock()
    keys = [[f"w{w}:{i}" for i in range(PER_WRITER)] for w in range(WRITERS)]

    async def raw_set(key: str) -> None:
        async with lock:
            await db.execute(UPSERT, (key, VALUE, None))
            await db.commit()

    async def ours() -> None:
        await asyncio.gather(*(sequentially(adapter.set, mine, VALUE)() for mine in keys))

    async def raw() -> None:
        await asyncio.gather(*(sequentially(raw_set, mine)() for mine in keys))

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


async def _batches(bench: Bench, adapter: SqliteAdapter, db: aiosqlite.Connection) -> None:
    keys = [f"user:{i}" for i in range(N_SEQ)]  # written by the sequential set case
    groups = [keys[i : i + BATCH] for i in range(0, N_SEQ, BATCH)]
    batches = [groups[i % len(groups)] for i in range(BATCH_CALLS)]

    async def raw_get_many(batch: list[str]) -> None:
        dict(await db.execute_fetchall(SELECT_MANY, (*batch, time.time())))  # type: ignore[arg-type]

    async def ours_set_many() -> None:
        expires_at = time.time() + SESSION_TTL
        for batch in batches:
            await adapter.set_many(dict.fromkeys(batch, VALUE), expires_at=expires_at)

    async def raw_set_many() -> None:
        expires_at = time.time() + SESSION_TTL
        for batch in batches:
            await db.executemany(UPSERT, [(key, VALUE, expires_at) for key in batch])
            await db.commit()

    ops = BATCH * BATCH_CALLS
    await bench.compare(
        "sqlite",
        f"get_many({BATCH})",
        ours=sequentially(adapter.get_many, batches),
        raw=sequentially(raw_get_many, batches),
        ops=ops,
        target=0.9,
        note=f"raw: one SELECT key, value ... WHERE key IN ({BATCH} ?) AND live",
    )
    await bench.compare(
        "sqlite",
        f"set_many({BATCH}) with expiry",
        ours=ours_set_many,
        raw=raw_set_many,
        ops=ops,
        target=0.9,
        note="raw: executemany(upsert) + commit, one transaction per batch",
    )


async def _atomic_and_sessions(
    bench: Bench, adapter: SqliteAdapter, db: aiosqlite.Connection
) -> None:
    async def raw_update() -> None:
        await db.execute("BEGIN IMMEDIATE")
        try:
            rows = list(await db.execute_fetchall(SELECT, ("raw:counter", time.time())))
            old = json.loads(rows[0][0]) if rows else 0
            await db.execute(UPSERT, ("raw:counter", dumps(old + 1), None))
            await db.commit()
        except BaseException:
            await db.rollback()
            raise

    await update_case(
        bench,
        "sqlite",
        adapter,
        raw_update=raw_update,
        ops=N_ATOMIC,
        note="BEGIN IMMEDIATE + SELECT + upsert + COMMIT on one connection (4 thread hops; "
        "ours: read on the read connection, then one write batch)",
    )

    async def raw_get(key: str) -> bytes | None:
        rows = list(await db.execute_fetchall(SELECT, (key, time.time())))
        return rows[0][0] if rows else None

    async def raw_set(key: str, value: bytes, ttl: float) -> None:
        await db.execute(UPSERT, (key, value, time.time() + ttl))
        await db.commit()

    await session_cases(
        bench,
        "sqlite",
        adapter,
        sessions=N_SESSIONS,
        raw_get=raw_get,
        raw_set=raw_set,
        raw_note="SELECT; upsert + commit",
        writes=lambda: adapter.writes,
        targets=(None, 0.9),  # issue 14
    )
