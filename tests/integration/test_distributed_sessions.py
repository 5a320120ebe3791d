"""Sessions with isolation="distributed" across real processes on every shared backend.

4 processes × 250 increments of one session key (each process runs 5 concurrent
tasks) must end at exactly 1000: no lost update, no lock error reaching a handler.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

import botstate
from tooling.services import require_module

PROCESSES, PER_PROCESS, TASKS = 4, 250, 5

WORKER = """
import asyncio, sys
import botstate

async def main(url, namespace, count, tasks):
    storage = botstate.open_storage(url, namespace=namespace)
    sessions = botstate.Sessions(
        storage, initial=lambda: {"n": 0}, isolation="distributed", lock_timeout=300
    )

    async def work(n):
        for _ in range(n):
            async with sessions.open("counter") as session:
                session.data["n"] += 1

    await asyncio.gather(*(work(count // tasks) for _ in range(tasks)))
    await storage.close()
    print("done")

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
"""


def run_workers(url: str, namespace: str, timeout: float) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, url, namespace, str(PER_PROCESS), str(TASKS)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    failures = []
    for proc in procs:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            failures.append(f"timed out: {err[-2000:]}")
            continue
        if proc.returncode != 0 or "done" not in out:
            failures.append(f"exit {proc.returncode}: {err[-2000:]}")
    assert not failures, failures


async def final_count(url: str, namespace: str) -> Any:
    storage = botstate.open_storage(url, namespace=namespace)
    try:
        async with botstate.Sessions(storage).open("counter") as session:
            return session.data
    finally:
        await storage.close()


@pytest.mark.slow
def test_sqlite(tmp_path: Path) -> None:
    require_module("botstate_storage_sqlite", "botstate-storage-sqlite")
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    run_workers(url, "dist", timeout=240)
    assert asyncio.run(final_count(url, "dist")) == {"n": PROCESSES * PER_PROCESS}


@pytest.mark.slow
def test_redis(redis_server: Any) -> None:
    require_module("botstate_storage_redis", "botstate-storage-redis")
    namespace = f"dist{uuid.uuid4().hex[:8]}"
    run_workers(redis_server.url, namespace, timeout=240)
    assert asyncio.run(final_count(redis_server.url, namespace)) == {"n": PROCESSES * PER_PROCESS}


@pytest.mark.slow
def test_dynamodb(dynamodb_local: Any) -> None:
    require_module("botstate_storage_kv", "botstate-storage-kv")
    url = dynamodb_local.url(f"dist{uuid.uuid4().hex[:8]}", create=True)
    asyncio.run(final_count(url, "dist"))  # creates the table once, before the race
    run_workers(url, "dist", timeout=400)
    assert asyncio.run(final_count(url, "dist")) == {"n": PROCESSES * PER_PROCESS}
