"""SQLite-specific behaviour: schema, persistence, purge and events, group commit, errors."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from botstate import ConfigError, InvalidKey, StorageUnavailable, open_storage
from botstate.adapter import ExpiryEvent, ManualClock
from botstate_storage_sqlite import SCHEMA_VERSION, SqliteAdapter


def rows(path: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Read the file with the stdlib driver, as another program would."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


@pytest_asyncio.fixture
async def adapter(db_path: Path) -> AsyncIterator[SqliteAdapter]:
    adapter = SqliteAdapter.from_url(f"sqlite:///{db_path}", purge_interval=0)
    yield adapter
    await adapter.close()


# -- schema ---------------------------------------------------------------
async def test_schema_and_version_are_stored(adapter: SqliteAdapter, db_path: Path) -> None:
    await adapter.set("k", b"v", expires_at=2e9)
    assert rows(db_path, "SELECT name, schema_version FROM botstate_meta") == [
        ("botstate", SCHEMA_VERSION)
    ]
    columns = rows(db_path, "SELECT name, type, pk FROM pragma_table_info('botstate')")
    assert columns == [
        ("key", "TEXT", 1),
        ("value", "BLOB", 0),
        ("expires_at", "REAL", 0),
        ("version", "INTEGER", 0),
    ]
    indexes = rows(db_path, "SELECT name FROM pragma_index_list('botstate') WHERE origin = 'c'")
    assert indexes == [("botstate~expires_at",)]
    assert rows(db_path, "SELECT key, value, expires_at FROM botstate") == [("k", b"v", 2e9)]
    assert rows(db_path, "PRAGMA journal_mode") == [("wal",)]
    assert adapter.journal_mode == "WAL"


async def test_newer_schema_version_is_refused(db_path: Path) -> None:
    first = SqliteAdapter.from_url(f"sqlite:///{db_path}")
    await first.set("k", b"v")
    await first.close()
    conn = sqlite3.connect(db_path)
    conn.execute("UPDATE botstate_meta SET schema_version = ?", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    later = SqliteAdapter.from_url(f"sqlite:///{db_path}")
    with pytest.raises(ConfigError, match=f"schema version {SCHEMA_VERSION + 1}"):
        await later.get("k")
    await later.close()
    assert rows(db_path, "SELECT key FROM botstate") == [("k",)]  # nothing touched


async def test_foreign_table_of_the_same_name_is_refused(db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    conn.commit()
    conn.close()
    adapter = SqliteAdapter.from_url(f"sqlite:///{db_path}?table=users")
    with pytest.raises(ConfigError, match="not a botstate table"):
        await adapter.set("k", b"v")
    await adapter.close()


async def test_tables_in_one_file_are_independent(db_path: Path) -> None:
    a = SqliteAdapter.from_url(f"sqlite:///{db_path}?table=a")
    b = SqliteAdapter.from_url(f"sqlite:///{db_path}?table=b")
    await a.set("k", b"from a")
    await b.set("k", b"from b")
    assert await a.get("k") == b"from a"
    assert [k async for k in b.scan()] == ["k"]
    assert await b.delete("k") is True
    assert await a.get("k") == b"from a"
    await a.close()
    await b.close()
    assert sorted(rows(db_path, "SELECT name FROM botstate_meta")) == [("a",), ("b",)]


# -- persistence ----------------------------------------------------------
async def test_data_survives_reopen(db_path: Path) -> None:
    url = f"sqlite:///{db_path}"
    first = SqliteAdapter.from_url(url)
    await first.set_many({"a": b"1", "b": b"2"}, expires_at=4e9)
    await first.set("c", b"3")
    versioned = await first.get_versioned("c")
    await first.close()
    second = SqliteAdapter.from_url(url)
    assert await second.get_many(["a", "b", "c"]) == {"a": b"1", "b": b"2", "c": b"3"}
    assert await second.get_expiry("a") == 4e9
    assert await second.get_versioned("c") == versioned
    assert versioned is not None
    assert await second.set_if("c", b"4", version=versioned[1]) is not None
    await second.close()


async def test_storage_layer_round_trip(db_path: Path) -> None:
    async with open_storage(f"sqlite:///{db_path}", namespace="bot", ttl=60) as storage:
        await storage.set("user:1", {"name": "Ann"})
        assert await storage.update("hits", lambda v: (v or 0) + 1) == 1
        assert [k async for k in storage.keys("user:")] == ["user:1"]
        remaining = await storage.ttl("user:1")
        assert remaining is not None and 59 < remaining <= 60
    assert rows(db_path, "SELECT key FROM botstate ORDER BY key") == [
        ("bot:hits",),
        ("bot:user:1",),
    ]


# -- expiry ---------------------------------------------------------------
async def test_expired_rows_are_invisible_before_purge(db_path: Path) -> None:
    clock = ManualClock(1000.0)
    adapter = SqliteAdapter.from_url(f"sqlite:///{db_path}", purge_interval=0, clock=clock)
    await adapter.set("k", b"v", expires_at=1010.0)
    got = await adapter.get_versioned("k")
    assert got is not None
    clock.advance(10)  # expires_at <= now: expired
    assert await adapter.get("k") is None
    assert await adapter.has("k") is False
    assert await adapter.get_many(["k"]) == {}
    assert [k async for k in adapter.scan()] == []
    assert await adapter.get_versioned("k") is None
    assert await adapter.get_expiry("k") is None
    assert await adapter.set_if("k", b"x", version=got[1]) is None
    assert await adapter.delete_if("k", version=got[1]) is False
    assert await adapter.delete("k") is False
    assert await adapter.delete_many(["k"]) == 0
    assert rows(db_path, "SELECT key FROM botstate") == [("k",)]  # filtered, still stored
    assert await adapter.set_if("k", b"new", version=None) is not None
    assert await adapter.get("k") == b"new"
    await adapter.close()


async def test_purge_on_open_reports_key_and_value(db_path: Path) -> None:
    clock = ManualClock(1000.0)
    url = f"sqlite:///{db_path}"
    first = SqliteAdapter.from_url(url, purge_interval=0, clock=clock)
    await first.set("old", b"last words", expires_at=1010.0)
    await first.set("keep", b"x", expires_at=5000.0)
    await first.set("forever", b"y")
    await first.close()
    clock.advance(20)
    second = SqliteAdapter.from_url(url, purge_interval=0, clock=clock)
    seen: list[ExpiryEvent] = []
    second.on_expire(seen.append)
    assert await second.get("forever") == b"y"  # first use opens, and purges
    assert seen == [ExpiryEvent("old", b"last words", "expired", 1010.0)]
    assert rows(db_path, "SELECT key FROM botstate ORDER BY key") == [("forever",), ("keep",)]
    assert await second.purge() == 0
    await second.close()


async def test_background_purge_with_async_callback(db_path: Path) -> None:
    clock = ManualClock(1000.0)
    adapter = SqliteAdapter.from_url(f"sqlite:///{db_path}", purge_interval=0.02, clock=clock)
    seen: list[tuple[str, bytes]] = []

    async def callback(event: ExpiryEvent) -> None:
        await asyncio.sleep(0)
        seen.append((event.key, event.value))

    unsubscribe = adapter.on_expire(callback)
    await adapter.set_many({f"s{i}": b"%d" % i for i in range(5)}, expires_at=1001.0)
    await adapter.set("live", b"x", expires_at=2000.0)
    clock.advance(5)
    for _ in range(200):
        if len(seen) == 5:
            break
        await asyncio.sleep(0.01)
    assert sorted(seen) == [(f"s{i}", b"%d" % i) for i in range(5)]
    assert rows(db_path, "SELECT key FROM botstate") == [("live",)]
    unsubscribe()
    await adapter.close()
    assert adapter._purger is None


async def test_purge_without_subscribers_deletes_in_batches(db_path: Path) -> None:
    clock = ManualClock(1000.0)
    adapter = SqliteAdapter.from_url(f"sqlite:///{db_path}", purge_interval=0, clock=clock)
    await adapter.set_many({f"k{i}": b"v" for i in range(2500)}, expires_at=1001.0)
    clock.advance(2)
    assert await adapter.purge() == 2500
    assert rows(db_path, "SELECT count(*) FROM botstate") == [(0,)]
    await adapter.close()


# -- group commit ---------------------------------------------------------
async def test_concurrent_writes_share_transactions(adapter: SqliteAdapter) -> None:
    await adapter.set("warm", b"up")
    before = adapter.transactions
    await asyncio.gather(*(adapter.set(f"c{i}", b"%d" % i) for i in range(200)))
    batches = adapter.transactions - before
    assert 1 <= batches <= 5, batches
    assert await adapter.get_many([f"c{i}" for i in range(200)]) == {
        f"c{i}": b"%d" % i for i in range(200)
    }


async def test_sequential_writes_go_at_once(adapter: SqliteAdapter) -> None:
    await adapter.set("warm", b"up")
    before = adapter.transactions
    for i in range(5):
        await adapter.set(f"s{i}", b"v")
        assert adapter.transactions == before + i + 1  # committed before the await returned


async def test_writes_arriving_during_a_commit_join_the_next_batch(adapter: SqliteAdapter) -> None:
    await adapter.set("warm", b"up")
    before = adapter.transactions
    first = asyncio.ensure_future(adapter.set("first", b"1"))
    await asyncio.sleep(0)  # the first write's batch is now in flight on the thread
    rest = [asyncio.ensure_future(adapter.set(f"r{i}", b"2")) for i in range(20)]
    await asyncio.gather(first, *rest)
    assert adapter.transactions - before == 2


async def test_a_failing_write_fails_only_its_caller(adapter: SqliteAdapter) -> None:
    results = await asyncio.gather(
        adapter.set("good1", b"1"),
        adapter.set("bad\ud800", b"x"),  # a lone surrogate cannot be encoded for SQLite
        adapter.set_many({"m1": b"1", "m\udfff": b"2"}),  # all or nothing
        adapter.set("good2", b"2"),
        return_exceptions=True,
    )
    assert results[0] is None and results[3] is None
    assert isinstance(results[1], InvalidKey)
    assert isinstance(results[2], InvalidKey)
    assert await adapter.get_many(["good1", "good2", "m1"]) == {"good1": b"1", "good2": b"2"}


async def test_locked_database_fails_the_group_then_recovers(db_path: Path) -> None:
    adapter = SqliteAdapter.from_url(f"sqlite:///{db_path}", busy_timeout=0.5, purge_interval=0)
    await adapter.set("before", b"0")
    blocker = sqlite3.connect(db_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        writes = asyncio.gather(
            *(adapter.set(f"k{i}", b"v") for i in range(3)), return_exceptions=True
        )
        await asyncio.sleep(0.05)
        started = time.monotonic()
        assert await adapter.get("before") == b"0"  # reads do not queue behind the writes
        assert time.monotonic() - started < 0.25
        for result in await writes:
            assert isinstance(result, StorageUnavailable), result
            assert "locked" in str(result) and "busy_timeout=0.5" in str(result)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert await adapter.get_many(["k0", "k1", "k2"]) == {}
    await adapter.set("k0", b"v")
    assert await adapter.get("k0") == b"v"
    await adapter.close()


async def test_close_commits_queued_writes(db_path: Path) -> None:
    adapter = SqliteAdapter.from_url(f"sqlite:///{db_path}")
    await adapter.set("warm", b"up")
    writes = [asyncio.ensure_future(adapter.set(f"q{i}", b"v")) for i in range(30)]
    await asyncio.sleep(0)
    await adapter.close()
    await asyncio.gather(*writes)
    assert rows(db_path, "SELECT count(*) FROM botstate") == [(31,)]
    leaked = [t for t in asyncio.all_tasks() if (t.get_name() or "").startswith("botstate-")]
    assert leaked == []


# -- errors ---------------------------------------------------------------
async def test_missing_directory_is_a_config_error(tmp_path: Path) -> None:
    adapter = SqliteAdapter.from_url(f"sqlite:///{tmp_path}/no/such/dir/state.db")
    with pytest.raises(ConfigError, match="cannot open") as info:
        await adapter.get("k")
    assert isinstance(info.value.__cause__, sqlite3.Error)
    await adapter.close()


@pytest.mark.parametrize("delay", [1e-6, 0.001, 0.003, 0.01])
def test_timeout_while_opening_leaves_no_thread_behind(
    db_path: Path, monkeypatch: pytest.MonkeyPatch, delay: float
) -> None:
    """A timeout (any cancellation) while the file opens leaves no thread and no traceback.

    A worker that reported to an event loop closed by then printed a thread
    traceback ending in "Event loop is closed" (0.1 on aiosqlite).
    """
    failures: list[threading.ExceptHookArgs] = []
    monkeypatch.setattr(threading, "excepthook", failures.append)
    before = set(threading.enumerate())

    async def open_with_timeout() -> None:
        adapter = SqliteAdapter.from_url(f"sqlite:///{db_path}", purge_interval=0)
        try:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(adapter.get("k"), delay)
        finally:
            await adapter.close()

    for _ in range(5):
        asyncio.run(open_with_timeout())  # closes its loop right after the timeout
    for thread in set(threading.enumerate()) - before:
        thread.join(timeout=5)
    assert [(f.exc_type, f.exc_value) for f in failures] == []


def test_timeout_while_opening_prints_no_thread_traceback(tmp_path: Path) -> None:
    """``botstate keys sqlite:///bot.db --timeout 0.000001`` printed "Event loop is closed"."""
    code = (
        "import asyncio, sys\n"
        "from botstate_storage_sqlite import SqliteAdapter\n"
        "async def main():\n"
        "    adapter = SqliteAdapter.from_url(sys.argv[1])\n"
        "    try:\n"
        "        await asyncio.wait_for(adapter.get('k'), 1e-6)\n"
        "    except asyncio.TimeoutError:\n"
        "        pass\n"
        "    await adapter.close()\n"
        "for _ in range(5):\n"
        "    asyncio.run(main())\n"
        "import time; time.sleep(0.3)  # a stray worker thread would report by now\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, f"sqlite:///{tmp_path}/bot.db"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


@pytest.fixture
def not_a_database(db_path: Path) -> Path:
    db_path.write_bytes(b"this is a text file, not a database" * 100)
    return db_path


async def test_not_a_database_is_a_config_error(not_a_database: Path) -> None:
    db_path = not_a_database
    adapter = SqliteAdapter.from_url(f"sqlite:///{db_path}")
    with pytest.raises(ConfigError, match="not a SQLite database"):
        await adapter.set("k", b"v")
    await adapter.close()


async def test_use_after_close_raises(adapter: SqliteAdapter) -> None:
    await adapter.set("k", b"v")
    await adapter.close()
    with pytest.raises(StorageUnavailable, match="closed"):
        await adapter.get("k")
    with pytest.raises(StorageUnavailable, match="closed"):
        await adapter.set("k", b"v")


async def test_versions_change_on_every_write(adapter: SqliteAdapter) -> None:
    seen = set()
    for i in range(5):
        await adapter.set("k", b"%d" % i)
        got = await adapter.get_versioned("k")
        assert got is not None
        seen.add(got[1])
    assert len(seen) == 5
    assert await adapter.set_if("k", b"x", version="not-a-version") is None
    assert await adapter.set_if("k", b"x", version=2**70) is None
    assert await adapter.delete_if("k", version=b"nope") is False


async def test_tables_whose_names_extend_each_other_share_a_file(db_path: Path) -> None:
    """table=bot and table=bot_expires_at collided on an index name in 0.1."""
    url = f"sqlite:///{db_path}"
    for table in ("bot", "bot_expires_at", "bot_x"):
        storage = open_storage(url, table=table)
        await storage.set("k", table)
        await storage.close()
    for table in ("bot", "bot_expires_at", "bot_x"):
        async with open_storage(url, table=table) as storage:
            assert await storage.get("k") == table


async def test_a_name_taken_by_another_object_is_a_config_error(db_path: Path) -> None:
    with sqlite3.connect(db_path) as conn:
        conn.execute("CREATE TABLE other (x)")
        conn.execute("CREATE INDEX sessions ON other (x)")  # an index named like our table
    storage = open_storage(f"sqlite:///{db_path}", table="sessions")
    with pytest.raises(ConfigError, match="choose another name"):
        await storage.get("k")  # not StorageUnavailable: retrying can never succeed
    await storage.close()


async def test_missing_directory_is_named(tmp_path: Path) -> None:
    storage = open_storage(f"sqlite:///{tmp_path}/nowhere/bot.db")
    with pytest.raises(ConfigError) as caught:  # not StorageUnavailable: a retry cannot help
        await storage.set("k", 1)
    message = str(caught.value)
    assert f"the directory {str(tmp_path / 'nowhere')!r} does not exist: create it" in message
    assert message.count(str(tmp_path / "nowhere")) == 2  # the database path and the folder
    await storage.close()


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """Make ``path`` (a file or a directory) unwritable for this process, really.

    Not root: ``chmod``. As root (CI runs as root) permissions do not stop writes,
    so the file or directory is made immutable with ``chattr +i``, which stops
    root too; where that is refused (no CAP_LINUX_IMMUTABLE, a file system
    without the flag) the test is skipped, saying so. Each use checks that
    writing is refused before the test relies on it.
    """
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(0o555 if path.is_dir() else 0o444)
        undo = [lambda: path.chmod(mode)]
    else:
        made = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
        if made.returncode != 0:
            pytest.skip(
                "running as root, where chmod does not stop writes, and `chattr +i` is not "
                f"available here: {made.stderr.strip()}"
            )
        undo = [lambda: subprocess.run(["chattr", "-i", str(path)], check=True)]
    try:
        probe = path / "probe" if path.is_dir() else path
        with pytest.raises(OSError), probe.open("ab"):
            pass
        yield
    finally:
        for step in undo:
            step()


async def test_read_only_file_is_a_config_error_naming_it(db_path: Path) -> None:
    url = f"sqlite:///{db_path}"
    storage = open_storage(url)
    await storage.set("k", 1)
    await storage.close()
    with read_only(db_path):
        storage = open_storage(url)
        assert await storage.get("k") == 1  # reading a read-only file works
        with pytest.raises(ConfigError) as caught:
            await storage.set("k", 2)
        await storage.close()
    message = str(caught.value)
    assert f"the file {str(db_path)!r} is read-only for this process" in message
    assert "write permission" in message
    assert "readonly database" in message  # what SQLite said, for searching
    assert message.count(str(db_path)) == 2  # the database and the file, not the table twice


@pytest.fixture
def empty_file(db_path: Path) -> Path:
    db_path.touch()
    return db_path


async def test_new_read_only_file_fails_at_open(empty_file: Path) -> None:
    db_path = empty_file
    with read_only(db_path):
        storage = open_storage(f"sqlite:///{db_path}")
        with pytest.raises(ConfigError, match="is read-only for this process") as caught:
            await storage.get("k")  # creating the table is the first write
        await storage.close()
    assert str(caught.value).count("(table 'botstate')") == 1


@pytest.mark.parametrize("journal_mode", ["WAL", "DELETE"])
async def test_read_only_directory_is_a_config_error_naming_it(
    tmp_path: Path, journal_mode: str
) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    url = f"sqlite:///{folder}/bot.db"
    storage = open_storage(url, journal_mode=journal_mode)
    await storage.set("k", 1)
    await storage.close()
    with read_only(folder):
        storage = open_storage(url, journal_mode=journal_mode)
        with pytest.raises(ConfigError) as caught:
            # WAL needs its -shm file to open; the rollback journal is made by the write.
            await storage.get("k")
            await storage.set("k", 2)
        await storage.close()
        fresh = open_storage(f"sqlite:///{folder}/new.db")
        with pytest.raises(ConfigError, match="is not writable by this process"):
            await fresh.get("k")
        await fresh.close()
    message = str(caught.value)
    assert f"the directory {str(folder)!r} is not writable by this process" in message
    assert "bot.db-wal" in message and "bot.db-journal" in message
    assert "write access to the directory" in message
