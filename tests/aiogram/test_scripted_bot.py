"""The scripted FSM bot (scripted_bot.py) in two processes at once, then restarted.

Each process is a whole aiogram bot (Dispatcher, BotstateStorage, event
isolation, SessionMiddleware) fed updates locally; Telegram's HTTP is a
recorder. On SQLite and Redis:

- two processes each feed 25 concurrent ``/count`` and 25 ``/tick`` updates for
  one chat: the FSM counter and the session counter both end at exactly 50,
  and the 50 replies of each counter across both processes are 1..50, each
  once (no two handlers of the chat ever ran at the same time);
- a dialog spread over three process lifetimes (``/start``, restart, name,
  restart, age) ends with "done Ann 33": states and data survive restarts.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiogram.fsm.storage.base import StorageKey

from botstate_aiogram import BotstateStorage

ROOT = Path(__file__).resolve().parents[2]
CHAT = 1001
PER_PROCESS = 25


def start_bot(url: str, namespace: str, script: list[list[list[Any]]]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.aiogram.scripted_bot", url, namespace, json.dumps(script)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 180) -> dict[str, list[str]]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"scripted bot timed out: {err[-3000:]}")
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def run_bot(url: str, namespace: str, script: list[list[list[Any]]]) -> dict[str, list[str]]:
    return finish(start_bot(url, namespace, script))


@pytest.fixture(params=["sqlite", "redis"])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'bot.db'}"
    server: Any = request.getfixturevalue("redis_server")
    return str(server.url)


@pytest.mark.slow
async def test_two_processes_concurrent_updates_exact_counts(shared_url: str) -> None:
    namespace = f"bot{uuid.uuid4().hex[:8]}"
    burst = [[[CHAT, CHAT, "/count"] for _ in range(PER_PROCESS)]
             + [[CHAT, CHAT, "/tick"] for _ in range(PER_PROCESS)]]  # fmt: skip
    first, second = start_bot(shared_url, namespace, burst), start_bot(shared_url, namespace, burst)
    replies = finish(first)[str(CHAT)] + finish(second)[str(CHAT)]
    counts = sorted(int(t.split()[1]) for t in replies if t.startswith("count"))
    ticks = sorted(int(t.split()[1]) for t in replies if t.startswith("tick"))
    assert counts == list(range(1, 2 * PER_PROCESS + 1))
    assert ticks == list(range(1, 2 * PER_PROCESS + 1))

    fsm = BotstateStorage.from_url(shared_url, namespace=namespace)
    try:
        key = StorageKey(bot_id=42, chat_id=CHAT, user_id=CHAT)
        assert await fsm.get_data(key) == {"count": 2 * PER_PROCESS}
        sessions = fsm.storage.with_namespace(f"{namespace}-sessions")
        stored = await sessions.get(f"chat:{CHAT}")
        assert stored is not None and stored["_d"] == {"ticks": 2 * PER_PROCESS}
        assert [k async for k in fsm.storage.keys("fsm:")] == [f"fsm:{CHAT}:{CHAT}:data"]
        # no lease is left behind once the handlers are done (Storage.lock keeps them
        # under ":lock:<namespace>:<key>", hidden from the public API: look below it)
        adapter = fsm.storage.adapter
        assert not await adapter.has(f":lock:{namespace}:fsm:{CHAT}:{CHAT}:lock")
        assert not await adapter.has(f":lock:{namespace}-sessions:chat:{CHAT}")
    finally:
        await fsm.close()


@pytest.mark.slow
async def test_dialog_survives_restarts(shared_url: str) -> None:
    namespace = f"bot{uuid.uuid4().hex[:8]}"
    user = 77
    assert run_bot(shared_url, namespace, [[[user, user, "/start"]]]) == {
        str(user): ["What is your name?"]
    }
    assert run_bot(shared_url, namespace, [[[user, user, "Ann"]]]) == {
        str(user): ["How old are you?"]
    }
    assert run_bot(shared_url, namespace, [[[user, user, "33"]]]) == {str(user): ["done Ann 33"]}

    fsm = BotstateStorage.from_url(shared_url, namespace=namespace)
    try:
        key = StorageKey(bot_id=42, chat_id=user, user_id=user)
        assert await fsm.get_state(key) is None
        assert await fsm.get_data(key) == {"name": "Ann", "age": 33}
    finally:
        await fsm.close()
