"""Loading plugins: entry points, pluggy, and the adapters and codecs they register.

Plugins are named by entry points in the group ``botstate.storage``. Each is
loaded in isolation: one that fails to import or register is reported by
:func:`list_adapters` with its error and does not affect the others. Set
``BOTSTATE_PLUGINS=memory,redis`` to load only the plugins of those entry names.
Adapter factories are dotted paths imported only when that adapter is opened,
so ``import botstate`` imports no driver.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .codecs import OPTIONAL_CODECS, Codec, builtin_codec
from .contract import StorageAdapter
from .errors import AdapterNotFound, ConfigError, InvalidURL, PluginError
from .urls import redact_url

if TYPE_CHECKING:
    import pluggy

__all__ = [
    "ENTRY_POINT_GROUP",
    "AdapterInfo",
    "adapter_name_for_url",
    "find_adapter",
    "get_codec",
    "list_adapters",
    "register_plugin",
    "reset_registry",
]

logger = logging.getLogger("botstate")

ENTRY_POINT_GROUP = "botstate.storage"
ALLOW_ENV = "BOTSTATE_PLUGINS"

# Adapters this project publishes, so a missing one can be named for pip.
KNOWN_DISTRIBUTIONS = {
    "memory": "botstate-storage-memory",
    "sqlite": "botstate-storage-sqlite",
    "redis": "botstate-storage-redis",
    "kv": "botstate-storage-kv",
}
KNOWN_SCHEMES = {
    "memory": "memory",
    "sqlite": "sqlite",
    "redis": "redis",
    "rediss": "redis",
    "unix": "redis",
    "redis+cluster": "redis",
    "dynamodb": "kv",
}
_NAME = re.compile(r"^[a-z][a-z0-9_.+-]*$")


@dataclass
class AdapterInfo:
    """One registered adapter, or one plugin that failed (``error`` is set)."""

    name: str
    schemes: tuple[str, ...] = ()
    distribution: str | None = None
    version: str | None = None
    description: str = ""
    plugin: str | None = None
    factory: str | Callable[..., StorageAdapter] | None = field(default=None, repr=False)
    error: str | None = None

    def load_factory(self) -> Callable[..., StorageAdapter]:
        """Import and return the factory; raise :class:`PluginError` if it cannot be imported."""
        if self.error is not None:
            raise PluginError(
                f"storage plugin {self.plugin or self.name!r} is broken: {self.error}"
            )
        if callable(self.factory):
            return self.factory
        assert isinstance(self.factory, str)
        try:
            return _import_dotted(self.factory)  # type: ignore[no-any-return]
        except Exception as err:  # ImportError, a missing attribute, or the module's own error
            hint = self.distribution or KNOWN_DISTRIBUTIONS.get(self.name)
            fix = f"; reinstall it with: pip install {hint}" if hint else ""
            raise PluginError(
                f"adapter {self.name!r} cannot import {self.factory!r}: {err}{fix}"
            ) from err


class _Registry:
    def __init__(self) -> None:
        # pluggy arrives with the first plugin lookup, not with ``import botstate``.
        import pluggy

        from . import hookspecs

        self.pm: pluggy.PluginManager = pluggy.PluginManager("botstate")
        self.pm.add_hookspecs(hookspecs)
        self.adapters: dict[str, AdapterInfo] = {}
        self.schemes: dict[str, str] = {}
        self.codecs: dict[str, Codec[Any]] = {}
        self.broken: list[AdapterInfo] = []
        self._dists: dict[str, tuple[str | None, str | None]] = {}

    def load(self) -> None:
        from . import _builtins

        self.add_plugin(_builtins, "botstate", None, None)
        allowed = _allow_list()
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if allowed is not None and ep.name not in allowed:
                continue
            dist = getattr(ep, "dist", None)
            dist_name = dist.metadata["Name"] if dist is not None else None
            dist_version = dist.version if dist is not None else None
            try:
                plugin = ep.load()
            except Exception as err:
                self._fail(ep.name, dist_name, dist_version, f"import failed: {_describe(err)}")
                continue
            self.add_plugin(plugin, ep.name, dist_name, dist_version)

    def add_plugin(self, plugin: object, name: str, dist: str | None, version: str | None) -> None:
        try:
            self.pm.register(plugin, name=name)
        except Exception as err:
            self._fail(name, dist, version, f"registration failed: {_describe(err)}")
            return
        self._dists[name] = (dist, version)
        for hook_name, register_for in (
            ("botstate_register_storage", self._storage_register),
            ("botstate_register_codecs", self._codec_register),
        ):
            caller = getattr(self.pm.hook, hook_name)
            for impl in caller.get_hookimpls():
                if impl.plugin_name != name:
                    continue
                before = dict(self.adapters), dict(self.schemes), dict(self.codecs)
                try:
                    impl.function(register=register_for(name))
                except Exception as err:
                    # All or nothing: a failing hook leaves none of its registrations.
                    self.adapters, self.schemes, self.codecs = before
                    self._fail(name, dist, version, f"{hook_name} failed: {_describe(err)}")

    def _fail(self, name: str, dist: str | None, version: str | None, error: str) -> None:
        logger.warning("botstate plugin %r (%s) is broken: %s", name, dist or "?", error)
        self.broken.append(
            AdapterInfo(name=name, distribution=dist, version=version, plugin=name, error=error)
        )

    def _storage_register(self, plugin: str) -> Callable[..., None]:
        def register(
            name: str,
            factory: str | Callable[..., StorageAdapter],
            *,
            schemes: Iterable[str] = (),
            description: str = "",
        ) -> None:
            if not isinstance(name, str) or not _NAME.match(name):
                raise PluginError(f"adapter name must match {_NAME.pattern}, got {name!r}")
            if not (callable(factory) or (isinstance(factory, str) and ":" in factory)):
                raise PluginError(
                    f"factory of adapter {name!r} must be callable or 'module:attr', "
                    f"got {factory!r}"
                )
            if isinstance(schemes, str):
                raise PluginError(f"schemes of adapter {name!r} must be a list, not a str")
            scheme_tuple = tuple(s.lower() for s in schemes)
            if name in self.adapters:
                owner = self.adapters[name].plugin
                raise PluginError(f"adapter {name!r} is already registered by plugin {owner!r}")
            for scheme in scheme_tuple:
                if scheme in self.schemes:
                    raise PluginError(
                        f"scheme {scheme!r} is already served by adapter {self.schemes[scheme]!r}"
                    )
            dist, version = self._dists.get(plugin, (None, None))
            self.adapters[name] = AdapterInfo(
                name, scheme_tuple, dist, version, description, plugin, factory
            )
            for scheme in scheme_tuple:
                self.schemes[scheme] = name

        return register

    def _codec_register(self, plugin: str) -> Callable[[Codec[Any]], None]:
        def register(codec: Codec[Any]) -> None:
            name = getattr(codec, "name", None)
            if not isinstance(name, str) or not name:
                raise PluginError(f"codec {codec!r} has no name")
            if not (
                callable(getattr(codec, "encode", None))
                and callable(getattr(codec, "decode", None))
            ):
                raise PluginError(f"codec {name!r} needs encode() and decode()")
            if name in self.codecs:
                raise PluginError(f"codec {name!r} is already registered")
            self.codecs[name] = codec

        return register


def entry_points(group: str) -> Any:
    """The installed entry points of ``group`` (what ``importlib.metadata`` finds).

    Read from the distributions' folders without importing ``importlib.metadata``
    (about half the cost of a cold ``open_storage("memory://")``) unless the
    layout needs it; see :mod:`botstate._entry_points`.
    """
    from ._entry_points import entry_points as read

    return read(group)


_registry: _Registry | None = None
_lock = threading.Lock()


def _get_registry() -> _Registry:
    global _registry
    with _lock:
        if _registry is None:
            registry = _Registry()
            registry.load()
            _registry = registry
        return _registry


def reset_registry() -> None:
    """Forget loaded plugins; the next lookup loads them again (reads the env anew)."""
    global _registry
    with _lock:
        _registry = None


def register_plugin(plugin: object, name: str | None = None) -> None:
    """Register a plugin object by hand (tests, applications with private adapters).

    Errors are reported like an entry-point plugin's: in :func:`adapters`.
    """
    registry = _get_registry()
    registry.add_plugin(plugin, name or str(getattr(plugin, "__name__", repr(plugin))), None, None)


def list_adapters() -> list[AdapterInfo]:
    """List installed adapters and broken plugins (those have ``error`` set)."""
    registry = _get_registry()
    return sorted(registry.adapters.values(), key=lambda a: a.name) + list(registry.broken)


def get_codec(name: str) -> Codec[Any]:
    """The codec registered as ``name``: json, msgpack, bytes, text, or a plugin's."""
    codec = builtin_codec(name)  # no plugin loading needed for these
    if codec is not None:
        return codec
    registry = _get_registry()
    if name not in registry.codecs:
        known = ", ".join(sorted({*registry.codecs, *OPTIONAL_CODECS}))
        raise ConfigError(f"unknown codec {name!r} (registered: {known})")
    return registry.codecs[name]


def find_adapter(name: str) -> AdapterInfo:
    """The adapter registered as ``name``; ``AdapterNotFound`` says how to install it."""
    registry = _get_registry()
    if name in registry.adapters:
        return registry.adapters[name]
    for info in registry.broken:
        if info.name == name:
            raise PluginError(f"storage plugin {name!r} failed to load: {info.error}")
    installed = ", ".join(sorted(registry.adapters)) or "none"
    dist = KNOWN_DISTRIBUTIONS.get(name)
    close = _closest(name, registry.adapters)
    if dist:
        hint = f"install it with: pip install {dist}"
    elif _looks_like_path(name):
        hint = f"for a SQLite file give a URL: 'sqlite:///{name}'"
    elif close:
        hint = f"did you mean {close!r}?"
    else:
        hint = f"look for a distribution named botstate-storage-{name}"
    allowed = _allow_list()
    if allowed is not None and name not in allowed:
        hint += f" (note: {ALLOW_ENV} limits plugins to {', '.join(sorted(allowed))})"
    raise AdapterNotFound(
        f"no storage adapter named {name!r} is installed (installed: {installed}); {hint}"
    )


def adapter_name_for_url(url: str) -> str:
    """The name of the adapter serving ``url``'s scheme (``AdapterNotFound`` if none)."""
    # Only the scheme matters here; the adapter parses the rest (``sqlite://:memory:``
    # is not a host:port URL, and that is the SQLite adapter's business).
    scheme, sep, _ = url.partition("://")
    if not sep or not scheme:
        raise InvalidURL(f"not a storage URL (expected scheme://...): {redact_url(url)!r}")
    scheme = scheme.lower()
    registry = _get_registry()
    if scheme in registry.schemes:
        return registry.schemes[scheme]
    if scheme in KNOWN_SCHEMES:
        return KNOWN_SCHEMES[scheme]  # _find() will explain how to install it
    known = ", ".join(sorted(registry.schemes)) or "none"
    close = _closest(scheme, [*registry.schemes, *KNOWN_SCHEMES])
    hint = f"; did you mean {close + '://'!r}?" if close else ""
    raise AdapterNotFound(
        f"no installed adapter serves URL scheme {scheme!r} (known schemes: {known}){hint}"
    )


def _closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate ``word`` is most likely a typo of, if any is close."""
    import difflib  # only on this error path

    found = difflib.get_close_matches(word.lower(), sorted(set(candidates)), n=1, cutoff=0.6)
    return found[0] if found else None


def _looks_like_path(name: str) -> bool:
    """A file name or path given where an adapter name or URL was expected."""
    return "/" in name or "\\" in name or name.lower().endswith((".db", ".sqlite", ".sqlite3"))


def _allow_list() -> set[str] | None:
    raw = os.environ.get(ALLOW_ENV)
    if raw is None:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


def _import_dotted(path: str) -> Any:
    module_name, _, attrs = path.partition(":")
    obj: Any = importlib.import_module(module_name)
    for attr in attrs.split("."):
        obj = getattr(obj, attr)
    return obj


def _describe(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"
