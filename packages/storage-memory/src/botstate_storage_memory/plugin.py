"""botstate plugin: registers the ``memory`` adapter (imports nothing heavy)."""

from __future__ import annotations

from typing import Any

from botstate.adapter import hookimpl


@hookimpl
def botstate_register_storage(register: Any) -> None:
    register(
        "memory",
        "botstate_storage_memory.adapter:MemoryAdapter.from_url",
        schemes=["memory"],
        description="In-process dict: TTL, LRU cap, expiry events (not shared or persistent)",
    )
