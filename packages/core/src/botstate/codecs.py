"""Codecs turn application values into bytes and back.

The default is ``json`` (stdlib). ``bytes`` passes bytes through and ``text``
stores UTF-8 strings. More codecs arrive through the ``botstate_register_codecs``
plugin hook. Pickle is never the default: unpickling runs code from the store.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

__all__ = ["BUILTIN_CODECS", "BytesCodec", "Codec", "JsonCodec", "TextCodec"]

T = TypeVar("T")


@runtime_checkable
class Codec(Protocol[T]):
    """Turns ``T`` into bytes and back.

    ``encode`` raises ``TypeError`` or ``ValueError`` for a value it cannot
    represent; ``decode`` raises ``ValueError`` for bytes it cannot read.
    ``Storage`` turns those into ``EncodeError``/``DecodeError`` naming the key.
    """

    name: str

    def encode(self, value: T) -> bytes: ...

    def decode(self, data: bytes) -> T: ...


class JsonCodec(Generic[T]):
    """Compact UTF-8 JSON. ``default`` may convert extra types, as in ``json.dumps``.

    NaN and infinities are refused: they are not JSON and other readers choke on them.
    """

    name = "json"

    def __init__(self, *, default: Callable[[Any], Any] | None = None) -> None:
        self._encoder = json.JSONEncoder(
            ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=default
        )

    def encode(self, value: T) -> bytes:
        return self._encoder.encode(value).encode("utf-8")

    def decode(self, data: bytes) -> T:
        try:
            return json.loads(data)  # type: ignore[no-any-return]
        except UnicodeDecodeError as err:
            raise ValueError(str(err)) from err


class BytesCodec:
    """Stores ``bytes`` (or ``bytearray``/``memoryview``) unchanged."""

    name = "bytes"

    def encode(self, value: bytes) -> bytes:
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise TypeError(f"bytes codec needs bytes, not {type(value).__name__}")
        return bytes(value)

    def decode(self, data: bytes) -> bytes:
        return data


class TextCodec:
    """Stores ``str`` as UTF-8."""

    name = "text"

    def encode(self, value: str) -> bytes:
        if not isinstance(value, str):
            raise TypeError(f"text codec needs str, not {type(value).__name__}")
        return value.encode("utf-8")

    def decode(self, data: bytes) -> str:
        return data.decode("utf-8")


BUILTIN_CODECS: dict[str, Codec[Any]] = {
    "json": JsonCodec(),
    "bytes": BytesCodec(),
    "text": TextCodec(),
}
"""The codecs that ship with the core, by name (registered by the built-in plugin)."""
