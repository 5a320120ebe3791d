"""The scripted bot in separate processes: a conversation moving between processes,
two processes hammering one chat at once, restarts; on SQLite and Redis."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from conftest import storage_url

pytestmark = pytest.mark.slow

BOT = str(Path(__file__).with_name("scripted_bot.py"))
PINGS, TASKS = 60, 4  # per process


def start(url: str, namespace: str, *args: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, BOT, url, namespace, *map(str, args)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def result(proc: subprocess.Popen[str], timeout: float = 240) -> Any:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def step(url: str, namespace: str, text: str, user: int = 7) -> list[str]:
    got = result(start(url, namespace, "step", text, 1, user))
    assert got["errors"] == []
    return list(got["replies"])


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_two_processes_one_chat_restarts(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = storage_url(backend, tmp_path, request)
    namespace = f"bot{uuid.uuid4().hex[:8]}"
    # Each step is a new process: the conversation's state must come from the store.
    assert step(url, namespace, "/order") == ["What would you like?"]
    assert step(url, namespace, "pizza") == ["How many?"]

    bursts = [start(url, namespace, "burst", PINGS, TASKS) for _ in range(2)]
    for proc in bursts:  # both started, initialized and waiting
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    for proc in bursts:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    spans = []
    for proc in bursts:
        got = result(proc)
        assert (got["done"], got["errors"]) == (PINGS, [])
        spans.append(got["span"])
    assert max(s[0] for s in spans) < min(s[1] for s in spans)  # the bursts overlapped

    assert step(url, namespace, "3") == ["Ordered 3 x pizza"]  # after the burst and restarts
    assert step(url, namespace, "4") == []  # the conversation ended; only counted

    report = result(start(url, namespace, "report"))
    assert report["chat"] == {"count": 2 * PINGS + 4, "orders": [["pizza", 3]]}
    assert report["users"]["7"] == {"item": "pizza"}
    assert report["conversations"] == {}
