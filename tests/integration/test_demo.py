"""The demo bot is the README's first command: it must run and show what it promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tooling.services import require_module

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_bot_runs_and_shows_restart_migration_and_timeout(tmp_path: Path) -> None:
    require_module("botstate_storage_sqlite", "botstate-storage-sqlite")
    db = tmp_path / "bot.db"
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo_bot.py"), str(db)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    # counters continue after the restart: Alice's 4th message comes from the reopened file
    assert "Message #4" in out
    assert "'_v': 1" in out and "'_v': 2" in out  # v1 data migrated to v2
    assert "your quiz timed out on question 1" in out
    assert "too late: the quiz is gone" in out
    assert db.exists()


def test_frameworks_example_runs() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "frameworks.py")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "channel 99 counted 25 concurrent commands" in done.stdout


def test_telebot_example_runs_twice_and_keeps_its_counter(tmp_path: Path) -> None:
    outputs = []
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, str(ROOT / "examples" / "telebot_bot.py")],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr
        assert "ERROR" not in done.stderr, done.stderr
        outputs.append(done.stdout)
    assert "bot -> 42: How old are you?" in outputs[0]
    assert "/count was sent 2 times here" in outputs[0]
    assert "/count was sent 4 times here" in outputs[1]  # the counter survived the restart


def test_greenapi_example_runs(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "greenapi_bot.py")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "Account annie created." in done.stdout  # after the restart
    assert "Your session timed out." in done.stdout
