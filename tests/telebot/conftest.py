"""Fixtures for botstate-telebot: storages on memory/SQLite/Redis and an offline Bot API."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # telebot_kit, the offline bot helpers

from telebot_kit import BotApiRecorder  # noqa: E402


def storage_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """The URL of an empty store on ``backend`` (Redis: the session's shared server)."""
    if backend == "memory":
        return "memory://"
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'telebot.db'}"
    return str(request.getfixturevalue("redis_server").url)


@pytest.fixture(params=["memory", "sqlite", "redis"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return storage_url(str(request.param), tmp_path, request)


@pytest.fixture(params=["sqlite", "redis"])
def persistent_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Backends that outlive the bot process: for restart tests."""
    return storage_url(str(request.param), tmp_path, request)


@pytest.fixture
def namespace() -> str:
    """A namespace no other test uses (the Redis server is shared by the session)."""
    return f"tb{uuid.uuid4().hex[:10]}"


@pytest.fixture
def bot_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[BotApiRecorder]:
    """The Bot API replaced by a recorder on 127.0.0.1, for TeleBot and AsyncTeleBot."""
    from telebot import apihelper, asyncio_helper

    recorder = BotApiRecorder()
    monkeypatch.setattr(apihelper, "API_URL", recorder.api_url)
    monkeypatch.setattr(asyncio_helper, "API_URL", recorder.api_url)
    yield recorder
    recorder.close()


def pytest_report_header() -> Any:
    from importlib.metadata import version

    return f"pyTelegramBotAPI {version('pyTelegramBotAPI')}"
