"""The SQLite adapter's blocking twins (``SqliteAdapter.blocking()``), called from plain threads.

The conformance suite checks each twin against its async op; these cover what
is SQLite's own: the twins and the async path on one file from many threads,
a write lock held by another connection, an interrupted wait, and close().
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from botstate import StorageUnavailable
from botstate.sync import SyncStorage, open_storage
from botstate_storage_sqlite import SqliteAdapter
from botstate_storage_sqlite.blocking import SqliteBlocking

THREADS = 8
PER_THREAD = 500


def connected(sync: SyncStorage[Any]) -> tuple[SqliteAdapter, SqliteBlocking]:
    """The adapter under ``sync`` and its twins, after a first call opened the connections."""
    adapter = sync.storage.adapter
    assert isinstance(adapter, SqliteAdapter)
    sync.get("warm-up")
    twins = adapter.blocking()
    assert twins is not None
    return adapter, twins


def sqlite_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("botstate-sqlite:")}


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "blocking.db"


@pytest.fixture
def sync(db_path: Path) -> Iterator[SyncStorage[Any]]:
    storage = open_storage(f"sqlite:///{db_path}?busy_timeout=0.3&purge_interval=0")
    yield storage
    storage.close()


def hammer(work: Callable[[int], None]) -> None:
    """Run ``work(0)`` ... ``work(THREADS - 1)`` on as many threads; re-raise the first error."""
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(work, range(THREADS)))


def test_none_until_connected_then_the_same_object(db_path: Path) -> None:
    with open_storage(f"sqlite:///{db_path}") as sync:
        adapter = sync.storage.adapter
        assert isinstance(adapter, SqliteAdapter)
        assert adapter.blocking() is None  # nothing opened yet: botstate.sync goes async
        _, twins = connected(sync)
        assert adapter.blocking() is twins


def test_a_blocking_write_is_committed_when_it_returns(
    sync: SyncStorage[Any], db_path: Path
) -> None:
    adapter, twins = connected(sync)
    twins.set("k", b"v", expires_at=4e9)
    other = sqlite3.connect(db_path)  # another program reading the file
    try:
        assert other.execute(
            "SELECT value, expires_at FROM botstate WHERE key = 'k'"
        ).fetchall() == [(b"v", 4e9)]
    finally:
        other.close()
    assert sync.runner.run(adapter.get("k")) == b"v"
    assert adapter.transactions == 0  # not a group-commit batch


def test_threads_mixing_twins_and_update_stay_exact(sync: SyncStorage[Any]) -> None:
    adapter, twins = connected(sync)

    def work(index: int) -> None:
        for i in range(PER_THREAD):
            key = f"t{index}:{i % 50}"
            value = f"{index}:{i}".encode()
            twins.set(key, value)
            assert twins.get(key) == value  # no other thread writes this key
            if i % 5 == 0:
                sync.update("counter", lambda count: (count or 0) + 1)

    hammer(work)
    assert sync.get("counter") == THREADS * PER_THREAD // 5
    expected = {
        f"t{t}:{k}": f"{t}:{PER_THREAD - 50 + k}".encode()
        for t in range(THREADS)
        for k in range(50)
    }
    assert twins.get_many(list(expected)) == expected
    assert sync.runner.run(adapter.get_many(list(expected))) == expected


def test_write_locked_by_another_connection_times_out_then_recovers(
    sync: SyncStorage[Any], db_path: Path
) -> None:
    _, twins = connected(sync)
    twins.set("before", b"1")
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # holds the write lock
    try:
        with pytest.raises(StorageUnavailable, match="busy_timeout"):
            twins.set("k", b"v")
        assert twins.get("before") == b"1"  # WAL: reads go on meanwhile
    finally:
        other.execute("ROLLBACK")
        other.close()
    twins.set("k", b"v2")
    assert twins.get("k") == b"v2"
    assert twins.delete_many(["k", "before", "absent"]) == 2


@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGALRM")
def test_an_interrupted_wait_leaves_the_worker_serving(
    sync: SyncStorage[Any], db_path: Path
) -> None:
    _, twins = connected(sync)
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # the blocking write below waits for this lock

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        with pytest.raises(KeyboardInterrupt):
            twins.set("interrupted", b"maybe")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        other.execute("ROLLBACK")
        other.close()
    # The abandoned job finishes (or fails) on its own; the next calls are served.
    twins.set("next", b"ok")
    assert twins.get("next") == b"ok"
    assert twins.get("interrupted") in (b"maybe", None)
    assert sync.get("missing") is None  # and the async path too


def test_close_ends_the_threads_and_twins_refuse(db_path: Path) -> None:
    before = sqlite_threads()
    sync = open_storage(f"sqlite:///{db_path}")
    _, twins = connected(sync)
    twins.set("k", b"v")
    assert len(sqlite_threads() - before) == 2  # a reader and a writer
    sync.close()
    assert not (sqlite_threads() - before)
    calls: list[Callable[[], object]] = [
        lambda: twins.get("k"),
        lambda: twins.has("k"),
        lambda: twins.get_expiry("k"),
        lambda: twins.get_many(["k"]),
        lambda: twins.set("k", b"v"),
        lambda: twins.set_many({"k": b"v"}),
        lambda: twins.delete("k"),
        lambda: twins.delete_many(["k"]),
    ]
    for call in calls:
        with pytest.raises(StorageUnavailable, match="closed"):
            call()


def test_a_forked_child_is_refused_not_left_waiting(db_path: Path) -> None:
    if not hasattr(os, "fork"):
        pytest.skip("no fork on this platform")
    code = f"""
import os
from botstate import StorageUnavailable
from botstate.sync import open_storage
sync = open_storage("sqlite:///{db_path}")
sync.get("warm-up")
twins = sync.storage.adapter.blocking()
twins.set("k", b"parent")
pid = os.fork()
if pid == 0:
    try:
        twins.get("k")   # the connection threads stayed in the parent
        os._exit(3)
    except StorageUnavailable as err:
        os._exit(0 if "forked" in str(err) else 4)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status), twins.get("k").decode())
"""
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, timeout=60
    )
    assert out.stdout.split() == ["0", "parent"], out.stderr
