from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio

from botstate.adapter import StorageAdapter
from botstate.testing import AdapterSuite
from botstate_storage_redis import RedisAdapter


class TestRedisConformance(AdapterSuite):
    """Standalone server, auto-pipelining on (the default)."""

    @pytest_asyncio.fixture
    async def adapter(self, redis_server: Any) -> AsyncIterator[StorageAdapter]:
        adapter = RedisAdapter(redis_server.url, prefix=f"conf{uuid.uuid4().hex[:8]}:")
        yield adapter
        await adapter.close()


class TestRedisConformanceNoAutopipeline(AdapterSuite):
    """Standalone server through redis-py's own connection pool."""

    @pytest_asyncio.fixture
    async def adapter(self, redis_server: Any) -> AsyncIterator[StorageAdapter]:
        adapter = RedisAdapter(redis_server.url, autopipeline=False)
        yield adapter
        await adapter.close()


class TestRedisClusterConformance(AdapterSuite):
    """A 3-master Redis Cluster: batches and scans span every node."""

    @pytest_asyncio.fixture
    async def adapter(self, redis_cluster: Any) -> AsyncIterator[StorageAdapter]:
        adapter = RedisAdapter(redis_cluster.url, prefix="c:")
        yield adapter
        await adapter.close()
