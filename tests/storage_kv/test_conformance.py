from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from botstate_storage_kv import DynamoDBAdapter

from botstate import StorageAdapter
from botstate.testing import AdapterSuite


class TestKVConformance(AdapterSuite):
    # The largest value that fits in one 400 KB item next to a short key; the
    # suite checks that max_value_bytes + 1024 raises ValueTooLarge.
    max_value_bytes = 409_000

    @pytest.fixture(autouse=True)
    def _server(self, dynamodb_local: Any) -> None:
        self.server = dynamodb_local

    @pytest_asyncio.fixture
    async def adapter(self) -> AsyncIterator[StorageAdapter]:
        # A fresh table per test keeps full-table scans small; create=true makes it lazily.
        table = f"conf-{uuid.uuid4().hex[:12]}"
        adapter = DynamoDBAdapter.from_url(self.server.url(table))
        yield adapter
        await adapter.close()
