from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from botstate.adapter import StorageAdapter
from botstate.testing import AdapterSuite
from botstate_storage_memory import MemoryAdapter


class TestMemoryConformance(AdapterSuite):
    @pytest_asyncio.fixture
    async def adapter(self) -> AsyncIterator[StorageAdapter]:
        adapter = MemoryAdapter(sweep_interval=0.05)
        yield adapter
        await adapter.close()
