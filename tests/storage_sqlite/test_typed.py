"""Typed values round-trip through a SQLite file (see tests/typed_suite.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from botstate.adapter import StorageAdapter
from botstate_storage_sqlite import SqliteAdapter
from tests.typed_suite import TypedRoundTrips


class TestSqliteTypedValues(TypedRoundTrips):
    @pytest_asyncio.fixture
    async def adapter(self, tmp_path: Path) -> AsyncIterator[StorageAdapter]:
        adapter = SqliteAdapter.from_url(f"sqlite:///{tmp_path}/typed.db")
        yield adapter
        await adapter.close()
