"""Typed values round-trip through a real redis-server (see tests/typed_suite.py)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio

from botstate.adapter import StorageAdapter
from botstate_storage_redis import RedisAdapter
from tests.typed_suite import TypedRoundTrips


class TestRedisTypedValues(TypedRoundTrips):
    @pytest_asyncio.fixture
    async def adapter(self, redis_server: Any) -> AsyncIterator[StorageAdapter]:
        adapter = RedisAdapter(redis_server.url, prefix=f"typed{uuid.uuid4().hex[:8]}:")
        yield adapter
        await adapter.close()
