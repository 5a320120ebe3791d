"""Every error botstate raises for bad input is a BotstateError (and the built-in kind expected)."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import botstate
from botstate import Sessions, Storage
from botstate.adapter import Choice, coerce_options, parse_url, seconds

Call = Callable[[], Any]


async def _outcome(call: Call) -> BaseException:
    try:
        result = call()
        if isinstance(result, Awaitable):
            await result
    except Exception as err:
        return err
    raise AssertionError("no error raised")


def _storage_cases(storage: Storage[Any]) -> list[tuple[str, Call, type[Exception]]]:
    return [
        ("set ttl negative", lambda: storage.set("k", 1, ttl=-1), ValueError),
        ("set ttl zero", lambda: storage.set("k", 1, ttl=0), ValueError),
        ("set ttl nan", lambda: storage.set("k", 1, ttl=math.nan), ValueError),
        ("set ttl text", lambda: storage.set("k", 1, ttl="60"), TypeError),  # type: ignore[arg-type]
        ("set ttl bool", lambda: storage.set("k", 1, ttl=True), TypeError),
        ("set_many ttl", lambda: storage.set_many({"k": 1}, ttl=-5), ValueError),
        ("get key int", lambda: storage.get(7), TypeError),  # type: ignore[arg-type]
        ("get key empty", lambda: storage.get(""), ValueError),
        ("set key NUL", lambda: storage.set("a\x00b", 1), ValueError),
        ("keys prefix int", lambda: storage.keys(5).__anext__(), TypeError),  # type: ignore[arg-type]
        ("set unencodable", lambda: storage.set("k", object()), botstate.EncodeError),
        ("update ttl", lambda: storage.update("k", lambda v: 1, ttl=-1), ValueError),
        ("ttl 1e20", lambda: storage.set("k", 1, ttl=1e20), ValueError),
        ("ttl huge int", lambda: storage.set("k", 1, ttl=10**400), ValueError),
    ]


@pytest.mark.parametrize("index", range(14))
async def test_storage_bad_arguments(storage: Storage[Any], index: int) -> None:
    name, call, builtin = _storage_cases(storage)[index]
    err = await _outcome(call)
    assert isinstance(err, botstate.BotstateError), (name, type(err))
    assert isinstance(err, builtin), (name, type(err))
    assert await storage.get("k") is None  # nothing written


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: botstate.open_storage("memory://", ttl=-1), botstate.ConfigError),
        (lambda: botstate.open_storage("memory://", ttl="1h"), botstate.ConfigError),
        (lambda: botstate.open_storage("memory://", namespace="a:b"), botstate.ConfigError),
        (lambda: botstate.open_storage("memory://", max_retries=-1), botstate.ConfigError),
        (lambda: botstate.open_storage("memory://?max_entries=lots"), botstate.ConfigError),
        (lambda: botstate.open_storage("memory://", codec="nope"), botstate.ConfigError),
        (lambda: botstate.open_storage(42), botstate.ConfigError),
        (lambda: botstate.open_storage("nosuch://x"), botstate.AdapterNotFound),
        (lambda: botstate.open_storage("no scheme"), botstate.AdapterNotFound),
        (lambda: botstate.open_storage({"url": 5}), botstate.ConfigError),
        (lambda: botstate.chat_key(""), botstate.InvalidKey),
        (lambda: botstate.user_key(1.5), botstate.InvalidKey),  # type: ignore[arg-type]
        (lambda: botstate.topic_key(1, "a:b"), botstate.InvalidKey),
        (lambda: parse_url("not a url"), botstate.InvalidURL),
        (lambda: coerce_options({"x": 1}, {}, adapter="t"), botstate.ConfigError),
        (lambda: coerce_options({"m": "b"}, {"m": Choice("a")}, adapter="t"), botstate.ConfigError),
        (lambda: seconds(-1), botstate.InvalidArgument),
        (lambda: seconds(math.inf), botstate.InvalidArgument),
        (lambda: Choice(), botstate.InvalidArgument),
    ],
)
def test_opening_and_helpers_bad_input(make: Call, expected: type[Exception]) -> None:
    with pytest.raises(expected) as caught:
        make()
    assert isinstance(caught.value, botstate.BotstateError)


@pytest.mark.parametrize(
    "options",
    [
        {"isolation": "bogus"},
        {"ttl": -1},
        {"ttl": "10"},
        {"version": 0},
        {"version": 2, "migrations": {5: lambda d: d}},
        {"sliding": "yes"},
        {"lock_ttl": 0},
        {"lock_ttl": math.inf},
        {"lock_timeout": -1},
        {"lock_timeout": "soon"},
    ],
)
def test_sessions_bad_settings_are_config_errors(
    storage: Storage[Any], options: dict[str, Any]
) -> None:
    with pytest.raises(botstate.ConfigError):
        Sessions(storage, **options)


async def test_lazy_session_data_before_load_is_a_usage_error(storage: Storage[Any]) -> None:
    sessions: Sessions[dict[str, int]] = Sessions(storage, initial=dict, lazy=True)
    async with sessions.open("chat:1") as session:
        with pytest.raises(botstate.UsageError) as caught:
            _ = session.data
        assert isinstance(caught.value, RuntimeError)  # what Python users expect here
        assert "load()" in str(caught.value)


async def test_closed_storage_raises_storage_unavailable(storage: Storage[Any]) -> None:
    await storage.set("k", 1)
    await storage.close()
    for call in (lambda: storage.get("k"), lambda: storage.set("k", 2), lambda: storage.has("k")):
        with pytest.raises(botstate.StorageUnavailable):
            await call()


@pytest.mark.parametrize(
    ("spec", "expected", "hint"),
    [
        ("bot.db", botstate.AdapterNotFound, "sqlite:///bot.db"),
        ("data/state.sqlite", botstate.AdapterNotFound, "sqlite:///data/state.sqlite"),
        ("memroy", botstate.AdapterNotFound, "did you mean 'memory'?"),
        ("memroy://", botstate.AdapterNotFound, "did you mean 'memory://'?"),
        ("redsi://localhost", botstate.AdapterNotFound, "did you mean 'redis://'?"),
        ("redis://[::1/0", botstate.InvalidURL, "IPv6"),
        ("redis://[::1]x/0", botstate.InvalidURL, "IPv6"),
    ],
)
def test_messages_say_what_to_do(spec: str, expected: type[Exception], hint: str) -> None:
    with pytest.raises(expected) as caught:
        botstate.open_storage(spec)
    assert hint in str(caught.value)


@pytest.mark.parametrize("name", ["json", "msgpack", "bytes", "text"])
def test_codecs_used_directly_raise_codec_errors(name: str) -> None:
    from botstate.plugins import get_codec

    codec = get_codec(name)
    with pytest.raises(botstate.EncodeError):
        codec.encode(object())
    if name != "bytes":  # any bytes are valid bytes
        with pytest.raises(botstate.DecodeError):
            codec.decode(b"\xc1\xff{not valid")
