"""The public surface is pinned: what bot code, adapter authors and tests import.

Changing one of these lists is an API change: it needs a changelog entry.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import botstate
import botstate.adapter
import botstate.errors
import botstate.sync
import botstate.testing

BOT_API = {
    "FOREVER",
    "AdapterNotFound",
    "BotstateError",
    "Capability",
    "Codec",
    "CodecError",
    "ConfigError",
    "ConflictError",
    "DecodeError",
    "EncodeError",
    "InvalidArgument",
    "InvalidKey",
    "InvalidURL",
    "JsonCodec",
    "MigrationError",
    "MultiSessions",
    "PluginError",
    "Session",
    "Sessions",
    "Storage",
    "StorageError",
    "StorageUnavailable",
    "UnsupportedOperation",
    "UsageError",
    "ValueTooLarge",
    "__version__",
    "chat_key",
    "list_adapters",
    "open_storage",
    "topic_key",
    "user_in_chat_key",
    "user_key",
}

ADAPTER_API = {
    "MAX_KEY_BYTES",
    "MAX_SECONDS",
    "BaseAdapter",
    "BlockingOps",
    "Capability",
    "Choice",
    "Clock",
    "ExpiryCallback",
    "ExpiryEvent",
    "ManualClock",
    "OptionKind",
    "Seconds",
    "SecondsOrZero",
    "StorageAdapter",
    "StorageURL",
    "Version",
    "coerce_options",
    "hide_in_logs",
    "hookimpl",
    "int_version",
    "is_secret_option",
    "open_adapter",
    "parse_url",
    "redact_secrets",
    "redact_url",
    "register_plugin",
    "seconds",
    "system_clock",
    "validate_key",
}

TESTING_API = {"AdapterSuite", "ManualClock", "reset_registry"}

SYNC_API = {
    "SyncLock",
    "SyncMultiSessions",
    "SyncSession",
    "SyncSessionScope",
    "SyncSessions",
    "SyncStorage",
    "open_storage",
}

ERRORS = {
    "AdapterNotFound",
    "BotstateError",
    "CodecError",
    "ConfigError",
    "ConflictError",
    "DecodeError",
    "EncodeError",
    "InvalidArgument",
    "InvalidKey",
    "InvalidURL",
    "MigrationError",
    "PluginError",
    "StorageError",
    "StorageUnavailable",
    "UnsupportedOperation",
    "UsageError",
    "ValueTooLarge",
}

CORE = Path(botstate.__file__).parent


def test_top_level_holds_what_bot_code_uses() -> None:
    assert set(botstate.__all__) == BOT_API
    assert len(botstate.__all__) == len(BOT_API)  # no name listed twice


def test_adapter_namespace_holds_what_adapter_authors_use() -> None:
    assert set(botstate.adapter.__all__) == ADAPTER_API


def test_testing_namespace_holds_test_helpers() -> None:
    assert set(botstate.testing.__all__) == TESTING_API


def test_sync_namespace_holds_the_blocking_api() -> None:
    assert set(botstate.sync.__all__) == SYNC_API
    assert len(botstate.sync.__all__) == len(SYNC_API)


def test_every_error_is_exported_at_top_level() -> None:
    assert set(botstate.errors.__all__) == ERRORS
    assert ERRORS <= BOT_API
    for name in ERRORS:
        assert issubclass(getattr(botstate, name), botstate.BotstateError)


def test_every_listed_name_exists_in_every_module() -> None:
    for info in pkgutil.walk_packages(botstate.__path__, "botstate."):
        module = importlib.import_module(info.name)
        for name in getattr(module, "__all__", ()):
            assert hasattr(module, name), f"{info.name}.__all__ lists missing {name!r}"


def _imports_at_import_time(path: Path) -> set[str]:
    """The core modules ``path`` imports when it is itself imported (not inside functions)."""
    package = "botstate" + "".join(
        "." + part for part in path.relative_to(CORE).parent.parts if part
    )
    found: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            target = f"{base}.{node.module}" if node.module else base
            found.add(target)
            if node.module is None:
                found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def test_no_import_cycles_in_the_core() -> None:
    graph: dict[str, set[str]] = {}
    for path in CORE.rglob("*.py"):
        rel = path.relative_to(CORE).with_suffix("")
        parts = [p for p in rel.parts if p != "__init__"]
        name = ".".join(["botstate", *parts])
        graph[name] = _imports_at_import_time(path)
    # A package's __init__ importing its own submodules is how Python packages work;
    # a cycle is a module that (indirectly) imports itself through another module.
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if nxt not in graph or nxt.startswith(node + "."):
                continue
            if state.get(nxt) == 1:
                cycle = trail[trail.index(nxt) :] if nxt in trail else trail
                raise AssertionError(f"import cycle: {' -> '.join([*cycle, nxt])}")
            if state.get(nxt) is None:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for module in sorted(graph):
        if state.get(module) is None:
            visit(module, [module])


def test_import_botstate_imports_no_author_or_test_namespace() -> None:
    import subprocess
    import sys

    code = (
        "import sys, botstate; "
        "print(sorted(m for m in ('botstate.adapter', 'botstate.testing', 'botstate.sync', "
        "'pytest') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
