"""Plugin discovery and selection: entry points, broken plugins, URLs, names, config, env.

Fake plugins are registered in-process with ``botstate.adapter.register_plugin``; the
entry-point list is narrowed with a monkeypatch where a test needs to know
exactly what is "installed". The adapters opened are real (memory).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pytest

import botstate
import botstate.adapter
import botstate.testing
from botstate import AdapterNotFound, ConfigError, InvalidURL, PluginError
from botstate.adapter import StorageAdapter, hookimpl, parse_url, redact_url
from botstate.plugins import ENTRY_POINT_GROUP
from botstate_storage_memory import MemoryAdapter
from botstate_storage_memory import __version__ as memory_version

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the hatch env installs tomli on 3.10
    import tomli as tomllib

SECRET = "s3cr3t-Pa55"


class StoragePlugin:
    """A plugin whose hook makes the given ``register(...)`` calls (or raises)."""

    def __init__(self, *calls: tuple[tuple[Any, ...], dict[str, Any]], boom: bool = False):
        self.calls = calls
        self.boom = boom

    @hookimpl
    def botstate_register_storage(self, register: Callable[..., None]) -> None:
        for args, kwargs in self.calls:
            register(*args, **kwargs)
        if self.boom:
            raise RuntimeError("kaput")


def reg(*args: Any, **kwargs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return args, kwargs


def memory_factory(url: str | None, **options: Any) -> StorageAdapter:
    return MemoryAdapter(**options)


def by_name() -> dict[str, botstate.plugins.AdapterInfo]:
    return {info.name: info for info in botstate.list_adapters() if info.error is None}


def broken() -> dict[str, str]:
    return {info.name: info.error or "" for info in botstate.list_adapters() if info.error}


@pytest.fixture
def only_memory(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Pretend the memory adapter is the only installed plugin distribution."""
    real = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == "memory"]
    assert real, "botstate-storage-memory must be installed in the test env"

    def fake(**params: Any) -> list[EntryPoint]:
        assert params == {"group": ENTRY_POINT_GROUP}
        return list(real)

    monkeypatch.setattr("botstate.plugins.entry_points", fake)
    botstate.testing.reset_registry()
    yield
    botstate.testing.reset_registry()


# -- discovery and broken plugins ------------------------------------------
def test_adapter_info_fields_of_an_installed_adapter() -> None:
    info = by_name()["memory"]
    assert info.schemes == ("memory",)
    assert info.distribution == "botstate-storage-memory"
    assert info.version == memory_version
    assert info.plugin == "memory"
    assert info.description
    assert info.error is None
    assert isinstance(info.factory, str)  # a dotted path, imported only when opened


def test_hand_registered_adapter_is_listed_and_opens() -> None:
    botstate.adapter.register_plugin(
        StoragePlugin(reg("mine", memory_factory, schemes=["mine"], description="d")), "mine-plugin"
    )
    info = by_name()["mine"]
    assert (info.schemes, info.plugin, info.description) == (("mine",), "mine-plugin", "d")
    assert info.distribution is None
    assert isinstance(botstate.adapter.open_adapter("mine://"), MemoryAdapter)


async def test_hook_that_raises_is_reported_and_others_still_work() -> None:
    botstate.adapter.register_plugin(
        StoragePlugin(reg("half", memory_factory), boom=True), "exploding-plugin"
    )
    errors = broken()
    assert "exploding-plugin" in errors
    assert "botstate_register_storage failed: RuntimeError: kaput" in errors["exploding-plugin"]
    assert "half" not in by_name()  # what it registered before failing is rolled back
    storage = botstate.open_storage("memory://")
    await storage.set("k", 1)
    assert await storage.get("k") == 1


def test_entry_point_that_fails_to_import_is_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = list(entry_points(group=ENTRY_POINT_GROUP))
    ghost = EntryPoint("ghost", "botstate_no_such_plugin_module", ENTRY_POINT_GROUP)
    monkeypatch.setattr("botstate.plugins.entry_points", lambda **_: [*real, ghost])
    botstate.testing.reset_registry()
    assert "import failed: ModuleNotFoundError" in broken()["ghost"]
    assert "memory" in by_name()
    with pytest.raises(PluginError, match="'ghost' failed to load"):
        botstate.open_storage({"adapter": "ghost"})


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (reg("Bad Name", memory_factory), "adapter name must match"),
        (reg("", memory_factory), "adapter name must match"),
        (reg(42, memory_factory), "adapter name must match"),
        (reg("nofactory", "not_a_dotted_path"), "must be callable or 'module:attr'"),
        (reg("nofactory", 42), "must be callable or 'module:attr'"),
        (reg("strschemes", memory_factory, schemes="abc"), "must be a list, not a str"),
        (reg("memory", memory_factory), "'memory' is already registered by plugin 'memory'"),
        (
            reg("other", memory_factory, schemes=["MEMORY"]),
            "scheme 'memory' is already served by adapter 'memory'",
        ),
    ],
)
def test_bad_registration_is_reported_as_broken(
    call: tuple[tuple[Any, ...], dict[str, Any]], message: str
) -> None:
    before = by_name().keys()
    botstate.adapter.register_plugin(StoragePlugin(reg("fine", memory_factory), call), "bad-plugin")
    assert message in broken()["bad-plugin"]
    assert by_name()["memory"].plugin == "memory"  # the original owner is untouched
    assert by_name().keys() == before
    assert isinstance(botstate.adapter.open_adapter("memory://"), MemoryAdapter)


def test_same_plugin_name_twice_is_reported() -> None:
    botstate.adapter.register_plugin(StoragePlugin(reg("one", memory_factory)), "twin")
    botstate.adapter.register_plugin(StoragePlugin(reg("two", memory_factory)), "twin")
    assert "registration failed" in broken()["twin"]
    assert "one" in by_name()
    assert "two" not in by_name()


def test_allow_list_limits_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOTSTATE_PLUGINS", " nothing-here , ")
    botstate.testing.reset_registry()
    assert by_name() == {}
    with pytest.raises(AdapterNotFound, match="BOTSTATE_PLUGINS limits plugins to nothing-here"):
        botstate.open_storage("memory://")
    monkeypatch.setenv("BOTSTATE_PLUGINS", "memory")
    botstate.testing.reset_registry()
    assert list(by_name()) == ["memory"]
    assert isinstance(botstate.adapter.open_adapter("memory://"), MemoryAdapter)


# -- selection --------------------------------------------------------------
CONFIG_TOML = """
[storage]
adapter = "memory"
namespace = "mybot"
ttl = 3600
codec = "json"
max_entries = 500
"""


async def test_open_by_url_name_and_toml_mapping() -> None:
    by_url = botstate.open_storage("memory://?max_entries=10", namespace="a", ttl=5)
    assert isinstance(by_url.adapter, MemoryAdapter)
    assert by_url.adapter.max_entries == 10
    assert (by_url.namespace, by_url.default_ttl) == ("a", 5)

    by_name_ = botstate.open_storage("memory", max_entries=20)
    assert isinstance(by_name_.adapter, MemoryAdapter)
    assert by_name_.adapter.max_entries == 20

    config = tomllib.loads(CONFIG_TOML)["storage"]
    from_toml = botstate.open_storage(config)
    assert isinstance(from_toml.adapter, MemoryAdapter)
    assert from_toml.adapter.max_entries == 500
    assert (from_toml.namespace, from_toml.default_ttl, from_toml.codec.name) == (
        "mybot",
        3600,
        "json",
    )
    assert config["adapter"] == "memory"  # the caller's mapping is not consumed
    await from_toml.set("k", {"v": 1})
    assert await from_toml.get("k") == {"v": 1}
    assert await from_toml.adapter.get("mybot:k") == b'{"v":1}'

    with_url = botstate.open_storage({"adapter": "memory", "url": "memory://?max_entries=7"})
    assert isinstance(with_url.adapter, MemoryAdapter)
    assert with_url.adapter.max_entries == 7
    url_only = botstate.adapter.open_adapter({"url": "memory://", "max_entries": 3})
    assert isinstance(url_only, MemoryAdapter)
    assert url_only.max_entries == 3


def test_keyword_options_override_the_mapping() -> None:
    storage = botstate.open_storage({"adapter": "memory", "namespace": "x"}, namespace="y")
    assert storage.namespace == "y"


def test_open_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="BOTSTATE_STORAGE is not set"):
        botstate.open_storage()
    monkeypatch.setenv("BOTSTATE_STORAGE", "memory://?max_entries=9")
    storage = botstate.open_storage(namespace="env")
    assert isinstance(storage.adapter, MemoryAdapter)
    assert storage.adapter.max_entries == 9
    assert storage.namespace == "env"


def test_unknown_options_and_bad_specs_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown option 'colour'"):
        botstate.open_storage({"adapter": "memory", "colour": "red"})
    with pytest.raises(ConfigError, match="needs 'adapter' or 'url'"):
        botstate.open_storage({"namespace": "x"})
    with pytest.raises(ConfigError, match="'adapter' must be a string"):
        botstate.open_storage({"adapter": 3})
    with pytest.raises(ConfigError, match="'url' must be a string"):
        botstate.open_storage({"url": 3})
    with pytest.raises(ConfigError, match="storage spec must be"):
        botstate.open_storage(42)  # type: ignore[arg-type]
    with pytest.raises(InvalidURL):
        botstate.open_storage("memory://?a=1&a=2")


def test_mapping_whose_adapter_disagrees_with_its_url() -> None:
    with pytest.raises(ConfigError, match="'redis' does not match the URL scheme") as info:
        botstate.open_storage({"adapter": "redis", "url": "memory://"})
    assert "served by 'memory'" in str(info.value)
    with pytest.raises(ConfigError) as info:
        botstate.open_storage({"adapter": "memory", "url": f"redis://u:{SECRET}@h:6379/0"})
    assert "does not match" in str(info.value)
    assert SECRET not in str(info.value)


@pytest.mark.usefixtures("only_memory")
def test_unknown_name_lists_installed_and_names_the_distribution() -> None:
    with pytest.raises(AdapterNotFound) as info:
        botstate.open_storage({"adapter": "redis"})
    message = str(info.value)
    assert "no storage adapter named 'redis'" in message
    assert "(installed: memory)" in message
    assert "pip install botstate-storage-redis" in message
    for url, dist in [
        (f"rediss://:{SECRET}@h:6380", "botstate-storage-redis"),
        ("sqlite:///bot.db", "botstate-storage-sqlite"),
        ("dynamodb://table?region=eu-west-1", "botstate-storage-kv"),
    ]:
        with pytest.raises(AdapterNotFound, match=f"pip install {dist}") as info:
            botstate.open_storage(url)
        assert SECRET not in str(info.value)
    with pytest.raises(AdapterNotFound, match="distribution named botstate-storage-acme"):
        botstate.open_storage("acme")


@pytest.mark.usefixtures("only_memory")
def test_unknown_scheme_lists_known_schemes() -> None:
    with pytest.raises(AdapterNotFound) as info:
        botstate.open_storage(f"ftp://user:{SECRET}@host/x")
    assert "no installed adapter serves URL scheme 'ftp' (known schemes: memory)" in str(info.value)
    assert SECRET not in str(info.value)


@pytest.mark.usefixtures("only_memory")
def test_factory_that_cannot_be_imported_is_a_plugin_error_with_a_hint() -> None:
    botstate.adapter.register_plugin(
        StoragePlugin(
            reg("sqlite", "botstate_storage_sqlite_gone.adapter:X.from_url", schemes=["sqlite"]),
            reg("noattr", "botstate_storage_memory.adapter:NoSuchAdapter.from_url"),
            reg("private", "private_store_gone:Factory"),
        ),
        "half-installed",
    )
    with pytest.raises(PluginError) as info:
        botstate.open_storage("sqlite:///bot.db")
    message = str(info.value)
    assert "adapter 'sqlite' cannot import 'botstate_storage_sqlite_gone.adapter:X.from_url'" in (
        message
    )
    assert "reinstall it with: pip install botstate-storage-sqlite" in message
    with pytest.raises(PluginError, match="adapter 'noattr' cannot import"):
        botstate.open_storage({"adapter": "noattr"})
    with pytest.raises(PluginError, match="adapter 'private' cannot import"):
        botstate.open_storage({"adapter": "private"})


def test_dotted_factory_is_imported_only_when_opened() -> None:
    module = "botstate_storage_memory.adapter"
    info = by_name()["memory"]
    assert info.factory == f"{module}:MemoryAdapter.from_url"
    assert info.load_factory() == MemoryAdapter.from_url


# -- secrets ------------------------------------------------------------------
def test_storage_url_and_redact_url_hide_passwords() -> None:
    text = f"redis://user:{SECRET}@h:6379/0?password={SECRET}&db_token={SECRET}&x=1"
    url = parse_url(text)
    assert url.password == SECRET
    for shown in (str(url), repr(url), redact_url(text), f"{url}", f"{url!r}"):
        assert SECRET not in shown
        assert "user:***@h:6379/0" in shown
    assert url.render(redact=False) == text


@pytest.mark.parametrize(
    "text",
    [
        f"redis://user:{SECRET}@host:notaport/0",
        f"redis://:{SECRET}@host:99999",
        f"redis://:{SECRET}@host/0?a=1&a=2",
        f"redis://:pa/{SECRET}@host:6379",
        f"redis://:{SECRET}/x@host:6379",
        f"redis://:12#{SECRET}@host:6379",
        f"redis://:12?{SECRET}@host:6379",
    ],
)
def test_invalid_or_odd_urls_never_echo_the_password(text: str) -> None:
    assert SECRET not in redact_url(text)
    try:
        shown = str(parse_url(text))
    except InvalidURL as err:
        shown = str(err)
    assert SECRET not in shown


@pytest.mark.parametrize("exc", [ValueError, RuntimeError, InvalidURL])
def test_factory_errors_never_echo_the_password(exc: type[Exception]) -> None:
    def leaky(url: str | None, **options: Any) -> StorageAdapter:
        raise exc(f"cannot connect to {url} with password={options.get('password')}")

    botstate.adapter.register_plugin(StoragePlugin(reg("leaky", leaky, schemes=["leaky"])), "leaky")
    with pytest.raises(ConfigError) as info:
        botstate.open_storage(f"leaky://user:{SECRET}@host:1/0")
    assert SECRET not in str(info.value)
    assert "leaky://user:***@host:1/0" in str(info.value)
    with pytest.raises(ConfigError) as info:
        botstate.open_storage({"adapter": "leaky", "password": SECRET})
    assert SECRET not in str(info.value)
    # The scrubbed error must not chain the original, which still holds the secret.
    cause = info.value.__cause__
    assert cause is None or SECRET not in str(cause)
