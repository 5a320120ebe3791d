"""Codecs turn application values into bytes and back.

The default is ``json`` (stdlib). ``bytes`` passes bytes through and ``text``
stores UTF-8 strings; ``msgpack`` (MessagePack, needs ``botstate[msgspec]``)
keeps ``int`` keys, ``bytes`` and datetimes. More codecs arrive through the
``botstate_register_codecs`` plugin hook. Pickle is never used: unpickling runs
code named by the stored bytes. No codec here lets stored bytes choose a class.

A codec that can decode into a type the program names offers
``for_type(tp)``, returning a codec for that type; ``Storage(..., type=tp)``
calls it (see :mod:`botstate.typed`).
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import json
import sys
from collections.abc import Callable
from datetime import date, datetime, time
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from .errors import ConfigError, DecodeError, EncodeError

__all__ = [
    "BUILTIN_CODECS",
    "BytesCodec",
    "Codec",
    "JsonCodec",
    "TextCodec",
    "builtin_codec",
    "for_type",
    "to_builtins",
    "type_name",
]

T = TypeVar("T")


@runtime_checkable
class Codec(Protocol[T]):
    """Turns ``T`` into bytes and back.

    ``encode`` raises :class:`EncodeError` for a value it cannot represent and
    ``decode`` :class:`DecodeError` for bytes it cannot read (botstate's codecs
    do; a third-party codec may raise ``TypeError``/``ValueError`` instead).
    ``Storage`` reports either as ``EncodeError``/``DecodeError`` naming the key.
    """

    name: str

    def encode(self, value: T) -> bytes: ...

    def decode(self, data: bytes) -> T: ...


class JsonCodec(Generic[T]):
    """Compact UTF-8 JSON (stdlib), readable by any other program.

    Beside JSON's own types it encodes what bots commonly keep, as
    :func:`to_builtins` describes (datetimes as ISO 8601 text, dataclasses and
    pydantic models as objects, sets and tuples as arrays, …). Without a type
    they come back as those JSON values; open the storage with ``type=`` to get
    the objects back. ``default`` converts further types, as in ``json.dumps``.
    NaN and infinities are refused: they are not JSON and other readers choke on them.
    """

    name = "json"

    def __init__(self, *, default: Callable[[Any], Any] | None = None) -> None:
        self.default = default

        def convert(value: Any) -> Any:
            try:
                return to_builtins(value)
            except TypeError:
                if default is None:
                    raise
                return default(value)

        self._encoder = json.JSONEncoder(
            ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=convert
        )
        self._decoder = json.JSONDecoder()

    def encode(self, value: T) -> bytes:
        try:
            return self._encoder.encode(value).encode("utf-8")
        except (TypeError, ValueError, RecursionError) as err:
            raise EncodeError(str(err)) from err

    def decode(self, data: bytes) -> T:
        # What this codec writes (UTF-8, no BOM, no whitespace around) decodes
        # without json.loads' encoding detection, a quarter of a small value's cost.
        # Anything else (other encodings, BOM, whitespace, errors) goes the full way.
        if type(data) is bytes:
            try:
                text = data.decode("utf-8")
                value, end = self._decoder.raw_decode(text)
                if end == len(text):
                    return value  # type: ignore[no-any-return]
            except ValueError:
                pass
        try:
            return json.loads(data)  # type: ignore[no-any-return]
        except (ValueError, TypeError) as err:  # JSONDecodeError and UnicodeDecodeError too
            raise DecodeError(str(err)) from err

    def for_type(self, tp: Any) -> Codec[Any]:
        """A JSON codec decoding into ``tp`` (needs ``botstate[msgspec]`` or, for a
        pydantic model, ``botstate[pydantic]``)."""
        from .typed import json_codec_for

        return json_codec_for(tp, default=self.default)


def to_builtins(value: Any) -> Any:
    """Turn one non-JSON value into JSON types, the way botstate's JSON stores it.

    ``datetime``/``date``/``time`` → ISO 8601 text (UTC offset kept); ``UUID``
    and ``Decimal`` → text; ``bytes`` → base64 text; ``set``/``frozenset`` →
    array (sorted when the items allow it); ``Enum`` → its value; dataclass,
    msgspec ``Struct`` → object of its fields; pydantic model → its
    ``model_dump(mode="json")``. Anything else raises ``TypeError``. Nested
    values are converted by the encoder in turn. These are the forms msgspec and
    pydantic read back when a ``type`` is given.
    """
    cls = type(value)
    names = _record_fields.get(cls)
    if names is not None:  # a dataclass or Struct met before: the common case in sessions
        return {name: getattr(value, name) for name in names}
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    # uuid and decimal are not imported for this: a UUID or a Decimal can only
    # exist once its module has been (they cost a cold start a few ms).
    uuid, decimal = sys.modules.get("uuid"), sys.modules.get("decimal")
    if (uuid is not None and isinstance(value, uuid.UUID)) or (
        decimal is not None and isinstance(value, decimal.Decimal)
    ):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, (set, frozenset)):
        try:
            return sorted(value)
        except TypeError:
            return list(value)
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(cls):
        names = tuple(f.name for f in dataclasses.fields(cls))
    elif "msgspec" in sys.modules and isinstance(getattr(cls, "__struct_fields__", None), tuple):
        names = cls.__struct_fields__
    if names is not None:
        if len(_record_fields) >= 1024:  # classes made at run time must not pile up
            _record_fields.clear()
        _record_fields[cls] = names
        return {name: getattr(value, name) for name in names}
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and isinstance(value, pydantic.BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"Object of type {cls.__name__} is not JSON serializable")


_record_fields: dict[type, tuple[str, ...]] = {}
"""Field names of the dataclasses and msgspec Structs :func:`to_builtins` has met."""


class BytesCodec:
    """Stores ``bytes`` (or ``bytearray``/``memoryview``) unchanged."""

    name = "bytes"

    def encode(self, value: bytes) -> bytes:
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise EncodeError(f"bytes codec needs bytes, not {type(value).__name__}")
        return bytes(value)

    def decode(self, data: bytes) -> bytes:
        return data


class TextCodec:
    """Stores ``str`` as UTF-8."""

    name = "text"

    def encode(self, value: str) -> bytes:
        if not isinstance(value, str):
            raise EncodeError(f"text codec needs str, not {type(value).__name__}")
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError as err:  # a lone surrogate
            raise EncodeError(str(err)) from err

    def decode(self, data: bytes) -> str:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise DecodeError(str(err)) from err


BUILTIN_CODECS: dict[str, Codec[Any]] = {
    "json": JsonCodec(),
    "bytes": BytesCodec(),
    "text": TextCodec(),
}
"""The codecs that ship with the core, by name (registered by the built-in plugin)."""

OPTIONAL_CODECS = {"msgpack": "msgspec"}
"""Codecs that ship with the core but need an extra (name → extra), built on first use."""


def builtin_codec(name: str) -> Codec[Any] | None:
    """The core's codec called ``name``, or ``None`` if the core has none by that name.

    ``msgpack`` is built here on first use, so ``import botstate`` never imports
    msgspec; without it installed this raises :class:`ConfigError` naming the extra.
    """
    codec = BUILTIN_CODECS.get(name) or _optional.get(name)
    if codec is None and name == "msgpack":
        from .typed import MsgpackCodec

        codec = _optional.setdefault(name, MsgpackCodec())
    return codec


_optional: dict[str, Codec[Any]] = {}


def type_name(tp: Any) -> str:
    """``Cart`` for a class, the repr (``list[Cart]``) for other type forms."""
    return tp.__name__ if isinstance(tp, type) and not getattr(tp, "__args__", None) else repr(tp)


def for_type(codec: Codec[Any], tp: Any) -> Codec[Any]:
    """``codec`` turned into one decoding into ``tp`` (``ConfigError`` if it cannot)."""
    make = getattr(codec, "for_type", None)
    if not callable(make):
        raise ConfigError(
            f"codec {codec.name!r} cannot decode into a type; use codec 'json' or 'msgpack' "
            "with type="
        )
    return make(tp)  # type: ignore[no-any-return]
