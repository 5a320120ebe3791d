"""Key validation and namespacing, done once for every adapter."""

from __future__ import annotations

from .errors import ConfigError, InvalidKey

__all__ = ["MAX_KEY_BYTES", "NAMESPACE_SEPARATOR", "validate_key", "validate_namespace"]

MAX_KEY_BYTES = 1024
NAMESPACE_SEPARATOR = ":"


def validate_key(key: object) -> str:
    """Return ``key`` if it is a valid storage key, else raise :class:`InvalidKey`.

    A key is a non-empty ``str`` of at most 1024 UTF-8 bytes with no NUL
    character and no lone surrogate.
    """
    if type(key) is str and key.isascii() and 0 < len(key) <= MAX_KEY_BYTES and "\x00" not in key:
        return key  # the common case, without encoding: ASCII is one byte per character
    if not isinstance(key, str):
        raise InvalidKey(f"key must be str, not {type(key).__name__}: {key!r}", key)
    if not key:
        raise InvalidKey("key must not be empty", key)
    if "\x00" in key:
        raise InvalidKey(f"key must not contain NUL: {key!r}", key)
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidKey(f"key contains a lone surrogate: {key!r}", key) from None
    if size > MAX_KEY_BYTES:
        raise InvalidKey(
            f"key is {size} UTF-8 bytes, the limit is {MAX_KEY_BYTES}: {key[:40]!r}...", key
        )
    return key


def validate_namespace(namespace: object) -> str | None:
    """Return a valid namespace (or ``None``); it may not contain ``':'``."""
    if namespace is None:
        return None
    try:
        validate_key(namespace)
    except InvalidKey as err:
        raise ConfigError(f"invalid namespace: {err}") from None
    assert isinstance(namespace, str)
    if NAMESPACE_SEPARATOR in namespace:
        raise ConfigError(
            f"namespace {namespace!r} must not contain {NAMESPACE_SEPARATOR!r}: "
            "it separates the namespace from the key"
        )
    return namespace
