"""What is specific to the kv (DynamoDB) adapter, against Amazon DynamoDB Local."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

import botstate
import botstate.adapter
from botstate import ConfigError, InvalidURL, StorageError, StorageUnavailable, ValueTooLarge
from botstate_storage_kv import DynamoDBAdapter
from tooling.services import free_port

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYSECRET"
TOKEN = "FQoGZXIvYXdzEXAMPLESESSIONTOKEN"


def fresh_table() -> str:
    return f"kv-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def server(dynamodb_local: Any) -> Any:
    return dynamodb_local


@pytest.fixture
def raw(server: Any) -> Any:
    client = server.client()
    yield client
    client.close()


@pytest_asyncio.fixture
async def adapter(server: Any) -> AsyncIterator[DynamoDBAdapter]:
    adapter = DynamoDBAdapter.from_url(server.url(fresh_table()))
    yield adapter
    await adapter.close()


# -- selection: URL and mapping forms -------------------------------------
async def test_url_form_through_open_storage(server: Any) -> None:
    storage = botstate.open_storage(server.url(fresh_table()), namespace="bot")
    try:
        await storage.set("user:1", {"name": "Ann"})
        assert await storage.get("user:1") == {"name": "Ann"}
        assert isinstance(storage.adapter, DynamoDBAdapter)
    finally:
        await storage.close()


async def test_mapping_form_through_open_storage(server: Any) -> None:
    config = {"adapter": "kv", **server.options(fresh_table()), "consistent_read": "false"}
    storage = botstate.open_storage(config, namespace="bot")
    try:
        assert isinstance(storage.adapter, DynamoDBAdapter)
        assert storage.adapter.config.consistent_read is False
        await storage.set("k", [1, 2])
        # Eventually consistent reads on DynamoDB Local are immediate.
        assert await storage.get("k") == [1, 2]
    finally:
        await storage.close()


def test_plugin_registers_kv_without_importing_boto3() -> None:
    code = (
        "import sys, botstate\n"
        "info = {a.name: a for a in botstate.list_adapters()}['kv']\n"
        "assert info.schemes == ('dynamodb',), info.schemes\n"
        "assert info.distribution == 'botstate-storage-kv', info.distribution\n"
        "assert 'boto3' not in sys.modules and 'botocore' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_options_are_parsed_and_typed() -> None:
    adapter = DynamoDBAdapter.from_url(
        "dynamodb://bot-state?region=eu-west-1&max_pool_connections=4&connect_timeout=1.5"
        "&read_timeout=2&max_attempts=5&retry_mode=adaptive&consistent_read=no&create=1"
    )
    c = adapter.config
    assert (c.table, c.region, c.max_pool_connections, c.max_attempts) == (
        "bot-state",
        "eu-west-1",
        4,
        5,
    )
    assert (c.connect_timeout, c.read_timeout, c.retry_mode) == (1.5, 2.0, "adaptive")
    assert c.consistent_read is False and c.create is True
    assert c.endpoint_url is None and c.credentials_source == "default chain"
    by_option = DynamoDBAdapter.from_url(None, table="bot-state", profile="prod")
    assert by_option.config.credentials_source == "profile prod"


@pytest.mark.parametrize(
    ("url", "options", "error"),
    [
        ("dynamodb://bot-state?colour=red", {}, ConfigError),
        ("dynamodb://ab", {}, ConfigError),  # table names have 3+ characters
        ("dynamodb://bad*name", {}, ConfigError),
        ("dynamodb://", {}, ConfigError),
        ("dynamodb://t1-table:8000", {}, InvalidURL),
        ("dynamodb://t1-table/extra", {}, InvalidURL),
        ("dynamodb://bot-state", {"table": "other-table"}, ConfigError),
        ("dynamodb://bot-state?retry_mode=legacy", {}, ConfigError),
        ("dynamodb://bot-state?max_pool_connections=0", {}, ConfigError),
        ("dynamodb://bot-state?read_timeout=0", {}, ConfigError),
        ("dynamodb://bot-state?read_timeout=inf", {}, ConfigError),
        ("dynamodb://bot-state?connect_timeout=nan", {}, ConfigError),
        ("dynamodb://bot-state", {"connect_timeout": float("inf")}, ConfigError),
        ("dynamodb://bot-state", {"connect_timeout": -1}, ConfigError),
        ("dynamodb://bot-state?max_attempts=zero", {}, ConfigError),
        ("dynamodb://bot-state?aws_access_key_id=AKIDONLY", {}, ConfigError),
        ("dynamodb://bot-state?endpoint_url=localhost", {}, ConfigError),
        (
            "dynamodb://bot-state?profile=p&aws_access_key_id=a&aws_secret_access_key=b",
            {},
            ConfigError,
        ),
    ],
)
def test_bad_configuration_is_refused_at_open(
    url: str, options: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        DynamoDBAdapter.from_url(url, **options)


async def test_opening_does_no_io() -> None:
    # Nothing listens there: only the first operation finds out.
    url = f"dynamodb://bot-state?region=us-east-1&endpoint_url=http://127.0.0.1:{free_port()}"
    adapter = DynamoDBAdapter.from_url(url, aws_access_key_id="a", aws_secret_access_key="b")
    assert adapter._client is None
    await adapter.close()


# -- secrets --------------------------------------------------------------
async def test_secrets_never_shown(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="botstate")
    port = free_port()
    url = (
        f"dynamodb://bot-state?region=us-east-1&endpoint_url=http://127.0.0.1:{port}"
        f"&aws_access_key_id=AKIAEXAMPLEKEYID&aws_secret_access_key={SECRET}"
        f"&aws_session_token={TOKEN}&connect_timeout=0.5&max_attempts=1"
    )
    adapter = DynamoDBAdapter.from_url(url)
    shown = [repr(adapter), str(adapter), repr(adapter.config), botstate.adapter.redact_url(url)]
    with pytest.raises(StorageUnavailable) as failed:
        await adapter.get("k")
    shown += [str(failed.value), repr(failed.value), caplog.text]
    with pytest.raises(ConfigError) as bad_type:
        DynamoDBAdapter.from_url(None, table="bot-state", aws_secret_access_key=123)
    shown.append(str(bad_type.value))
    with pytest.raises(ConfigError) as bad_url:
        DynamoDBAdapter.from_url(f"dynamodb://AKIAEXAMPLEKEYID:{SECRET}@bot-state")
    shown.append(str(bad_url.value))
    for text in shown:
        assert SECRET not in text and TOKEN not in text and "AKIAEXAMPLEKEYID" not in text, text
    assert "bot-state" in repr(adapter) and "explicit" in repr(adapter)
    await adapter.close()


async def test_endpoint_url_password_never_shown() -> None:
    """botocore names the endpoint URL in connection errors; its password is hidden."""
    endpoint = f"http://proxyuser:{SECRET}@127.0.0.1:{free_port()}"
    adapter = DynamoDBAdapter.from_url(
        "dynamodb://bot-state?region=us-east-1&connect_timeout=0.5&max_attempts=1",
        endpoint_url=endpoint,
        aws_access_key_id="AKIAEXAMPLEKEYID",
        aws_secret_access_key=TOKEN,
    )
    try:
        with pytest.raises(StorageUnavailable, match="endpoint") as failed:
            await adapter.get("k")
    finally:
        await adapter.close()
    for text in (str(failed.value), repr(adapter)):
        assert SECRET not in text and TOKEN not in text and "AKIAEXAMPLEKEYID" not in text, text
        assert "proxyuser:***@127.0.0.1" in text, text


async def test_missing_profile_region_or_credentials_are_config_errors(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ACCESS_KEY_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    endpoint = f"http://127.0.0.1:{free_port()}"
    cases = [
        ({"profile": "no-such-profile", "region": "us-east-1"}, "no-such-profile"),
        ({"aws_access_key_id": "a", "aws_secret_access_key": "b"}, "region"),
        ({"region": "us-east-1"}, "credentials"),
    ]
    for options, hint in cases:
        adapter = DynamoDBAdapter.from_url(
            None, table="bot-state", endpoint_url=endpoint, **options
        )
        with pytest.raises(ConfigError, match=hint):
            await adapter.get("k")
        await adapter.close()


# -- the table ------------------------------------------------------------
async def test_missing_table_without_create_names_it(server: Any, raw: Any) -> None:
    table = fresh_table()
    adapter = DynamoDBAdapter.from_url(server.url(table, create=False))
    try:
        for attempt in (adapter.get("k"), adapter.set("k", b"v")):
            with pytest.raises(ConfigError, match=table):
                await attempt
    finally:
        await adapter.close()
    assert table not in raw.list_tables()["TableNames"]


async def test_create_is_idempotent_and_enables_ttl(server: Any, raw: Any) -> None:
    table = fresh_table()
    first = DynamoDBAdapter.from_url(server.url(table))
    second = DynamoDBAdapter.from_url(server.url(table))
    try:
        # Two adapters racing to create the same table both succeed.
        await asyncio.gather(first.set("a", b"1"), second.set("b", b"2"))
        third = DynamoDBAdapter.from_url(server.url(table))
        assert await third.get_many(["a", "b"]) == {"a": b"1", "b": b"2"}
        await third.close()
    finally:
        await first.close()
        await second.close()
    description = raw.describe_table(TableName=table)["Table"]
    assert description["KeySchema"] == [{"AttributeName": "k", "KeyType": "HASH"}]
    assert description["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = raw.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "exp"}


async def test_create_enables_ttl_on_an_existing_table(server: Any, raw: Any) -> None:
    table = fresh_table()
    raw.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    plain = DynamoDBAdapter.from_url(server.url(table, create=False))
    await plain.set("k", b"v")  # an existing table is used as it is
    await plain.close()
    assert raw.describe_time_to_live(TableName=table)["TimeToLiveDescription"] == {
        "TimeToLiveStatus": "DISABLED"
    }
    creating = DynamoDBAdapter.from_url(server.url(table))
    assert await creating.get("k") == b"v"
    await creating.close()
    ttl = raw.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert ttl["TimeToLiveStatus"] == "ENABLED" and ttl["AttributeName"] == "exp"


async def test_wrong_key_schema_is_a_config_error(server: Any, raw: Any) -> None:
    table = fresh_table()
    raw.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    adapter = DynamoDBAdapter.from_url(server.url(table))
    with pytest.raises(ConfigError, match="partition key 'k'"):
        await adapter.get("k")
    await adapter.close()


async def test_item_layout(adapter: DynamoDBAdapter, raw: Any) -> None:
    at = time.time() + 100.25
    await adapter.set("user:1", b"\x00data", expires_at=at)
    await adapter.set("user:2", b"forever")
    item = raw.get_item(TableName=adapter.table, Key={"k": {"S": "user:1"}})["Item"]
    assert set(item) == {"k", "v", "exp", "ver"}
    assert item["v"] == {"B": b"\x00data"}
    assert abs(float(item["exp"]["N"]) - at) < 1e-5  # sub-second precision kept
    assert 0 < int(item["ver"]["N"]) < 2**63
    item2 = raw.get_item(TableName=adapter.table, Key={"k": {"S": "user:2"}})["Item"]
    assert set(item2) == {"k", "v", "ver"}


async def test_a_read_error_is_never_missing(adapter: DynamoDBAdapter, raw: Any) -> None:
    await adapter.set("k", b"v")
    raw.delete_table(TableName=adapter.table)
    for attempt in (adapter.get("k"), adapter.has("k"), adapter.get_many(["k"])):
        with pytest.raises(ConfigError, match=adapter.table):
            await attempt


# -- expiry and versions --------------------------------------------------
async def test_expired_item_still_stored_is_invisible(adapter: DynamoDBAdapter, raw: Any) -> None:
    await adapter.set("warm-up", b"")  # creates the table outside the timed window
    expires_at = time.time() + 2.0  # room for a loaded machine between the write and the read
    await adapter.set("k", b"v", expires_at=expires_at)
    got = await adapter.get_versioned("k")
    assert got is not None
    await asyncio.sleep(max(0.0, expires_at - time.time()) + 0.2)
    # DynamoDB deletes expired items late; the item is still in the table.
    assert "Item" in raw.get_item(TableName=adapter.table, Key={"k": {"S": "k"}})
    assert await adapter.get("k") is None
    assert await adapter.get_expiry("k") is None
    assert await adapter.set_if("k", b"w", version=got[1]) is None
    assert await adapter.delete_if("k", version=got[1]) is False
    assert await adapter.delete("k") is False
    assert [k async for k in adapter.scan("")] == ["warm-up"]


async def test_items_written_by_others_without_a_version(
    adapter: DynamoDBAdapter, raw: Any
) -> None:
    await adapter.set("seed", b"x")  # creates the table
    raw.put_item(TableName=adapter.table, Item={"k": {"S": "legacy"}, "v": {"B": b"old"}})
    got = await adapter.get_versioned("legacy")
    assert got == (b"old", 0)
    assert await adapter.set_if("legacy", b"new", version=0) is not None
    assert await adapter.set_if("legacy", b"again", version=0) is None
    assert await adapter.set_if("legacy", b"bad", version="nope") is None
    assert await adapter.get("legacy") == b"new"


# -- size limit -----------------------------------------------------------
async def test_value_too_large_counts_the_key(adapter: DynamoDBAdapter, raw: Any) -> None:
    value = b"x" * 408_600  # fits next to a short key ...
    await adapter.set("short", value)
    long_key = "L" * 1000  # ... but not next to a long one
    with pytest.raises(ValueTooLarge):
        await adapter.set(long_key, value)
    with pytest.raises(ValueTooLarge):
        await adapter.set_if(long_key, value, version=None)
    # One oversized item in a batch: nothing of the batch is written.
    with pytest.raises(ValueTooLarge):
        await adapter.set_many({"small": b"1", long_key: value})
    assert await adapter.get_many(["small", long_key]) == {}
    assert await adapter.get("short") == value


async def test_item_size_limit_as_the_readme_states(adapter: DynamoDBAdapter) -> None:
    """A value may take 409,474 bytes minus the key's length, 24 bytes less with an expiry."""
    key = "k" * 40
    largest = 409_474 - len(key)
    await adapter.set(key, b"x" * largest)  # DynamoDB accepts it too
    assert await adapter.get(key) == b"x" * largest
    with pytest.raises(ValueTooLarge):
        await adapter.set(key, b"x" * (largest + 1))
    expires_at = time.time() + 60
    await adapter.set(key, b"y" * (largest - 24), expires_at=expires_at)
    with pytest.raises(ValueTooLarge):
        await adapter.set(key, b"y" * (largest - 23), expires_at=expires_at)


# -- batches --------------------------------------------------------------
async def test_batches_beyond_request_limits(adapter: DynamoDBAdapter) -> None:
    items = {f"b{i:03d}": os.urandom(8) for i in range(237)}  # > 100 reads, > 25 writes
    await adapter.set_many(items, expires_at=time.time() + 300)
    assert await adapter.get_many(list(items)) == items
    assert await adapter.delete_many(list(items)[:130]) == 130
    assert await adapter.get_many(list(items)) == dict(list(items.items())[130:])


async def test_duplicate_keys_in_batches(adapter: DynamoDBAdapter) -> None:
    await adapter.set_many({"a": b"1", "b": b"2"})
    keys = ["a", "b", "a", "missing", "b", "a"] * 30  # duplicates across request chunks too
    assert await adapter.get_many(keys) == {"a": b"1", "b": b"2"}
    assert await adapter.delete_many(["a", "a", "b", "missing", "b"]) == 2
    assert await adapter.get_many(["a", "b"]) == {}


async def test_batch_get_follows_unprocessed_keys(adapter: DynamoDBAdapter) -> None:
    # 45 items of ~380 KB are more than the 16 MB one BatchGetItem may return:
    # DynamoDB answers with UnprocessedKeys, which must be fetched too.
    blob = os.urandom(380_000)
    items = {f"big{i:02d}": blob[i:] + bytes([i]) for i in range(45)}
    await adapter.set_many(items)
    assert await adapter.get_many(list(items)) == items


async def test_scan_pages_and_prefix(adapter: DynamoDBAdapter) -> None:
    await adapter.set_many({f"user:{i}": b"u" for i in range(20)} | {"chat:1": b"c"})
    await adapter.set("user:gone", b"x", expires_at=time.time() - 1)
    assert sorted([k async for k in adapter.scan("user:")]) == sorted(
        f"user:{i}" for i in range(20)
    )
    assert [k async for k in adapter.scan("chat:")] == ["chat:1"]
    assert len([k async for k in adapter.scan()]) == 21


# -- failures and lifecycle ---------------------------------------------
async def test_refused_endpoint_is_unavailable_within_the_timeout() -> None:
    url = (
        f"dynamodb://bot-state?region=us-east-1&endpoint_url=http://127.0.0.1:{free_port()}"
        "&connect_timeout=1&read_timeout=1&max_attempts=2"
    )
    adapter = DynamoDBAdapter.from_url(url, aws_access_key_id="a", aws_secret_access_key="b")
    try:
        for attempt in (adapter.get("k"), adapter.set("k", b"v"), adapter.get_many(["k"])):
            started = time.monotonic()
            with pytest.raises(StorageUnavailable) as info:
                await attempt
            assert time.monotonic() - started < 10
            assert "bot-state" in str(info.value)
    finally:
        await adapter.close()


async def test_close_shuts_the_pool(server: Any) -> None:
    table = fresh_table()
    adapter = DynamoDBAdapter.from_url(server.url(table), max_pool_connections=3)
    await asyncio.gather(*(adapter.set(f"k{i}", b"v") for i in range(10)))

    def pool_threads() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name.startswith(f"botstate-kv:{table}")]

    assert 1 <= len(pool_threads()) <= 3
    await adapter.close()
    await adapter.close()
    assert pool_threads() == []
    with pytest.raises(StorageError, match="closed"):
        await adapter.get("k0")
    assert "closed=True" in repr(adapter)
    # Like the other adapters: use after close is StorageUnavailable.
    for call in (adapter.get("k0"), adapter.set("k0", b"v"), adapter.delete("k0")):
        with pytest.raises(StorageUnavailable, match="closed"):
            await call
