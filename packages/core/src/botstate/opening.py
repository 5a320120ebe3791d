"""Opening a storage: by URL, adapter name, config mapping, or the environment.

>>> open_storage("memory://")
>>> open_storage("sqlite:///bot.db", namespace="mybot", ttl=3600)
>>> open_storage({"adapter": "redis", "url": "redis://localhost:6379/0"})
>>> open_storage()          # reads BOTSTATE_STORAGE
>>> open_storage("redis://localhost/0?codec=msgpack", type=Cart)   # a Storage[Cart]
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Mapping
from typing import Any, TypeVar, overload

from .codecs import Codec
from .contract import StorageAdapter
from .errors import BotstateError, ConfigError
from .plugins import adapter_name_for_url, find_adapter
from .storage import TTL, Storage
from .urls import redact_secrets, redact_url, unquote

__all__ = ["STORAGE_ENV", "open_adapter", "open_storage"]

STORAGE_ENV = "BOTSTATE_STORAGE"
_STORAGE_OPTIONS = ("namespace", "ttl", "codec", "max_retries")  # for Storage, not the adapter
_URL_STORAGE_OPTIONS = ("codec",)  # Storage options a URL's query may carry

T = TypeVar("T")


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


def open_adapter(spec: str | Mapping[str, Any] | None = None, **options: Any) -> StorageAdapter:
    """Open the raw adapter for a URL, adapter name, or config mapping (no ``Storage`` layer)."""
    name, url, opts = _resolve(spec, options)
    for key in _STORAGE_OPTIONS:
        opts.pop(key, None)
    return _open(name, url, opts)


def _open(name: str, url: str | None, options: dict[str, Any]) -> StorageAdapter:
    info = find_adapter(name)
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
