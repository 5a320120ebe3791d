"""No secret botstate was handed appears in any log record, the drivers' loggers included.

Every logger is captured at DEBUG (botocore logs signed request headers there)
while a storage opens, writes, reads, fails and closes.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import botstate
from botstate.adapter import hide_in_logs

ACCESS_KEY = "AKIDBOTSTATETESTKEY42"
SECRET_KEY = "wJalrBotstateTestSecretKeyEXAMPLE99"
TOKEN = "FQoGZXIvYXdzBotstateSessionTokenEXAMPLE"
REDIS_PASSWORD = "s3cret-redis-pass-w0rd"


class _Everything(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def captured() -> Iterator[_Everything]:
    handler = _Everything()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def _assert_clean(lines: list[str], *secrets: str) -> None:
    assert lines, "nothing was logged: the test would prove nothing"
    for secret in secrets:
        leaked = [line for line in lines if secret in line]
        assert not leaked, f"{secret!r} leaked in {len(leaked)} records, e.g. {leaked[0][:300]}"


async def _exercise(storage: botstate.Storage[Any]) -> None:
    await storage.set("chat:1", {"n": 1})
    assert await storage.get("chat:1") == {"n": 1}
    await storage.update("chat:1", lambda v: {"n": v["n"] + 1})
    await storage.delete("chat:1")


async def test_dynamodb_credentials_never_logged(
    dynamodb_local: Any, captured: _Everything
) -> None:
    options = {
        **dynamodb_local.options(f"kv-{uuid.uuid4().hex[:10]}"),
        "aws_access_key_id": ACCESS_KEY,
        "aws_secret_access_key": SECRET_KEY,
        "aws_session_token": TOKEN,
    }
    storage = botstate.open_storage({"adapter": "kv", **options})
    await _exercise(storage)
    await storage.close()
    botocore_lines = [line for line in captured.lines if line.startswith("botocore")]
    assert botocore_lines, "botocore logged nothing at DEBUG: the test would prove nothing"
    _assert_clean(captured.lines, ACCESS_KEY, SECRET_KEY, TOKEN)


async def test_redis_password_never_logged(tmp_path: Path, captured: _Everything) -> None:
    from tooling.services import missing
    from tooling.services.redis import RedisServer

    try:
        server = RedisServer(tmp_path, extra_args=("--requirepass", REDIS_PASSWORD)).start()
    except Exception as err:
        missing(f"redis-server could not be started: {err}")
    try:
        url = f"redis://:{REDIS_PASSWORD}@127.0.0.1:{server.port}/0"
        storage = botstate.open_storage(url)
        await _exercise(storage)
        logging.getLogger("botstate").debug("opened %s with %s", url, REDIS_PASSWORD)
        await storage.close()
        wrong = botstate.open_storage(f"redis://:wrong-{REDIS_PASSWORD}@127.0.0.1:{server.port}/0")
        with pytest.raises(botstate.BotstateError):
            await wrong.get("k")
        await wrong.close()
    finally:
        server.stop()
    _assert_clean(captured.lines, REDIS_PASSWORD)


def test_hidden_while_registered_and_shown_after(captured: _Everything) -> None:
    log = logging.getLogger("some.driver")
    forget = hide_in_logs(["tok-123456", None, ""])
    log.debug("header x-token: %s", "tok-123456")
    log.debug("percent-encoded: %s", "tok%2D123456".replace("%2D", "-"))
    try:
        raise RuntimeError("failed with tok-123456")
    except RuntimeError:
        log.exception("boom")
    forget()
    forget()  # twice is harmless
    log.debug("after: %s", "tok-123456")
    assert "tok-123456" not in "\n".join(captured.lines[:-1])
    assert any("***" in line for line in captured.lines[:2])
    assert captured.lines[-1].endswith("after: tok-123456")  # nothing hidden once forgotten
