"""Finding adapters and codecs: entry points, pluggy, and selection by URL or name.

Plugins are named by entry points in the group ``botstate.storage``. Each is
loaded in isolation: one that fails to import or register is reported by
:func:`adapters` with its error and does not affect the others. Set
``BOTSTATE_PLUGINS=memory,redis`` to load only the plugins of those entry names.
Adapter factories are dotted paths imported only when that adapter is opened,
so ``import botstate`` imports no driver.
"""

from __future__ import annotations

import builtins
import importlib
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload
from urllib.parse import unquote

import pluggy

from . import hookspecs
from .adapter import StorageAdapter
from .codecs import OPTIONAL_CODECS, Codec, builtin_codec
from .errors import AdapterNotFound, BotstateError, ConfigError, InvalidURL, PluginError
from .storage import TTL, Storage
from .urls import redact_secrets, redact_url

__all__ = [
    "ENTRY_POINT_GROUP",
    "AdapterInfo",
    "adapters",
    "get_codec",
    "open_adapter",
    "open_storage",
    "register_plugin",
    "reset_registry",
]

logger = logging.getLogger("botstate")

ENTRY_POINT_GROUP = "botstate.storage"
ALLOW_ENV = "BOTSTATE_PLUGINS"
STORAGE_ENV = "BOTSTATE_STORAGE"

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
_STORAGE_OPTIONS = ("namespace", "ttl", "codec", "max_retries")  # for Storage, not the adapter
_URL_STORAGE_OPTIONS = ("codec",)  # Storage options a URL's query may carry

T = TypeVar("T")


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
        self.pm = pluggy.PluginManager("botstate")
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
    """``importlib.metadata.entry_points``, imported when plugins first load (~20 ms)."""
    from importlib import metadata

    return metadata.entry_points(group=group)


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


def adapters() -> list[AdapterInfo]:
    """List installed adapters and broken plugins (those have ``error`` set)."""
    registry = _get_registry()
    return sorted(registry.adapters.values(), key=lambda a: a.name) + list(registry.broken)


def get_codec(name: str) -> Codec[Any]:
    """Return the codec registered as ``name`` (``json``, ``bytes``, ``text``, ``msgpack``
    or a plugin's)."""
    codec = builtin_codec(name)  # no plugin loading needed for these
    if codec is not None:
        return codec
    registry = _get_registry()
    if name not in registry.codecs:
        known = ", ".join(sorted({*registry.codecs, *OPTIONAL_CODECS}))
        raise ConfigError(f"unknown codec {name!r} (registered: {known})")
    return registry.codecs[name]


def _find(name: str) -> AdapterInfo:
    registry = _get_registry()
    if name in registry.adapters:
        return registry.adapters[name]
    for info in registry.broken:
        if info.name == name:
            raise PluginError(f"storage plugin {name!r} failed to load: {info.error}")
    installed = ", ".join(sorted(registry.adapters)) or "none"
    dist = KNOWN_DISTRIBUTIONS.get(name)
    hint = (
        f"install it with: pip install {dist}"
        if dist
        else f"look for a distribution named botstate-storage-{name}"
    )
    allowed = _allow_list()
    if allowed is not None and name not in allowed:
        hint += f" (note: {ALLOW_ENV} limits plugins to {', '.join(sorted(allowed))})"
    raise AdapterNotFound(
        f"no storage adapter named {name!r} is installed (installed: {installed}); {hint}"
    )


def _resolve(
    spec: str | Mapping[str, Any] | None, options: dict[str, Any]
) -> tuple[str, str | None, dict[str, Any]]:
    """Return ``(adapter name, url, options)`` for any accepted spec form."""
    if spec is None:
        spec = os.environ.get(STORAGE_ENV)
        if not spec:
            raise ConfigError(f"no storage given and {STORAGE_ENV} is not set")
    if isinstance(spec, Mapping):
        merged = {**spec, **options}
        name = merged.pop("adapter", None)
        url = merged.pop("url", None)
        if url is not None and not isinstance(url, str):
            raise ConfigError(f"'url' must be a string, not {type(url).__name__}")
        if url is not None:
            url, from_url = _storage_options_in_url(url)
            merged = {**from_url, **merged}
        if name is None and url is None:
            raise ConfigError("storage config needs 'adapter' or 'url'")
        if url is not None:
            by_url = adapter_name_for_url(url)
            if name is not None and name != by_url:
                raise ConfigError(
                    f"adapter {name!r} does not match the URL scheme of {redact_url(url)!r} "
                    f"(served by {by_url!r})"
                )
            name = by_url
        if not isinstance(name, str):
            raise ConfigError(f"'adapter' must be a string, not {type(name).__name__}")
        return name, url, merged
    if not isinstance(spec, str):
        raise ConfigError(
            f"storage spec must be a URL, a name or a mapping, not {type(spec).__name__}"
        )
    if "://" in spec:
        url, from_url = _storage_options_in_url(spec)
        return adapter_name_for_url(url), url, {**from_url, **options}
    return spec, None, dict(options)


def _storage_options_in_url(url: str) -> tuple[str, dict[str, str]]:
    """Split Storage options (``?codec=msgpack``) off a URL; the adapter gets the rest.

    Other query options are left byte for byte as written.
    """
    base, sep, query = url.partition("?")
    if not sep:
        return url, {}
    query, hash_sep, fragment = query.partition("#")
    kept: list[str] = []
    found: dict[str, str] = {}
    for part in query.split("&"):
        key, _, value = part.partition("=")
        if unquote(key) in _URL_STORAGE_OPTIONS:
            found[unquote(key)] = unquote(value)
        else:
            kept.append(part)
    if not found:
        return url, {}
    rest = "&".join(kept)
    return base + ("?" + rest if rest else "") + hash_sep + fragment, found


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
    raise AdapterNotFound(
        f"no installed adapter serves URL scheme {scheme!r} (known schemes: {known})"
    )


def open_adapter(spec: str | Mapping[str, Any] | None = None, **options: Any) -> StorageAdapter:
    """Open the raw adapter for a URL, adapter name, or config mapping (no ``Storage`` layer)."""
    name, url, opts = _resolve(spec, options)
    for key in _STORAGE_OPTIONS:
        opts.pop(key, None)
    return _open(name, url, opts)


def _open(name: str, url: str | None, options: dict[str, Any]) -> StorageAdapter:
    info = _find(name)
    factory = info.load_factory()
    try:
        return factory(url, **options)
    except Exception as err:
        raw = str(err)
        clean = redact_secrets(raw, url=url, options=options)
        if isinstance(err, BotstateError):
            if clean == raw:
                raise
            try:
                scrubbed: BotstateError = type(err)(clean)
            except Exception:
                scrubbed = ConfigError(clean)
            raise scrubbed from None  # the original still holds the secret
        shown = redact_url(url) if url else name
        error = ConfigError(
            f"adapter {name!r} could not open {shown!r}: {type(err).__name__}: {clean}"
        )
        if clean != raw:
            raise error from None  # the original still holds the secret
        raise error from err


@overload
def open_storage(
    spec: str | Mapping[str, Any] | None = None,
    *,
    type: builtins.type[T],
    namespace: str | None = None,
    ttl: TTL = None,
    codec: str | Codec[Any] | None = None,
    **options: Any,
) -> Storage[T]: ...


@overload
def open_storage(
    spec: str | Mapping[str, Any] | None = None,
    *,
    type: object = None,
    namespace: str | None = None,
    ttl: TTL = None,
    codec: str | Codec[Any] | None = None,
    **options: Any,
) -> Storage[Any]: ...


def open_storage(
    spec: str | Mapping[str, Any] | None = None,
    *,
    type: Any = None,
    namespace: str | None = None,
    ttl: TTL = None,
    codec: str | Codec[Any] | None = None,
    **options: Any,
) -> Storage[Any]:
    """Open a :class:`Storage` from a URL, an adapter name, a config mapping, or the env.

    >>> open_storage("memory://")
    >>> open_storage("sqlite:///bot.db", namespace="mybot", ttl=3600)
    >>> open_storage({"adapter": "redis", "url": "redis://localhost:6379/0"})
    >>> open_storage()          # reads BOTSTATE_STORAGE
    >>> open_storage("redis://localhost/0?codec=msgpack", type=Cart)   # a Storage[Cart]

    ``namespace``, ``ttl``, ``codec`` and ``max_retries`` configure the
    ``Storage`` (``codec`` may also be a URL option); ``type`` makes values
    decode into that type. Other keyword options (and other keys of a mapping)
    go to the adapter. Opening does no I/O: adapters connect on first use.
    """
    name, url, opts = _resolve(spec, options)
    settings = {key: opts.pop(key) for key in _STORAGE_OPTIONS if key in opts}
    explicit = {"namespace": namespace, "ttl": ttl, "codec": codec, "type": type}
    settings.update({key: value for key, value in explicit.items() if value is not None})
    adapter = _open(name, url, opts)
    return Storage(adapter, **settings)


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
