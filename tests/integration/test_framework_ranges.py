"""The oldest framework releases the bridges declare, in a fresh virtual environment.

botstate-telebot declares ``pyTelegramBotAPI>=4.23`` and botstate-greenapi
``whatsapp-chatbot-python>=0.9``; the dev env holds the newest releases. Here
the bridges' own test modules run again against the oldest releases, on
memory and SQLite (the Redis runs are the same code), in a venv built with uv
from the workspace's packages (editable) and those pinned frameworks.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tooling.services import missing

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
UV = shutil.which("uv")
PACKAGES = ["core", "storage-memory", "storage-sqlite", "storage-redis"]


def _venv(where: Path, bridge: str, framework: str) -> Path:
    if UV is None:
        missing("uv is not installed (it builds the fresh venvs)")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    subprocess.run(
        [UV, "venv", "--quiet", "--python", sys.executable, str(where)],
        check=True, capture_output=True, env=env, timeout=300,
    )  # fmt: skip
    python = where / "bin" / "python"
    editable = [arg for pkg in [*PACKAGES, bridge] for arg in ("-e", str(ROOT / "packages" / pkg))]
    proc = subprocess.run(
        [UV, "pip", "install", "--quiet", "--python", str(python), *editable, framework,
         "pytest>=8", "pytest-asyncio>=0.24"],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return python


def _run_tests(python: Path, *paths: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    proc = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow",
         "-k", "not redis", *paths],
        cwd=ROOT, capture_output=True, text=True, env=env, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return proc.stdout


@pytest.mark.parametrize("release", ["4.23.0"])
def test_telebot_bridge_on_the_oldest_pytelegrambotapi(tmp_path: Path, release: str) -> None:
    # AsyncTeleBot needs aiohttp (an extra of pyTelegramBotAPI 4.23).
    python = _venv(tmp_path / "venv", "telebot", f"pyTelegramBotAPI[aiohttp]=={release}")
    out = _run_tests(python, "tests/telebot/test_storage.py", "tests/telebot/test_bots.py")
    assert f"pyTelegramBotAPI {release}" in out or " passed" in out


@pytest.mark.parametrize("release", ["0.9.0"])
def test_greenapi_bridge_on_the_oldest_whatsapp_chatbot(tmp_path: Path, release: str) -> None:
    python = _venv(tmp_path / "venv", "greenapi", f"whatsapp-chatbot-python=={release}")
    _run_tests(python, "tests/greenapi/test_manager.py", "tests/greenapi/test_bots.py")


@pytest.mark.parametrize("release", ["3.21.0"])
def test_aiogram_bridge_on_the_oldest_aiogram(tmp_path: Path, release: str) -> None:
    # botstate-aiogram declares aiogram>=3.21 (the first with DataNotDictLikeError). aiogram's
    # own suite is not run here: before 3.24 it needs pytest-lazy-fixture, which pytest 8 lacks.
    python = _venv(tmp_path / "venv", "aiogram", f"aiogram=={release}")
    out = _run_tests(
        python,
        "tests/aiogram/test_storage.py",
        "tests/aiogram/test_isolation.py",
        "tests/aiogram/test_middleware.py",
        "tests/aiogram/test_dispatcher.py",
        "tests/aiogram/test_example.py",
    )
    assert " passed" in out
