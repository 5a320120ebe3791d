"""botstate plugin: registers the ``sqlite`` adapter (does not import aiosqlite)."""

from __future__ import annotations

from typing import Any

from botstate.adapter import hookimpl


@hookimpl
def botstate_register_storage(register: Any) -> None:
    register(
        "sqlite",
        "botstate_storage_sqlite.adapter:SqliteAdapter.from_url",
        schemes=["sqlite"],
        description="SQLite file (aiosqlite): persistent, shared by processes, group commit",
    )
