"""A cancelled call always ends in CancelledError, whatever redis-py does inside.

redis-py can swallow a cancellation that lands while it sends a command (seen in
about 4 of 10 cancels with its own client, a few in 200 on the auto-pipeline):
the task then carries on as if never cancelled, and a bot ignores Ctrl-C.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest

from botstate_storage_redis import RedisAdapter

pytestmark = pytest.mark.skipif(
    sys.version_info < (3, 11), reason="Python 3.10 cannot tell a swallowed cancellation"
)


@pytest.mark.parametrize("autopipeline", [True, False])
@pytest.mark.parametrize("batch", [False, True])
async def test_cancelling_a_busy_writer_always_stops_it(
    redis_server: Any, prefix: str, autopipeline: bool, batch: bool
) -> None:
    adapter = RedisAdapter(redis_server.url, prefix=prefix, autopipeline=autopipeline)

    async def writer() -> None:
        n = 0
        while True:
            if batch:
                await adapter.set_many({f"k{n}": b"v", f"j{n}": b"w"})
            else:
                await adapter.set(f"k{n}", b"v")
            n += 1
            await asyncio.sleep(0)

    kept_running = 0
    try:
        for attempt in range(200):
            task = asyncio.create_task(writer())
            await asyncio.sleep(0.0005 * (attempt % 7))
            task.cancel()
            done, _ = await asyncio.wait([task], timeout=2)
            if not done:
                kept_running += 1
                task.cancel()
                await asyncio.wait([task], timeout=2)
            else:
                assert task.cancelled() or isinstance(task.exception(), Exception)
        assert kept_running == 0
        await adapter.set("after", b"ok")  # the adapter is still usable
        assert await adapter.get("after") == b"ok"
    finally:
        await adapter.close()
