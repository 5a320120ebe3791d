"""Shared fixtures: real servers started by tooling/services on free loopback ports.

Outside CI a server that cannot be started skips its tests with the reason;
with CI=true it fails them, so a missing install step is never hidden.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tooling.services import ServiceError, missing  # noqa: E402


def start_or_skip(start: Callable[[], Any], what: str) -> Any:
    try:
        return start()
    except (ServiceError, OSError) as err:
        missing(f"{what} could not be started: {err}")


@pytest.fixture(autouse=True)
def _fresh_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test sees the plugins as installed, without env overrides leaking in."""
    from botstate.testing import reset_registry

    monkeypatch.delenv("BOTSTATE_PLUGINS", raising=False)
    monkeypatch.delenv("BOTSTATE_STORAGE", raising=False)
    reset_registry()
    yield
    reset_registry()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A standalone redis-server (``.url``, ``.port``, ``.stop()``, ``.kill()``, ``.start()``)."""
    from tooling.services.redis import start_redis

    server = start_or_skip(lambda: start_redis(tmp_path_factory.mktemp("redis")), "redis-server")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A 3-master Redis Cluster (``.url`` in redis+cluster:// form, ``.stop()``)."""
    from tooling.services.redis import start_redis_cluster

    cluster = start_or_skip(
        lambda: start_redis_cluster(tmp_path_factory.mktemp("redis-cluster")), "redis cluster"
    )
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def dynamodb_local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Amazon DynamoDB Local, in memory (``.endpoint_url``, ``.stop()``)."""
    from tooling.services.dynamodb import start_dynamodb_local

    server = start_or_skip(
        lambda: start_dynamodb_local(tmp_path_factory.mktemp("dynamodb")), "DynamoDB Local"
    )
    yield server
    server.stop()
