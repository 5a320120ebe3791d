"""The DynamoDB adapter: one item per key, expiry filtered on read, boto3 on a thread pool."""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from botstate import Capability, ConfigError, StorageUnavailable
from botstate.adapter import (
    BaseAdapter,
    Version,
    int_version,
    parse_url,
    redact_secrets,
    redact_url,
)

from ._config import KVConfig, config_from_url
from ._errors import DRIVER_ERRORS, error_code, translate
from ._items import (
    EXP,
    KEY,
    VER,
    check_size,
    encode_expiry,
    is_live,
    new_version,
    put_item,
    value_of,
    version_of,
)

__all__ = ["DynamoDBAdapter"]

logger = logging.getLogger("botstate.kv")

T = TypeVar("T")

BATCH_GET_LIMIT = 100  # keys per BatchGetItem request (DynamoDB's limit)
BATCH_WRITE_LIMIT = 25  # requests per BatchWriteItem request (DynamoDB's limit)
UNPROCESSED_RETRIES = 8  # rounds without progress before giving up on a batch
TABLE_READY_TIMEOUT = 120.0

# Conditions. ":now" is this process's clock (see _now), the same clock reads filter with.
_LIVE = "(attribute_not_exists(#e) OR #e > :now)"
_ABSENT_OR_EXPIRED = "attribute_not_exists(#k) OR #e <= :now"
_EXISTS_AND_LIVE = f"attribute_exists(#k) AND {_LIVE}"
_HAS_VERSION = f"attribute_exists(#k) AND #r = :ver AND {_LIVE}"
_HAS_NO_VERSION = f"attribute_exists(#k) AND attribute_not_exists(#r) AND {_LIVE}"
# Placeholders for the attribute names, so none can clash with a reserved word.
# DynamoDB refuses a placeholder the expression does not use, hence two sets.
_MAX_VERSION = 10**38 - 1  # a DynamoDB number holds 38 significant digits
_NAMES = {"#k": KEY, "#e": EXP}
_NAMES_WITH_VER = {**_NAMES, "#r": VER}


class DynamoDBAdapter(BaseAdapter):
    """Stores each key as one DynamoDB item: ``k`` (S), ``v`` (B), ``exp`` (N), ``ver`` (N).

    >>> adapter = DynamoDBAdapter.from_url("dynamodb://bot-state?region=eu-west-1")

    - Expiry: ``exp`` is the table's TTL attribute, so DynamoDB eventually
      deletes expired items (in whole seconds, lazily, possibly days later);
      every read filters them out at once, with sub-second precision.
    - ``consistent_read`` (default ``True``): reads see every earlier write, at
      twice the read capacity of eventually consistent reads.
    - Atomic operations are conditional writes on ``ver``, a random 63-bit
      number that every write replaces (so a deleted and re-created key never
      gets an old version back).
    - Calls run on a thread pool of ``max_pool_connections`` threads (boto3
      is blocking), sharing one low-level client built on first use. The
      table is checked (and with ``create=True`` created) on first use too:
      constructing the adapter does no I/O.
    - An item is limited to 400 KB including its key: bigger values raise
      :class:`~botstate.ValueTooLarge` before anything is sent.
    """

    capabilities = frozenset(
        {
            Capability.BATCH,
            Capability.SCAN,
            Capability.ATOMIC,
            Capability.PERSISTENT,
            Capability.SHARED,
        }
    )

    def __init__(self, config: KVConfig) -> None:
        super().__init__()
        self.config = config
        self.table = config.table
        self._redact = functools.partial(
            redact_secrets, url=config.endpoint_url, secrets=config.secrets
        )
        endpoint = parse_url(config.endpoint_url) if config.endpoint_url else None
        self.hide_in_logs([*config.secrets, endpoint.password if endpoint else None])
        self._executor = ThreadPoolExecutor(
            max_workers=config.max_pool_connections,
            thread_name_prefix=f"botstate-kv:{config.table}",
        )
        self._setup_lock = threading.Lock()
        self._client: Any = None  # built on first use, in a pool thread
        self._table_ok = False  # the table was checked (or created) with this client

    @classmethod
    def from_url(cls, url: str | None = None, **options: Any) -> DynamoDBAdapter:
        """Open from ``dynamodb://TABLE?region=...&endpoint_url=...&create=true``.

        Options may come from the URL query, keyword arguments, or both (see the
        README for the full list); ``table=`` replaces the URL's host part.
        """
        return cls(config_from_url(url, options))

    # -- plumbing ---------------------------------------------------------
    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        self.check_open()
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn, *args)
        except RuntimeError:
            self.check_open()  # the pool shut down between the check and the submit
            raise

    def _call(self, action: str, params: dict[str, Any], conditional: bool = False) -> Any:
        """Run one client call in a pool thread and return its response.

        Botocore errors come out translated. With ``conditional``, a write
        whose ``ConditionExpression`` did not hold returns ``None`` instead.
        """
        client = self._client if self._table_ok else self._prepare()
        try:
            return getattr(client, action)(**params)
        except DRIVER_ERRORS as err:
            if conditional and error_code(err) == "ConditionalCheckFailedException":
                return None
            raise translate(err, action, self.table, self._redact) from err

    async def _write_if(self, action: str, params: dict[str, Any]) -> bool:
        """A conditional write: ``False`` if its condition did not hold."""
        return await self._run(self._call, action, params, True) is not None

    def _prepare(self) -> Any:
        """Build the client and check (or create) the table, once; retried after a failure."""
        with self._setup_lock:
            if self._table_ok:
                return self._client
            if self._client is None:
                try:
                    self._client = self.config.build_client()
                except DRIVER_ERRORS as err:
                    raise translate(err, "client setup", self.table, self._redact) from err
            try:
                self._check_table(self._client)
            except DRIVER_ERRORS as err:
                raise translate(err, "table check", self.table, self._redact) from err
            self._table_ok = True
            return self._client

    def _check_table(self, client: Any) -> None:
        try:
            table = client.describe_table(TableName=self.table)["Table"]
        except DRIVER_ERRORS as err:
            if error_code(err) != "ResourceNotFoundException":
                raise
            if not self.config.create:
                where = f"region {self.config.region or 'from the environment'}"
                if self.config.endpoint_url:
                    where += f", endpoint {redact_url(self.config.endpoint_url)}"
                raise ConfigError(
                    f"DynamoDB table {self.table!r} does not exist ({where}); create it with "
                    f"partition key 'k' (String) or open the storage with create=true"
                ) from None
            table = self._create_table(client)
        key_schema = table.get("KeySchema", [])
        types = {
            a["AttributeName"]: a["AttributeType"] for a in table.get("AttributeDefinitions", [])
        }
        if key_schema != [{"AttributeName": KEY, "KeyType": "HASH"}] or types.get(KEY) != "S":
            raise ConfigError(
                f"DynamoDB table {self.table!r} has key schema {key_schema}; botstate needs a "
                f"table whose only key is the partition key 'k' of type String"
            )
        deadline = time.monotonic() + TABLE_READY_TIMEOUT
        while table.get("TableStatus") == "CREATING":
            if time.monotonic() > deadline:
                raise StorageUnavailable(
                    f"DynamoDB table {self.table!r} was still CREATING "
                    f"after {TABLE_READY_TIMEOUT:.0f}s"
                )
            time.sleep(0.5)
            table = client.describe_table(TableName=self.table)["Table"]
        if self.config.create:
            self._enable_ttl(client)

    def _create_table(self, client: Any) -> dict[str, Any]:
        logger.info("creating DynamoDB table %r (on-demand billing, TTL on %r)", self.table, EXP)
        try:
            client.create_table(
                TableName=self.table,
                KeySchema=[{"AttributeName": KEY, "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": KEY, "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
        except DRIVER_ERRORS as err:
            if error_code(err) != "ResourceInUseException":  # someone else created it first
                raise
        table: dict[str, Any] = client.describe_table(TableName=self.table)["Table"]
        return table

    def _enable_ttl(self, client: Any) -> None:
        ttl = client.describe_time_to_live(TableName=self.table).get("TimeToLiveDescription", {})
        status, attribute = ttl.get("TimeToLiveStatus"), ttl.get("AttributeName")
        if status in ("ENABLED", "ENABLING"):
            if attribute != EXP:
                logger.warning(
                    "DynamoDB table %r has TTL on %r, not %r: expired entries are hidden on "
                    "read but DynamoDB will not delete them",
                    self.table,
                    attribute,
                    EXP,
                )
            return
        try:
            client.update_time_to_live(
                TableName=self.table,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": EXP},
            )
        except DRIVER_ERRORS as err:
            message = str(getattr(err, "response", {}).get("Error", {}).get("Message", ""))
            if error_code(err) != "ValidationException":
                raise
            if "already enabled" not in message.lower():  # e.g. TTL was disabled < 1 h ago
                logger.warning(
                    "could not enable TTL on DynamoDB table %r: %s; expired entries are hidden "
                    "on read but not deleted by DynamoDB",
                    self.table,
                    self._redact(message),
                )

    def _key(self, key: str) -> dict[str, Any]:
        return {KEY: {"S": key}}

    # -- reads ------------------------------------------------------------
    async def _get_item(self, key: str, projection: str | None = None) -> dict[str, Any] | None:
        params: dict[str, Any] = {
            "TableName": self.table,
            "Key": self._key(key),
            "ConsistentRead": self.config.consistent_read,
        }
        if projection is not None:
            params["ProjectionExpression"] = projection
            params["ExpressionAttributeNames"] = _NAMES
        response = await self._run(self._call, "get_item", params)
        item: dict[str, Any] | None = response.get("Item")
        if item is None or not is_live(item, time.time()):
            return None
        return item

    async def get(self, key: str) -> bytes | None:
        item = await self._get_item(key)
        return None if item is None else value_of(item)

    async def has(self, key: str) -> bool:
        return await self._get_item(key, "#k, #e") is not None

    async def get_expiry(self, key: str) -> float | None:
        item = await self._get_item(key, "#k, #e")
        return None if item is None or EXP not in item else float(item[EXP]["N"])

    async def get_versioned(self, key: str) -> tuple[bytes, Version] | None:
        item = await self._get_item(key)
        return None if item is None else (value_of(item), version_of(item))

    async def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        unique = list(dict.fromkeys(keys))  # BatchGetItem rejects duplicate keys
        chunks = [unique[i : i + BATCH_GET_LIMIT] for i in range(0, len(unique), BATCH_GET_LIMIT)]
        found: dict[str, bytes] = {}
        for part in await asyncio.gather(*(self._run(self._batch_get, c) for c in chunks)):
            found.update(part)
        return {key: found[key] for key in unique if key in found}

    def _batch_get(self, keys: list[str]) -> dict[str, bytes]:
        request: dict[str, Any] = {
            self.table: {
                "Keys": [self._key(k) for k in keys],
                "ConsistentRead": self.config.consistent_read,
            }
        }
        found: dict[str, bytes] = {}
        stalls = 0
        while True:
            response = self._call("batch_get_item", {"RequestItems": request})
            items = response.get("Responses", {}).get(self.table, [])
            now = time.time()
            for item in items:
                if is_live(item, now):
                    found[item[KEY]["S"]] = value_of(item)
            pending = response.get("UnprocessedKeys", {}).get(self.table)
            if not pending or not pending.get("Keys"):
                return found
            request = {self.table: pending}
            # A page cut at 16 MB returns items: fetch the rest at once. No items
            # at all means throttling: back off.
            stalls = 0 if items else stalls + 1
            self._backoff(stalls, stalls, "BatchGetItem")

    def _backoff(self, attempt: int, stalls: int, action: str) -> None:
        """Wait before resending unprocessed items; give up after many rounds without progress."""
        if stalls > UNPROCESSED_RETRIES:
            raise StorageUnavailable(
                f"DynamoDB {action} on table {self.table!r} left items unprocessed "
                f"{UNPROCESSED_RETRIES} times in a row (throttled?)"
            )
        if attempt > 0:
            time.sleep(random.uniform(0, min(2.0, 0.025 * 2 ** min(attempt, 10))))

    async def scan(self, prefix: str = "") -> AsyncIterator[str]:
        """Yield live keys starting with ``prefix``: a Scan that reads the whole table."""
        params: dict[str, Any] = {
            "TableName": self.table,
            "ProjectionExpression": "#k, #e",
            "ExpressionAttributeNames": _NAMES,
            "ConsistentRead": self.config.consistent_read,
        }
        if prefix:
            params["FilterExpression"] = "begins_with(#k, :p)"
            params["ExpressionAttributeValues"] = {":p": {"S": prefix}}
        while True:
            response = await self._run(self._call, "scan", dict(params))
            now = time.time()
            for item in response.get("Items", []):
                if is_live(item, now):
                    yield item[KEY]["S"]
            last = response.get("LastEvaluatedKey")
            if not last:
                return
            params["ExclusiveStartKey"] = last

    # -- writes -----------------------------------------------------------
    async def set(self, key: str, value: bytes, *, expires_at: float | None = None) -> None:
        check_size(key, value, expires_at)
        item = put_item(key, value, encode_expiry(expires_at), new_version())
        await self._run(self._call, "put_item", {"TableName": self.table, "Item": item})

    async def set_many(
        self, items: Mapping[str, bytes], *, expires_at: float | None = None
    ) -> None:
        for key, value in items.items():  # all or nothing is sent
            check_size(key, value, expires_at)
        exp = encode_expiry(expires_at)
        requests = [
            {"PutRequest": {"Item": put_item(k, v, exp, new_version())}} for k, v in items.items()
        ]
        chunks = [
            requests[i : i + BATCH_WRITE_LIMIT] for i in range(0, len(requests), BATCH_WRITE_LIMIT)
        ]
        await asyncio.gather(*(self._run(self._batch_write, c) for c in chunks))

    def _batch_write(self, requests: list[dict[str, Any]]) -> None:
        pending = requests
        attempt = stalls = 0
        while True:
            response = self._call("batch_write_item", {"RequestItems": {self.table: pending}})
            left = response.get("UnprocessedItems", {}).get(self.table) or []
            if not left:
                return
            # Unprocessed writes always mean capacity trouble: back off every round.
            attempt += 1
            stalls = stalls + 1 if len(left) == len(pending) else 0
            pending = left
            self._backoff(attempt, stalls, "BatchWriteItem")

    async def delete(self, key: str) -> bool:
        params = {
            "TableName": self.table,
            "Key": self._key(key),
            "ConditionExpression": _EXISTS_AND_LIVE,
            "ExpressionAttributeNames": _NAMES,
            "ExpressionAttributeValues": _now(),
        }
        return await self._write_if("delete_item", params)

    async def delete_many(self, keys: Sequence[str]) -> int:
        """Conditional DeleteItem per key, run in parallel on the pool.

        BatchWriteItem cannot say what it deleted; one DeleteItem per key gives an
        exact count of live entries removed and costs the same write capacity.
        """
        results = await asyncio.gather(*(self.delete(key) for key in dict.fromkeys(keys)))
        return sum(results)

    # -- atomic -----------------------------------------------------------
    async def set_if(
        self,
        key: str,
        value: bytes,
        *,
        version: Version | None,
        expires_at: float | None = None,
    ) -> Version | None:
        check_size(key, value, expires_at)
        fresh = new_version()  # chosen here, so the new version is known without a read
        params: dict[str, Any] = {
            "TableName": self.table,
            "Item": put_item(key, value, encode_expiry(expires_at), fresh),
        }
        if not self._condition(params, version):
            return None
        return fresh if await self._write_if("put_item", params) else None

    async def delete_if(self, key: str, *, version: Version) -> bool:
        params: dict[str, Any] = {"TableName": self.table, "Key": self._key(key)}
        if not self._condition(params, version):
            return False
        return await self._write_if("delete_item", params)

    def _condition(self, params: dict[str, Any], version: Version | None) -> bool:
        """Add the condition "still has ``version``"; ``False`` if no item can have it."""
        if version is None:
            params["ConditionExpression"] = _ABSENT_OR_EXPIRED
            params["ExpressionAttributeNames"] = _NAMES
            params["ExpressionAttributeValues"] = _now()
        elif int_version(version, high=_MAX_VERSION) is None:
            return False  # not a version this adapter hands out
        elif version == 0:  # an item written without a version attribute
            params["ConditionExpression"] = _HAS_NO_VERSION
            params["ExpressionAttributeNames"] = _NAMES_WITH_VER
            params["ExpressionAttributeValues"] = _now()
        else:
            params["ConditionExpression"] = _HAS_VERSION
            params["ExpressionAttributeNames"] = _NAMES_WITH_VER
            params["ExpressionAttributeValues"] = {**_now(), ":ver": {"N": str(version)}}
        return True

    # -- lifecycle --------------------------------------------------------
    async def close(self) -> None:
        """Wait for calls in flight, shut the thread pool down and close the client. Idempotent."""
        if not self._closed:
            self._closed = True
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, self._shutdown)
        await super().close()

    def _shutdown(self) -> None:
        self._executor.shutdown(wait=True)
        self._table_ok = False
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def _repr_fields(self) -> Mapping[str, Any]:
        fields: dict[str, Any] = {"table": self.table, "region": self.config.region}
        if self.config.endpoint_url:
            fields["endpoint_url"] = redact_url(self.config.endpoint_url)
        fields["credentials"] = self.config.credentials_source
        fields["consistent_read"] = self.config.consistent_read
        fields["max_pool_connections"] = self.config.max_pool_connections
        if self._closed:
            fields["closed"] = True
        return fields


def _now() -> dict[str, Any]:
    """The ``:now`` value of a condition: this host's clock, as reads use it."""
    return {":now": {"N": repr(time.time())}}
