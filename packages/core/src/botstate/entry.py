"""One key of a storage, validated once, read and written as the bytes stored."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from .capabilities import Capability
from .contract import StorageAdapter, Version
from .errors import EncodeError, UnsupportedOperation

if TYPE_CHECKING:
    from .storage import TTL, Storage

__all__ = ["Entry", "require_capability"]

_ATOMIC = Capability.ATOMIC  # an enum member looked up on its class costs ~100 ns


class Entry:
    """One key of a :class:`Storage`, validated once, read and written as stored bytes.

    Made by ``storage.entry(key)`` (or ``Entry(storage, key)``). Values go to
    and come from the adapter unchanged (no codec); the namespace and TTLs are
    the storage's. For code that encodes by itself: a session compares the
    bytes it would write with the bytes it read, to write nothing when nothing
    changed.

    >>> entry = storage.entry("user:1")
    >>> await entry.get()
    b'{"name":"Ann"}'

    Each method returns the adapter's awaitable itself (no extra coroutine).
    """

    __slots__ = ("_adapter", "_full", "_storage", "key")

    def __init__(self, storage: Storage[Any], key: str) -> None:
        self._full = storage.full_key(key)
        self.key = key
        self._storage = storage
        self._adapter = storage.adapter

    def get(self) -> Awaitable[bytes | None]:
        """The stored bytes, or ``None``."""
        return self._adapter.get(self._full)

    def set(self, data: bytes, *, ttl: TTL = None) -> Awaitable[None]:
        """Store ``data`` (``ttl`` as in :meth:`Storage.set`)."""
        if type(data) is not bytes:
            raise _not_bytes(self.key, data)
        return self._adapter.set(self._full, data, expires_at=self._storage.expires_at(ttl))

    def delete(self) -> Awaitable[bool]:
        """As :meth:`Storage.delete`."""
        return self._adapter.delete(self._full)

    def get_versioned(self) -> Awaitable[tuple[bytes, Version] | None]:
        """The stored bytes and their version, or ``None``. Needs ATOMIC."""
        if _ATOMIC not in self._adapter.capabilities:
            require_capability(self._adapter, _ATOMIC, "get_versioned()")
        return self._adapter.get_versioned(self._full)

    def set_if(
        self, data: bytes, *, version: Version | None, ttl: TTL = None
    ) -> Awaitable[Version | None]:
        """As :meth:`Storage.set_if`, with bytes: the new version, or ``None``. Needs ATOMIC."""
        if _ATOMIC not in self._adapter.capabilities:
            require_capability(self._adapter, _ATOMIC, "set_if()")
        if type(data) is not bytes:
            raise _not_bytes(self.key, data)
        expires_at = self._storage.expires_at(ttl)
        return self._adapter.set_if(self._full, data, version=version, expires_at=expires_at)

    def delete_if(self, *, version: Version) -> Awaitable[bool]:
        """As :meth:`Storage.delete_if`. Needs ATOMIC."""
        if _ATOMIC not in self._adapter.capabilities:
            require_capability(self._adapter, _ATOMIC, "delete_if()")
        return self._adapter.delete_if(self._full, version=version)

    def __repr__(self) -> str:
        return f"Entry({self.key!r})"


def _not_bytes(key: str, data: object) -> EncodeError:
    return EncodeError(f"an entry's value must be bytes, not {type(data).__name__}", key)


def require_capability(adapter: StorageAdapter, capability: Capability, what: str) -> None:
    """Raise ``UnsupportedOperation`` naming ``what`` unless ``adapter`` has ``capability``."""
    if capability not in adapter.capabilities:
        raise UnsupportedOperation(
            f"{what} needs the {capability.name} capability, which "
            f"{type(adapter).__name__} does not have"
        )
