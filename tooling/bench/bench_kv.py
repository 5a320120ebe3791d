"""kv adapter vs raw boto3 on Amazon DynamoDB Local.

Like for like: botstate's API is async and runs boto3 on a thread pool, so the
raw side makes the same low-level client call through ``loop.run_in_executor``
on a pool of the same size, with the same consistent-read setting, the same
botocore config and the same item shape. Targets (≥ 0.9×) for get, set,
get_many(100) and set_many(100); atomic update, sessions and 50 concurrent
tasks are informational.

What botstate adds to a ``set`` is about 1 µs of Python (size check, item
and version built; the executor hop is the raw side's too) against ~2 ms for
DynamoDB Local to answer a PutItem: the ratio's real floor is ~0.999, and what
a run shows beyond that (0.82-0.97 on a busy 2-core VM, rounds of one side
varying by ±20 %) is the server's noise, not botstate's cost.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from botstate_storage_kv import DynamoDBAdapter
from tooling.services.dynamodb import start_dynamodb_local

from . import Bench
from ._cases import SESSION_TTL, concurrently, dumps, sequentially, session_cases, update_case

N = 600  # single-key operations per timed call
BATCHES = 40  # get_many(100) calls per timed call
WRITE_BATCHES = 15  # set_many(100) calls per timed call
N_ATOMIC = 200
N_SESSIONS = 200
TASKS = 50
POOL = 10
MAX_ROUNDS = 5
WARM_UP_SECONDS = 8.0


def item(key: str, data: bytes, exp: float | None = None) -> dict[str, Any]:
    """The item the adapter writes: key, value, a random version, and the expiry if any."""
    fields = {"k": {"S": key}, "v": {"B": data}, "ver": {"N": str(random.getrandbits(63) or 1)}}
    if exp is not None:
        fields["exp"] = {"N": f"{exp:.6f}"}
    return fields


async def run(bench: Bench) -> None:
    # DynamoDB Local does a few hundred calls a second: 5 rounds keep the whole bench
    # under 10 minutes (7 rounds made this group ~2.5 min of it on a loaded 2-core VM).
    with tempfile.TemporaryDirectory(prefix="bench-dynamodb-") as tmp:
        server = await asyncio.to_thread(start_dynamodb_local, tmp)
        try:
            await _run(bench.capped(MAX_ROUNDS), server)
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

    async def raw_set(key: str) -> None:
        await call(client.put_item, TableName=table, Item=item(key, value))

    async def raw_get(key: str) -> None:
        await call(
            client.get_item, TableName=table, Key={"k": {"S": key}}, ConsistentRead=consistent
        )

    async def raw_get_many(chunk: list[str]) -> None:
        request = {table: {"Keys": [{"k": {"S": k}} for k in chunk], "ConsistentRead": consistent}}
        await call(client.batch_get_item, RequestItems=request)

    try:
        await adapter.set_many(dict.fromkeys(keys, value))  # creates the table, fills it
        # DynamoDB Local runs on the JVM: its first few thousand calls get faster as
        # they are compiled (a set round went from ~2.0 s to ~1.15 s over the five
        # rounds of a run, on both sides). Warm it up first, so the rounds measure the
        # steady state rather than whichever side drew the early, slower rounds.
        deadline = time.monotonic() + WARM_UP_SECONDS
        while time.monotonic() < deadline:
            await concurrently(raw_set, keys[:200], POOL)()
            await concurrently(raw_get, keys[:200], POOL)()
        note = f"DynamoDB Local, pool {POOL}, consistent_read={consistent}"
        await bench.compare(
            "kv",
            "set (PutItem)",
            ours=sequentially(adapter.set, keys, value),
            raw=sequentially(raw_set, keys),
            ops=N,
            target=0.9,
            note=note,
        )
        await bench.compare(
            "kv",
            "get (GetItem)",
            ours=sequentially(adapter.get, keys),
            raw=sequentially(raw_get, keys),
            ops=N,
            target=0.9,
            note=note,
        )
        await bench.compare(
            "kv",
            "get_many(100) (BatchGetItem)",
            ours=sequentially(adapter.get_many, batch_keys),
            raw=sequentially(raw_get_many, batch_keys),
            ops=BATCHES * 100,
            target=0.9,
            note=note,
        )
        await _more(bench, adapter, client, call, table, keys)
    finally:
        await adapter.close()
        pool.shutdown(wait=True)
        client.close()


async def _more(
    bench: Bench,
    adapter: DynamoDBAdapter,
    client: Any,
    call: Callable[..., Awaitable[Any]],
    table: str,
    keys: list[str],
) -> None:
    consistent = adapter.config.consistent_read
    value = os.urandom(100)
    note = f"DynamoDB Local, pool {POOL}, consistent_read={consistent}"
    chunks = [keys[i : i + 100] for i in range(0, len(keys), 100)]
    batches = [chunks[i % len(chunks)] for i in range(WRITE_BATCHES)]

    async def ours_set_many() -> None:
        expires_at = time.time() + SESSION_TTL
        for batch in batches:
            await adapter.set_many(dict.fromkeys(batch, value), expires_at=expires_at)

    async def raw_batch_write(requests: list[dict[str, Any]]) -> None:
        while requests:
            response = await call(client.batch_write_item, RequestItems={table: requests})
            requests = response.get("UnprocessedItems", {}).get(table) or []

    async def raw_set_many() -> None:
        expires_at = time.time() + SESSION_TTL
        for batch in batches:
            requests = [{"PutRequest": {"Item": item(k, value, expires_at)}} for k in batch]
            await asyncio.gather(
                *(raw_batch_write(requests[i : i + 25]) for i in range(0, len(requests), 25))
            )

    await bench.compare(
        "kv",
        "set_many(100), expiry (BatchWriteItem)",
        ours=ours_set_many,
        raw=raw_set_many,
        ops=WRITE_BATCHES * 100,
        target=0.9,
        note=f"{note}; both send 4 BatchWriteItem calls of 25 at once on the pool and resend "
        "unprocessed items (a sequential loop, as boto3's batch_writer does, would be slower)",
    )

    counter = {"k": {"S": "raw:counter"}}

    async def raw_update() -> None:
        while True:
            got = await call(
                client.get_item, TableName=table, Key=counter, ConsistentRead=consistent
            )
            old = got.get("Item")
            new = item("raw:counter", dumps((json.loads(old["v"]["B"]) if old else 0) + 1))
            if old is None:
                condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(k)"}
            else:
                condition = {
                    "ConditionExpression": "#r = :ver",
                    "ExpressionAttributeNames": {"#r": "ver"},
                    "ExpressionAttributeValues": {":ver": old["ver"]},
                }
            try:
                await call(client.put_item, TableName=table, Item=new, **condition)
                return
            except client.exceptions.ConditionalCheckFailedException:
                continue

    await update_case(
        bench,
        "kv",
        adapter,
        raw_update=raw_update,
        ops=N_ATOMIC,
        note="GetItem + PutItem with ConditionExpression on the version attribute, "
        f"retried on conflict ({note}; ours also checks expiry in the condition)",
    )

    async def raw_get(key: str) -> bytes | None:
        got = await call(
            client.get_item, TableName=table, Key={"k": {"S": key}}, ConsistentRead=consistent
        )
        found = got.get("Item")
        if found is None or ("exp" in found and float(found["exp"]["N"]) <= time.time()):
            return None  # DynamoDB deletes expired items lazily: readers must filter
        return bytes(found["v"]["B"])

    async def raw_set(key: str, data: bytes, ttl: float) -> None:
        await call(client.put_item, TableName=table, Item=item(key, data, time.time() + ttl))

    await session_cases(
        bench,
        "kv",
        adapter,
        sessions=N_SESSIONS,
        raw_get=raw_get,
        raw_set=raw_set,
        raw_note="GetItem with expiry filter, PutItem with exp",
    )

    async def ours_one(key: str) -> None:
        await adapter.set(key, value)

    async def raw_one(key: str) -> None:
        await call(client.put_item, TableName=table, Item=item("raw:" + key, value))

    await bench.compare(
        "kv",
        f"set, {TASKS} concurrent tasks (PutItem)",
        ours=concurrently(ours_one, keys, TASKS),
        raw=concurrently(raw_one, keys, TASKS),
        ops=len(keys),
        note=f"{note}; raw: run_in_executor on a pool of the same size",
    )
