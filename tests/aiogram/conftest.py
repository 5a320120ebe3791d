"""Fixtures for botstate-aiogram: a botstate storage URL per backend (memory, SQLite, Redis)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from botstate.opening import open_storage
from botstate.storage import Storage
from botstate_aiogram import BotstateStorage

BACKENDS = ("memory", "sqlite", "redis")
_SUITE_RESULTS = pytest.StashKey[list[str]]()


@pytest.fixture
def suite_results(request: pytest.FixtureRequest) -> list[str]:
    """Lines about aiogram's own suite, printed at the end of the run."""
    return request.config.stash.setdefault(_SUITE_RESULTS, [])


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    lines = config.stash.get(_SUITE_RESULTS, [])
    if lines:
        terminalreporter.section("aiogram's own tests against BotstateStorage")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def storage_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A URL of a fresh store on ``backend`` (a new SQLite file, a shared redis-server)."""
    if backend == "memory":
        return "memory://"
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'fsm.db'}"
    server: Any = request.getfixturevalue("redis_server")
    return str(server.url)


@pytest.fixture
def namespace() -> str:
    """A namespace of its own per test, so tests sharing one redis-server never meet."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def open_botstate(storage_url: str, namespace: str) -> Callable[[], Storage[Any]]:
    """Open another ``Storage`` on the test's store (like a second process would)."""

    def opener() -> Storage[Any]:
        return open_storage(storage_url, namespace=namespace)

    return opener


@pytest.fixture
async def botstate_storage(
    open_botstate: Callable[[], Storage[Any]],
) -> AsyncIterator[Storage[Any]]:
    storage = open_botstate()
    yield storage
    await storage.close()


@pytest.fixture
async def fsm(botstate_storage: Storage[Any]) -> BotstateStorage:
    return BotstateStorage(botstate_storage)
