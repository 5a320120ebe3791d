"""botstate plugin: registers the ``redis`` adapter (imports neither redis nor the adapter)."""

from __future__ import annotations

from typing import Any

from botstate.adapter import hookimpl

SCHEMES = ("redis", "rediss", "unix", "redis+cluster")
"""The URL schemes this adapter serves (the one place they are listed)."""


@hookimpl
def botstate_register_storage(register: Any) -> None:
    register(
        "redis",
        "botstate_storage_redis.adapter:RedisAdapter.from_url",
        schemes=SCHEMES,
        description="Redis or Redis Cluster via redis-py asyncio: native expiry, batches, "
        "scan, Lua compare-and-set, auto-pipelining",
    )
