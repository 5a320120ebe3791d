"""kv adapter vs raw boto3 on Amazon DynamoDB Local.

Like for like: botstate's API is async and runs boto3 on a thread pool, so the
raw side makes the same low-level client call through ``loop.run_in_executor``
on a pool of the same size, with the same consistent-read setting, the same
botocore config and the same item shape.
"""

from __future__ import annotations

import asyncio
import os
import random
import tempfile
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from botstate_storage_kv import DynamoDBAdapter
from tooling.services.dynamodb import start_dynamodb_local

from . import Bench

N = 300  # single-key operations per timed call
BATCHES = 30  # get_many(100) calls per timed call
POOL = 10


async def run(bench: Bench) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-dynamodb-") as tmp:
        server = await asyncio.to_thread(start_dynamodb_local, tmp)
        try:
            await _run(bench, server)
        finally:
            await asyncio.to_thread(server.stop)


async def _run(bench: Bench, server: Any) -> None:
    table = "bench-kv"
    adapter = DynamoDBAdapter.from_url(server.url(table), max_pool_connections=POOL)
    config = adapter.config
    client = config.build_client()  # same botocore Config as the adapter's own client
    pool = ThreadPoolExecutor(max_workers=POOL, thread_name_prefix="bench-raw")
    loop = asyncio.get_running_loop()
    consistent = config.consistent_read
    value = os.urandom(100)
    keys = [f"bench:{i}" for i in range(N)]
    batch_keys = [(keys + keys)[i * 5 : i * 5 + 100] for i in range(BATCHES)]

    def call(method: Any, **params: Any) -> Any:
        return loop.run_in_executor(pool, partial(method, **params))

    async def ours_set() -> None:
        for key in keys:
            await adapter.set(key, value)

    async def raw_set() -> None:
        for key in keys:
            item = {
                "k": {"S": key},
                "v": {"B": value},
                "ver": {"N": str(random.getrandbits(63) or 1)},
            }
            await call(client.put_item, TableName=table, Item=item)

    async def ours_get() -> None:
        for key in keys:
            await adapter.get(key)

    async def raw_get() -> None:
        for key in keys:
            await call(
                client.get_item, TableName=table, Key={"k": {"S": key}}, ConsistentRead=consistent
            )

    async def ours_get_many() -> None:
        for chunk in batch_keys:
            await adapter.get_many(chunk)

    async def raw_get_many() -> None:
        for chunk in batch_keys:
            request = {
                table: {"Keys": [{"k": {"S": k}} for k in chunk], "ConsistentRead": consistent}
            }
            await call(client.batch_get_item, RequestItems=request)

    try:
        await adapter.set_many(dict.fromkeys(keys, value))  # creates the table, fills it
        note = f"DynamoDB Local, pool {POOL}, consistent_read={consistent}"
        await bench.compare(
            "kv", "set (PutItem)", ours=ours_set, raw=raw_set, ops=N, target=0.9, note=note
        )
        await bench.compare(
            "kv", "get (GetItem)", ours=ours_get, raw=raw_get, ops=N, target=0.9, note=note
        )
        await bench.compare(
            "kv",
            "get_many(100) (BatchGetItem)",
            ours=ours_get_many,
            raw=raw_get_many,
            ops=BATCHES * 100,
            target=0.9,
            note=note,
        )
    finally:
        await adapter.close()
        pool.shutdown(wait=True)
        client.close()
