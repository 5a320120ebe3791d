from __future__ import annotations

import pytest

from botstate import ConfigError, InvalidURL
from botstate.adapter import (
    Seconds,
    SecondsOrZero,
    coerce_options,
    parse_url,
    redact_secrets,
    redact_url,
)


def test_parse_full_url() -> None:
    url = parse_url("redis://user:s3cr%40t@example:6380/2?socket_timeout=1.5")
    assert (url.scheme, url.username, url.password) == ("redis", "user", "s3cr@t")
    assert (url.host, url.port, url.path) == ("example", 6380, "/2")
    assert url.query == {"socket_timeout": "1.5"}


def test_multi_host_and_ipv6() -> None:
    url = parse_url("redis+cluster://127.0.0.1:7000,127.0.0.1:7001,[::1]:7002")
    assert url.hosts == (("127.0.0.1", 7000), ("127.0.0.1", 7001), ("::1", 7002))
    assert str(url) == "redis+cluster://127.0.0.1:7000,127.0.0.1:7001,[::1]:7002"


@pytest.mark.parametrize(
    "text",
    [
        "redis://:hunter2@host:1/0",
        "redis://u:hunter2@host:1/0",
        "dynamodb://t?aws_secret_access_key=hunter2&region=x",
        "redis://host/0?password=hunter2",
    ],
)
def test_secrets_never_shown(text: str) -> None:
    url = parse_url(text)
    for shown in (str(url), repr(url), redact_url(text)):
        assert "hunter2" not in shown
        assert "***" in shown
    assert url.render(redact=False).count("hunter2") == 1


def test_redact_unparseable_url_still_hides_password() -> None:
    shown = redact_url("redis://u:hunter2@host:99999/0")
    assert "hunter2" not in shown


@pytest.mark.parametrize(
    "text", ["no-scheme", "://x", "redis://host:port/0", "redis://h:1/0?a=1&a=2", 5]
)
def test_invalid_urls(text: object) -> None:
    with pytest.raises(InvalidURL):
        parse_url(text)  # type: ignore[arg-type]


def test_coerce_options() -> None:
    spec = {"n": int, "t": float, "on": bool, "name": str}
    got = coerce_options({"n": "3", "t": "0.5", "on": "yes", "name": "x"}, spec, adapter="a")
    assert got == {"n": 3, "t": 0.5, "on": True, "name": "x"}
    with pytest.raises(ConfigError, match=r"unknown option 'bogus'.*allowed: n, name, on, t"):
        coerce_options({"bogus": 1}, spec, adapter="a")
    with pytest.raises(ConfigError, match="must be int"):
        coerce_options({"n": "three"}, spec, adapter="a")
    with pytest.raises(ConfigError, match="must be bool"):
        coerce_options({"on": "maybe"}, spec, adapter="a")
    with pytest.raises(ConfigError) as info:
        coerce_options({"password": 5}, {"password": str}, adapter="a")
    assert "5" not in str(info.value).replace("adapter", "")


def test_seconds_kinds() -> None:
    spec = {"timeout": Seconds, "interval": SecondsOrZero}
    assert coerce_options({"timeout": "1.5", "interval": "0"}, spec, adapter="a") == {
        "timeout": 1.5,
        "interval": 0.0,
    }
    for bad in ("0", "-1", "inf", "nan", True, "soon"):
        with pytest.raises(ConfigError, match="positive, finite number of seconds"):
            coerce_options({"timeout": bad}, spec, adapter="a")
    for bad in ("-1", "inf", "nan"):
        with pytest.raises(ConfigError, match="seconds >= 0"):
            coerce_options({"interval": bad}, spec, adapter="a")


def test_redact_secrets_in_free_text() -> None:
    url = "redis://:p%2Fss@host:1/0?token=tok123"
    text = f"failed on {url}: auth p/ss rejected, token tok123, key AKIAXYZ"
    clean = redact_secrets(text, url=url, options={"aws_secret_access_key": "AKIAXYZ"})
    for secret in ("p/ss", "p%2Fss", "tok123", "AKIAXYZ"):
        assert secret not in clean
    assert redact_secrets("say hunter2", secrets=["hunter2"]) == "say ***"
