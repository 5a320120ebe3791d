"""URL forms, options and their validation, plugin registration."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import botstate
import botstate.adapter
from botstate import Capability, ConfigError, InvalidURL
from botstate_storage_sqlite import SqliteAdapter
from botstate_storage_sqlite.adapter import _upper_bound
from botstate_storage_sqlite.config import parse_sqlite_url


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///relative.db", "relative.db"),
        ("sqlite:///data/bot.db", "data/bot.db"),
        ("sqlite:////abs/path.db", "/abs/path.db"),
        ("sqlite:////abs/with%20space.db", "/abs/with space.db"),
        ("sqlite://:memory:", ":memory:"),
        ("sqlite:///:memory:", ":memory:"),
        ("SQLITE:///upper.db", "upper.db"),
    ],
)
def test_url_forms(url: str, path: str) -> None:
    assert parse_sqlite_url(url)[0] == path
    assert SqliteAdapter.from_url(url).config.path == path


def test_defaults() -> None:
    config = SqliteAdapter.from_url("sqlite:///bot.db").config
    assert (config.table, config.journal_mode, config.synchronous) == ("botstate", "WAL", "NORMAL")
    assert (config.busy_timeout, config.purge_interval) == (5.0, 5.0)


def test_options_from_query_and_keywords() -> None:
    adapter = SqliteAdapter.from_url(
        "sqlite://:memory:?table=sessions&journal_mode=delete&synchronous=full"
        "&busy_timeout=0.5&purge_interval=0",
        synchronous="extra",  # keywords win over the query
    )
    config = adapter.config
    assert config.path == ":memory:"
    assert config.table == "sessions"
    assert config.journal_mode == "DELETE"
    assert config.synchronous == "EXTRA"
    assert config.busy_timeout == 0.5
    assert config.purge_interval == 0.0


def test_path_option_instead_of_url(tmp_path: Path) -> None:
    adapter = SqliteAdapter.from_url(None, path=str(tmp_path / "x.db"), table="t1")
    assert adapter.config.path == str(tmp_path / "x.db")
    with pytest.raises(ConfigError, match="not both"):
        SqliteAdapter.from_url("sqlite:///a.db", path="b.db")
    with pytest.raises(ConfigError, match="needs a URL"):
        SqliteAdapter.from_url(None)


@pytest.mark.parametrize(
    "url",
    [
        "sqlite://",
        "sqlite:///",
        "sqlite://host/bot.db",
        "sqlite://localhost:5432/bot.db",
        "memory://",
        "sqlite:bot.db",
        "sqlite:///bot.db?table=a&table=b",
        "sqlite://:memory:x",
        "sqlite://user:hunter2@/bot.db",
    ],
)
def test_bad_urls(url: str) -> None:
    with pytest.raises(InvalidURL) as info:
        SqliteAdapter.from_url(url)
    assert "hunter2" not in str(info.value)


def test_duplicate_option_error_comes_from_the_core_parser() -> None:
    url = "sqlite:///bot.db?table=a&table=b"
    with pytest.raises(InvalidURL) as ours:
        SqliteAdapter.from_url(url)
    with pytest.raises(InvalidURL) as core:
        botstate.adapter.parse_url(url)
    assert str(ours.value) == str(core.value)


@pytest.mark.parametrize(
    "table",
    [
        "",
        "1abc",
        "bad-name",
        "two words",
        'x"; DROP TABLE botstate; --',
        "tab\n",
        "sqlite_master",
        "SQLite_anything",
        "botstate_meta",
        "ünïcode",
        "a" * 101,
    ],
)
def test_bad_table_names(table: str) -> None:
    with pytest.raises(ConfigError, match="table name"):
        SqliteAdapter.from_url("sqlite://:memory:", table=table)


@pytest.mark.parametrize("table", ["botstate", "Sessions", "_t", "bot_2"])
def test_good_table_names(table: str) -> None:
    assert SqliteAdapter.from_url("sqlite://:memory:", table=table).config.table == table


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("journal_mode", "FAST"),
        ("synchronous", "sometimes"),
        ("synchronous", "1"),
        ("busy_timeout", "-1"),
        ("busy_timeout", "soon"),
        ("purge_interval", "-0.5"),
        ("purge_interval", "inf"),
        ("busy_timeout", "inf"),
        ("busy_timeout", "nan"),
        ("purge_interval", "true"),
        ("nonsense", "1"),
    ],
)
def test_bad_options(option: str, value: str) -> None:
    with pytest.raises(ConfigError, match=option):
        SqliteAdapter.from_url(f"sqlite:///bot.db?{option}={value}")
    with pytest.raises(ConfigError, match=option):
        SqliteAdapter.from_url("sqlite:///bot.db", **{option: value})


def test_seconds_options_accept_zero_and_whole_numbers() -> None:
    config = SqliteAdapter.from_url("sqlite:///bot.db?busy_timeout=0", purge_interval=2).config
    assert (config.busy_timeout, config.purge_interval) == (0.0, 2.0)
    assert isinstance(config.purge_interval, float)


def test_bad_clock() -> None:
    with pytest.raises(ConfigError, match="clock"):
        SqliteAdapter.from_url("sqlite:///bot.db", clock=12)


def test_capabilities() -> None:
    file = SqliteAdapter.from_url("sqlite:///bot.db")
    memory = SqliteAdapter.from_url("sqlite://:memory:")
    common = {Capability.BATCH, Capability.SCAN, Capability.ATOMIC, Capability.EXPIRY_EVENTS}
    assert file.capabilities == common | {Capability.PERSISTENT, Capability.SHARED}
    assert memory.capabilities == common


def test_open_storage_by_url_and_mapping(tmp_path: Path) -> None:
    storage = botstate.open_storage(f"sqlite:///{tmp_path}/a.db?table=s", namespace="bot")
    assert isinstance(storage.adapter, SqliteAdapter)
    assert storage.adapter.config.table == "s"
    by_name = botstate.open_storage({"adapter": "sqlite", "path": str(tmp_path / "b.db")})
    assert isinstance(by_name.adapter, SqliteAdapter)
    memory = botstate.open_storage("sqlite:///:memory:")
    assert isinstance(memory.adapter, SqliteAdapter) and memory.adapter.config.in_memory
    memory = botstate.open_storage("sqlite://:memory:?table=t")
    assert isinstance(memory.adapter, SqliteAdapter) and memory.adapter.config.in_memory
    assert memory.adapter.config.table == "t"
    info = {a.name: a for a in botstate.list_adapters()}["sqlite"]
    assert info.schemes == ("sqlite",)
    assert info.distribution == "botstate-storage-sqlite"


def test_open_does_no_io(tmp_path: Path) -> None:
    botstate.open_storage(f"sqlite:///{tmp_path}/never.db")
    assert not (tmp_path / "never.db").exists()


def test_plugin_does_not_import_the_driver() -> None:
    code = (
        "import sys, botstate, botstate_storage_sqlite.plugin\n"
        "names = [a.name for a in botstate.list_adapters()]\n"
        "assert 'sqlite' in names, names\n"
        "assert 'botstate_storage_sqlite.adapter' not in sys.modules\n"
        "botstate.open_storage('sqlite:///x.db')\n"
        "assert 'botstate_storage_sqlite.adapter' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_repr_shows_path_and_table() -> None:
    adapter = SqliteAdapter.from_url("sqlite:///bot.db?table=t")
    assert repr(adapter) == "SqliteAdapter(path='bot.db', table='t')"


@pytest.mark.parametrize(
    ("prefix", "upper"),
    [
        ("", None),
        ("a", "b"),
        ("user:", "user;"),
        ("a\U0010ffff", "b"),
        ("\U0010ffff", None),
        ("x\ud7ff", "x\ue000"),
        ("a%", "a&"),
    ],
)
def test_prefix_upper_bound(prefix: str, upper: str | None) -> None:
    assert _upper_bound(prefix) == upper
