"""A fresh botstate storage per test on memory, SQLite and Redis, for botstate-ptb."""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import botstate

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # botkit, the offline bot helpers


def storage_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """The URL of an empty store on ``backend`` (Redis: the session's server)."""
    if backend == "memory":
        return "memory://"
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'ptb.db'}"
    server = request.getfixturevalue("redis_server")
    return str(server.url)


@pytest.fixture(params=["memory", "sqlite", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    return storage_url(backend, tmp_path, request)


@pytest.fixture
def namespace() -> str:
    """A namespace no other test uses (the Redis server is shared by the session)."""
    return f"ptb{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def storage(url: str, namespace: str) -> AsyncIterator[botstate.Storage[Any]]:
    store = botstate.open_storage(url, namespace=namespace)
    try:
        yield store
    finally:
        await store.close()
