"""The shared conformance suite against a SQLite file and against ``:memory:``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from botstate.adapter import StorageAdapter
from botstate.testing import AdapterSuite
from botstate_storage_sqlite import SqliteAdapter


class TestSqliteFileConformance(AdapterSuite):
    @pytest_asyncio.fixture
    async def adapter(self, tmp_path: Path) -> AsyncIterator[StorageAdapter]:
        adapter = SqliteAdapter.from_url(f"sqlite:///{tmp_path}/suite.db", purge_interval=0.05)
        yield adapter
        await adapter.close()

    async def trigger_expiry(self, adapter: StorageAdapter) -> None:
        assert isinstance(adapter, SqliteAdapter)
        await adapter.purge()


class TestSqliteMemoryConformance(AdapterSuite):
    @pytest_asyncio.fixture
    async def adapter(self) -> AsyncIterator[StorageAdapter]:
        adapter = SqliteAdapter.from_url("sqlite://:memory:", purge_interval=0.05)
        yield adapter
        await adapter.close()
