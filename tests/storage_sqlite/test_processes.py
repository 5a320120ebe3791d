"""Several processes on one file, and a writer killed with SIGKILL mid-run.

The child processes run this environment's interpreter (``sys.executable``)
and open the file through ``botstate.open_storage`` like an application would.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

INCREMENTER = textwrap.dedent(
    """
    import asyncio, sys, time, botstate

    async def main(url, n, start_at):
        storage = botstate.open_storage(url)
        await storage.get("warm-up")  # open (schema, pragmas) before the common start
        while time.time() < start_at:
            await asyncio.sleep(0.005)
        for _ in range(n):
            await storage.update("counter", lambda v: (v or 0) + 1)
        await storage.close()

    asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))
    """
)

WRITER = textwrap.dedent(
    """
    import asyncio, os, sys, botstate

    async def writer(storage, worker):
        i = 0
        while True:
            key = f"w{worker}-{i}"
            await storage.set(key, {"worker": worker, "i": i, "pad": "x" * 200})
            # Acknowledge only after the await returned, i.e. after COMMIT.
            os.write(1, (key + "\\n").encode())
            i += 1

    async def main(url):
        storage = botstate.open_storage(url)
        await asyncio.gather(*(writer(storage, w) for w in range(8)))

    asyncio.run(main(sys.argv[1]))
    """
)


def test_processes_increment_one_key_without_losing_updates(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    url = f"sqlite:///{path}"
    start_at = time.time() + 1.5  # after every interpreter has started and opened the file
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", INCREMENTER, url, "250", str(start_at)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert "locked" not in out + err, err
    conn = sqlite3.connect(path)
    try:
        (value,) = conn.execute("SELECT value FROM botstate WHERE key = 'counter'").fetchone()
    finally:
        conn.close()
    assert value == b"1000"


def test_sigkill_loses_no_acknowledged_write(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, f"sqlite:///{path}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    received = b""
    deadline = time.monotonic() + 60
    try:
        while received.count(b"\n") < 2000 and time.monotonic() < deadline:
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            received += chunk
    finally:
        proc.send_signal(signal.SIGKILL)  # mid-run: the writers never stop on their own
        rest, err = proc.communicate(timeout=30)
    received += rest
    assert proc.returncode == -signal.SIGKILL, err.decode(errors="replace")
    acknowledged = [line.decode() for line in received.split(b"\n")[:-1]]  # complete lines
    assert len(acknowledged) >= 2000, err.decode(errors="replace")

    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        stored = {key for (key,) in conn.execute("SELECT key FROM botstate")}
    finally:
        conn.close()
    missing = [key for key in acknowledged if key not in stored]
    assert missing == []
