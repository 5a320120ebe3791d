from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from botstate.adapter import StorageAdapter
from botstate.testing import AdapterSuite
from botstate_storage_kv import DynamoDBAdapter

TABLE = f"conformance-{uuid.uuid4().hex[:8]}"


class TestKVConformance(AdapterSuite):
    # The largest value that fits in one 400 KB item next to a short key; the
    # suite checks that max_value_bytes + 1024 raises ValueTooLarge.
    max_value_bytes = 409_000

    @pytest.fixture(autouse=True)
    def _server(self, dynamodb_local: Any) -> None:
        self.server = dynamodb_local

    @pytest_asyncio.fixture
    async def adapter(self) -> AsyncIterator[StorageAdapter]:
        # One table for the module (the suite writes under fresh key prefixes);
        # the first adapter creates it lazily, the others find it.
        adapter = DynamoDBAdapter.from_url(self.server.url(TABLE))
        yield adapter
        await adapter.close()
