"""The botstate conformance suite, plus what is specific to this adapter.

Run with ``pip install -e ".[test]" && pytest`` from this directory.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from botstate_storage_example import ExampleAdapter

import botstate
from botstate.adapter import StorageAdapter
from botstate.testing import AdapterSuite


class TestExampleConformance(AdapterSuite):
    @pytest_asyncio.fixture
    async def adapter(self) -> AsyncIterator[StorageAdapter]:
        with tempfile.TemporaryDirectory() as directory:
            adapter = ExampleAdapter(directory)
            yield adapter
            await adapter.close()


@pytest.mark.asyncio
async def test_opens_by_url_and_by_name(tmp_path: Path) -> None:
    by_url = botstate.open_storage(f"example:///{tmp_path}/a", namespace="bot")
    await by_url.set("chat:1", {"step": 1})
    assert await by_url.get("chat:1") == {"step": 1}
    by_name = botstate.open_storage({"adapter": "example", "directory": str(tmp_path / "a")})
    assert await by_name.get("bot:chat:1") == {"step": 1}
    info = {a.name: a for a in botstate.list_adapters()}["example"]
    assert info.schemes == ("example",)
    assert info.distribution == "botstate-storage-example"


@pytest.mark.asyncio
async def test_entries_survive_a_new_adapter(tmp_path: Path) -> None:
    first = ExampleAdapter(tmp_path)
    await first.set("k", b"v")
    await first.close()
    assert await ExampleAdapter(tmp_path).get("k") == b"v"


def test_bad_urls_and_options(tmp_path: Path) -> None:
    with pytest.raises(botstate.ConfigError, match="needs a directory"):
        ExampleAdapter.from_url("example://")
    with pytest.raises(botstate.InvalidURL):
        ExampleAdapter.from_url("example://host/dir")
    with pytest.raises(botstate.ConfigError, match="unknown option 'colour'"):
        ExampleAdapter.from_url(f"example:///{tmp_path}?colour=red")
    adapter = ExampleAdapter.from_url(f"example:///{tmp_path}?fsync=yes")
    assert adapter.fsync is True
    assert adapter.directory == tmp_path


@pytest.mark.asyncio
async def test_corrupt_file_raises_instead_of_missing(tmp_path: Path) -> None:
    adapter = ExampleAdapter(tmp_path)
    await adapter.set("k", b"v")
    (entry,) = [p for p in os.listdir(tmp_path) if not p.startswith(".")]
    (tmp_path / entry).write_bytes(b"not json\n")
    with pytest.raises(botstate.StorageError, match="corrupt"):
        await adapter.get("k")
