"""No silent lost update with default Sessions settings, across real processes (issue 10 item 4).

4 processes increment one session key with ``Sessions(storage, initial=...)``
(the default ``isolation="process"``: nothing serialises the processes). On an
ATOMIC backend each save is compare-and-set against the version read, so an
increment that lost the race raises ``ConflictError``. Each child counts its
saved increments and its ConflictErrors and prints both; every attempt must be
one or the other, and the final value must equal the increments counted.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

import botstate
from tooling.services import require_module

PROCESSES, TASKS = 4, 2

WORKER = """
import asyncio, sys, time
import botstate
from botstate.errors import ConflictError

async def main(url, namespace, count, tasks, start_at):
    storage = botstate.open_storage(url, namespace=namespace)
    sessions = botstate.Sessions(storage, initial=lambda: {"n": 0})  # default settings
    counted = conflicts = 0

    async def work(n):
        nonlocal counted, conflicts
        for _ in range(n):
            try:
                async with sessions.open("counter") as session:
                    session.data["n"] += 1
            except ConflictError:
                conflicts += 1
            else:
                counted += 1

    await storage.get("warm-up")  # connect before the race starts
    await asyncio.sleep(max(0.0, start_at - time.time()))
    await asyncio.gather(*(work(count // tasks) for _ in range(tasks)))
    await storage.close()
    print(f"counted={counted} conflicts={conflicts}")

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])))
"""


def race(url: str, namespace: str, per_process: int, timeout: float) -> tuple[int, int]:
    """Run the children together; return (increments counted, ConflictErrors) over all."""
    start_at = time.time() + 3  # every child imported and connected by then
    args = [url, namespace, str(per_process), str(TASKS), str(start_at)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    counted = conflicts = 0
    failures = []
    for proc in procs:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            failures.append(f"timed out: {err[-2000:]}")
            continue
        if proc.returncode != 0 or "counted=" not in out:
            failures.append(f"exit {proc.returncode}: {err[-2000:]}")
            continue
        fields = dict(part.split("=") for part in out.split()[-2:])
        counted += int(fields["counted"])
        conflicts += int(fields["conflicts"])
    assert not failures, failures
    return counted, conflicts


async def final_count(url: str, namespace: str) -> Any:
    storage = botstate.open_storage(url, namespace=namespace)
    try:
        async with botstate.Sessions(storage).open("counter") as session:
            return session.data
    finally:
        await storage.close()


def check(url: str, namespace: str, per_process: int, timeout: float) -> None:
    counted, conflicts = race(url, namespace, per_process, timeout)
    attempts = PROCESSES * per_process
    print(f"\n{attempts} increments: {counted} counted, {conflicts} reported as ConflictError")
    assert counted + conflicts == attempts  # nothing lost silently
    assert asyncio.run(final_count(url, namespace)) == {"n": counted}


@pytest.mark.slow
def test_sqlite(tmp_path: Path) -> None:
    require_module("botstate_storage_sqlite", "botstate-storage-sqlite")
    check(f"sqlite:///{tmp_path / 'shared.db'}", "race", 200, timeout=120)


@pytest.mark.slow
def test_redis(redis_server: Any) -> None:
    require_module("botstate_storage_redis", "botstate-storage-redis")
    check(redis_server.url, f"race{uuid.uuid4().hex[:8]}", 200, timeout=120)


@pytest.mark.slow
def test_dynamodb(dynamodb_local: Any) -> None:
    require_module("botstate_storage_kv", "botstate-storage-kv")
    url = dynamodb_local.url(f"race{uuid.uuid4().hex[:8]}", create=True)
    asyncio.run(final_count(url, "race"))  # creates the table once, before the race
    check(url, "race", 40, timeout=240)
