"""Fixtures shared by the redis adapter tests (the servers come from tests/conftest.py)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from tooling.services import ServiceError, missing
from tooling.services.redis import RedisServer, start_redis


@pytest.fixture
def prefix() -> str:
    """A key prefix of its own for each test, so tests sharing a server never meet."""
    return f"t{uuid.uuid4().hex[:10]}:"


@pytest_asyncio.fixture
async def raw(redis_server: Any) -> AsyncIterator[Redis]:
    """A plain redis-py client on the shared server, to look behind the adapter."""
    client = Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server for one test, free to stop and restart (same port)."""
    try:
        server = start_redis(tmp_path)
    except (ServiceError, OSError) as err:
        missing(f"redis-server could not be started: {err}")
    yield server
    server.stop()
