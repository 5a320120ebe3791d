"""Importing an aiogram RedisStorage keyspace, written by aiogram's own RedisStorage."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiogram.fsm.state import State, StatesGroup
from aiogram.fsm.storage.base import DefaultKeyBuilder, StorageKey
from aiogram.fsm.storage.redis import RedisStorage
from redis.asyncio import Redis

from botstate.errors import DecodeError, StorageUnavailable
from botstate.opening import open_storage
from botstate.storage import FOREVER
from botstate_aiogram import BotstateKeyBuilder, BotstateStorage, import_redis_storage
from tooling.services import free_port

ROOT = Path(__file__).resolve().parents[2]


class Form(StatesGroup):
    name = State()


def keys(n: int) -> list[StorageKey]:
    return [StorageKey(bot_id=42, chat_id=-100 - i, user_id=i) for i in range(n)]


@pytest.fixture
async def redis_db(redis_server: Any) -> Any:
    """A clean database of the shared redis-server (db 3: the suite's tests use db 0)."""
    url = redis_server.url.rsplit("/", 1)[0] + "/3"
    client = Redis.from_url(url)
    await client.flushdb()
    yield url
    await client.flushdb()
    await client.aclose()


async def fill(url: str, builder: DefaultKeyBuilder | None = None) -> None:
    """What a bot on aiogram's RedisStorage leaves behind (states, data, TTLs, a lock)."""
    source = RedisStorage.from_url(url, key_builder=builder, data_ttl=3600)
    for i, key in enumerate(keys(30)):
        await source.set_state(key, Form.name if i % 2 else f"step{i}")
        await source.set_data(key, {"i": i, "name": f"user {i}", "tags": ["a", "b"]})
    await source.set_state(StorageKey(bot_id=42, chat_id=5, user_id=5, thread_id=9), "topic")
    async with source.create_isolation().lock(keys(1)[0]):
        await source.redis.set("unrelated", "x")
        await source.redis.set("fsm:junk", "x")
    # the lock entry of a process that died holding it
    await source.redis.set((builder or DefaultKeyBuilder()).build(keys(2)[1], "lock"), "token")
    await source.close()


@pytest.mark.parametrize("target_kind", ["sqlite", "redis"])
async def test_import_then_read_through_botstate_storage(
    redis_db: str, tmp_path: Path, target_kind: str, redis_server: Any
) -> None:
    await fill(redis_db)
    target_url = f"sqlite:///{tmp_path / 'bot.db'}" if target_kind == "sqlite" else redis_server.url
    namespace = f"mig{uuid.uuid4().hex[:6]}"
    target = open_storage(target_url, namespace=namespace)
    try:
        dry = await import_redis_storage(redis_db, target, dry_run=True)
        assert (dry.states, dry.data) == (31, 30)
        assert [k async for k in target.keys()] == []  # dry run wrote nothing

        report = await import_redis_storage(redis_db, target)
        assert (report.states, report.data, report.locks) == (31, 30, 1)
        assert report.skipped == ["fsm:junk"]
        assert report.copied == 61

        fsm = BotstateStorage(target)
        for i, key in enumerate(keys(30)):
            assert await fsm.get_state(key) == ("Form:name" if i % 2 else f"step{i}")
            assert await fsm.get_data(key) == {"i": i, "name": f"user {i}", "tags": ["a", "b"]}
        thread_key = StorageKey(bot_id=42, chat_id=5, user_id=5, thread_id=9)
        assert await fsm.get_state(thread_key) == "topic"
        # TTLs carried over: data had 3600 s, states none
        data_ttl = await target.ttl(BotstateKeyBuilder().build(keys(1)[0], "data"))
        assert data_ttl is not None and 3500 < data_ttl <= 3600
        assert await target.ttl(BotstateKeyBuilder().build(keys(1)[0], "state")) == FOREVER
        # the bot goes on where aiogram's RedisStorage left off
        assert await fsm.update_data(keys(1)[0], {"more": 1}) == {
            "i": 0, "name": "user 0", "tags": ["a", "b"], "more": 1,
        }  # fmt: skip
    finally:
        await target.close()


async def test_custom_prefix_and_bot_id(redis_db: str) -> None:
    builder = DefaultKeyBuilder(prefix="mybot", with_bot_id=True)
    await fill(redis_db, builder)
    target = open_storage("memory://")
    report = await import_redis_storage(redis_db, target, prefix="mybot")
    assert (report.states, report.data) == (31, 30)
    fsm = BotstateStorage(target, key_builder=BotstateKeyBuilder(prefix="mybot", with_bot_id=True))
    assert await fsm.get_data(keys(3)[2]) == {"i": 2, "name": "user 2", "tags": ["a", "b"]}
    # nothing under the default prefix
    assert (await import_redis_storage(redis_db, open_storage("memory://"))).copied == 0


async def test_bad_data_is_a_decode_error_naming_the_key(redis_db: str) -> None:
    client = Redis.from_url(redis_db)
    await client.set("fsm:1:1:data", "not json")
    await client.aclose()
    with pytest.raises(DecodeError) as info:
        await import_redis_storage(redis_db, open_storage("memory://"))
    assert info.value.key == "fsm:1:1:data"


async def test_unreachable_source() -> None:
    with pytest.raises(StorageUnavailable) as info:
        await import_redis_storage(
            f"redis://:secret@127.0.0.1:{free_port()}/0", open_storage("memory://")
        )
    assert "secret" not in str(info.value)


@pytest.mark.slow
def test_command_line(redis_db: str, tmp_path: Path) -> None:
    import asyncio

    asyncio.run(fill(redis_db))
    target = f"sqlite:///{tmp_path / 'cli.db'}"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "botstate_aiogram", *args],
            capture_output=True, text=True, timeout=120, cwd=ROOT,
        )  # fmt: skip

    done = run("import-redis", redis_db, target, "--namespace", "bot")
    assert done.returncode == 0, done.stderr
    assert "copied 31 states and 30 data entries" in done.stdout
    assert "skipped 1 locks, 1 other keys" in done.stdout

    async def check() -> None:
        async with open_storage(target, namespace="bot") as storage:
            assert await BotstateStorage(storage).get_data(keys(1)[0]) == {
                "i": 0, "name": "user 0", "tags": ["a", "b"],
            }  # fmt: skip

    asyncio.run(check())
    down = run("import-redis", f"redis://:pw123@127.0.0.1:{free_port()}/0", target)
    assert down.returncode == 3
    assert "pw123" not in down.stderr
    usage = run("import-redis", redis_db)
    assert usage.returncode == 2
