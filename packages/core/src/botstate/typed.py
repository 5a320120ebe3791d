"""Typed values: stored bytes decoded into the type the program names.

``Storage(..., type=Cart)`` and ``Sessions(..., type=Cart)`` decode with
msgspec (``botstate[msgspec]``): JSON and MessagePack decoders in C that
build dataclasses, TypedDicts, msgspec Structs, enums, datetimes, UUIDs,
Decimals, bytes, sets, tuples and int-keyed dicts, nested in any combination,
and report the path of a field that does not fit. Pydantic
models are validated by pydantic itself (``botstate[pydantic]``); a JSON
storage typed as one pydantic model needs only pydantic.

The type always comes from the program, never from the data: JSON has no way
to name a class, and MessagePack extension data (other than the standard
timestamp) is refused with an error.

Nothing imports this module until a typed or MessagePack codec is asked for,
and it imports msgspec and pydantic only when they are used.
"""

from __future__ import annotations

import dataclasses
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from .codecs import Codec, type_name
from .errors import ConfigError, DecodeError, EncodeError

__all__ = ["MsgpackCodec", "MsgspecJsonCodec", "converter", "json_codec_for"]

T = TypeVar("T")

MSGSPEC_HINT = 'pip install "botstate[msgspec]"'
PYDANTIC_HINT = 'pip install "botstate[pydantic]"'


def _require_msgspec(what: str) -> None:
    try:
        import msgspec  # noqa: F401
    except ImportError:
        raise ConfigError(f"{what} needs msgspec: {MSGSPEC_HINT}") from None


def is_pydantic_model(tp: Any) -> bool:
    """Whether ``tp`` is a pydantic (v2) model class; never imports pydantic."""
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and isinstance(tp, type) and issubclass(tp, pydantic.BaseModel)


def _record_class(tp: Any) -> type | None:
    """The class a value must be an instance of, for record types (else ``None``).

    Checked on encode so a plain dict written by mistake to a storage typed as
    a dataclass fails at once (``EncodeError``) rather than on a later read.
    """
    if not isinstance(tp, type) or getattr(tp, "__args__", None):
        return None
    if dataclasses.is_dataclass(tp) or is_pydantic_model(tp):
        return tp
    msgspec = sys.modules.get("msgspec")
    if msgspec is not None and issubclass(tp, msgspec.Struct):
        return tp
    return None


def _pydantic_message(err: Any) -> str:
    """The first error of a pydantic ``ValidationError``, with its field path."""
    first = err.errors()[0]
    loc = ".".join(str(part) for part in first["loc"])
    more = err.error_count() - 1
    text = f"field `{loc}`: {first['msg']}" if loc else str(first["msg"])
    return text + (f" (and {more} more error{'s' if more > 1 else ''})" if more else "")


def _encode_hook(mode: str, default: Callable[[Any], Any] | None) -> Callable[[Any], Any]:
    """msgspec's ``enc_hook``: pydantic models by their own ``model_dump``, then ``default``."""

    def hook(value: Any) -> Any:
        pydantic = sys.modules.get("pydantic")
        if pydantic is not None and isinstance(value, pydantic.BaseModel):
            return value.model_dump(mode=mode)
        if default is not None:
            return default(value)
        raise TypeError(f"cannot encode objects of type {type(value).__name__}")

    return hook


def _decode_hook(tp: Any, obj: Any) -> Any:
    """msgspec's ``dec_hook``: called for a type msgspec does not know, with plain data.

    ``tp`` is from the program's annotation; only pydantic models are built
    here, by pydantic's own validation.
    """
    if is_pydantic_model(tp):
        import pydantic

        try:
            return tp.model_validate(obj)
        except pydantic.ValidationError as err:
            raise ValueError(_pydantic_message(err)) from None
    raise TypeError(f"botstate cannot decode into {type_name(tp)}")


def _refuse_extension(code: int, data: memoryview) -> Any:
    raise ValueError(
        f"MessagePack extension type {code} is refused: stored data never chooses what is built"
    )


class _MsgspecCodec(ABC, Generic[T]):
    """Shared by the msgspec JSON and MessagePack codecs; ``type=Any`` decodes untyped."""

    name: str
    _mode: str  # pydantic's model_dump mode for models met while encoding

    def __init__(self, type: Any = Any, *, default: Callable[[Any], Any] | None = None) -> None:
        shown = "" if type is Any else f" with type={type_name(type)}"
        _require_msgspec(f"codec {self.name!r}{shown}")
        self.type: Any = type
        self.default = default
        self._typed = type is not Any
        self._record = _record_class(type)
        import msgspec

        self._invalid = msgspec.DecodeError  # ValidationError is one too
        try:
            self._encoder, self._decoder = self._build(type, _encode_hook(self._mode, default))
        except TypeError as err:  # msgspec: "Type ... is not supported"
            raise ConfigError(f"type={type_name(type)} cannot be decoded: {err}") from None

    @abstractmethod
    def _build(self, tp: Any, enc_hook: Callable[[Any], Any]) -> tuple[Any, Any]:
        """The msgspec encoder and decoder (for ``tp``) of this wire format."""

    def encode(self, value: T) -> bytes:
        if self._record is not None and not isinstance(value, self._record):
            raise EncodeError(f"expected {self._record.__name__}, got {type(value).__name__}")
        try:
            encoded: bytes = self._encoder.encode(value)
            return encoded
        except (TypeError, ValueError, OverflowError, RecursionError) as err:
            raise EncodeError(str(err)) from err

    def decode(self, data: bytes) -> T:
        try:
            return self._decoder.decode(data)  # type: ignore[no-any-return]
        except self._invalid as err:
            raise DecodeError(f"not a valid {type_name(self.type)}: {err}") from err

    def for_type(self, tp: Any) -> _MsgspecCodec[Any]:
        """This wire format, decoding into ``tp``."""
        return self if tp is self.type else type(self)(tp, default=self.default)

    def __repr__(self) -> str:
        shown = "" if not self._typed else type_name(self.type)
        return f"{type(self).__name__}({shown})"


class MsgspecJsonCodec(_MsgspecCodec[T]):
    """JSON through msgspec: the same wire format as :class:`~botstate.codecs.JsonCodec`.

    With ``type`` it decodes into that type (what ``open_storage(..., type=)``
    uses); without, it is a faster drop-in for the stdlib JSON codec::

        storage = open_storage("sqlite:///bot.db", codec=MsgspecJsonCodec())

    Needs ``botstate[msgspec]``. Unlike the stdlib codec, NaN and infinities
    are written as ``null``.
    """

    name = "json"
    _mode = "json"

    def _build(self, tp: Any, enc_hook: Callable[[Any], Any]) -> tuple[Any, Any]:
        import msgspec

        decoder = msgspec.json.Decoder(tp, dec_hook=_decode_hook)
        return msgspec.json.Encoder(enc_hook=enc_hook), decoder


class MsgpackCodec(_MsgspecCodec[T]):
    """MessagePack through msgspec (``codec="msgpack"``; needs ``botstate[msgspec]``).

    Compact binary, for state no other program reads. Even without a type it
    keeps ``int`` dict keys, ``bytes`` and aware datetimes (as the MessagePack
    timestamp: the instant is kept and comes back in UTC; naive datetimes,
    dates and times are stored as ISO text). With ``type`` it decodes into that
    type like the JSON codec. Extension data other than the timestamp is refused.
    """

    name = "msgpack"
    _mode = "python"

    def _build(self, tp: Any, enc_hook: Callable[[Any], Any]) -> tuple[Any, Any]:
        import msgspec

        decoder = msgspec.msgpack.Decoder(tp, dec_hook=_decode_hook, ext_hook=_refuse_extension)
        return msgspec.msgpack.Encoder(enc_hook=enc_hook), decoder


class PydanticJsonCodec(Generic[T]):
    """JSON for a storage typed as one pydantic model: pydantic's own JSON in and out.

    Needs only ``botstate[pydantic]``.
    """

    name = "json"

    def __init__(self, model: type[T]) -> None:
        self.type = model

    def encode(self, value: T) -> bytes:
        if not isinstance(value, self.type):
            raise EncodeError(f"expected {self.type.__name__}, got {type(value).__name__}")
        try:
            return value.model_dump_json().encode("utf-8")  # type: ignore[attr-defined,no-any-return]
        except ValueError as err:  # pydantic's serialization errors are ValueErrors
            raise EncodeError(str(err)) from err

    def decode(self, data: bytes) -> T:
        import pydantic

        try:
            return self.type.model_validate_json(data)  # type: ignore[attr-defined,no-any-return]
        except pydantic.ValidationError as err:
            message = _pydantic_message(err)
            raise DecodeError(f"not a valid {self.type.__name__}: {message}") from err

    def for_type(self, tp: Any) -> Codec[Any]:
        return self if tp is self.type else json_codec_for(tp)

    def __repr__(self) -> str:
        return f"PydanticJsonCodec({self.type.__name__})"


def json_codec_for(tp: Any, *, default: Callable[[Any], Any] | None = None) -> Codec[Any]:
    """The JSON codec decoding into ``tp``: pydantic's own for a pydantic model, else msgspec."""
    if is_pydantic_model(tp):
        return PydanticJsonCodec(tp)
    return MsgspecJsonCodec(tp, default=default)


def converter(tp: Any) -> Callable[[Any], Any]:
    """A function turning plain decoded data (dicts, lists, text…) into ``tp``.

    Used by ``Sessions(type=...)`` after migrations have run on the plain data.
    Accepts what the JSON and MessagePack codecs produce: ISO text or datetime
    objects, base64 text or bytes, ``"7"`` or ``7`` as an ``int`` key. A value
    that does not fit raises ``ValueError`` naming the field.
    """
    if is_pydantic_model(tp):
        import pydantic

        def validate(data: Any) -> Any:
            try:
                return tp.model_validate(data)
            except pydantic.ValidationError as err:
                raise ValueError(f"not a valid {tp.__name__}: {_pydantic_message(err)}") from err

        return validate
    _require_msgspec(f"type={type_name(tp)}")
    import msgspec

    try:
        msgspec.json.Decoder(tp)  # checks the type once, up front
    except TypeError as err:
        raise ConfigError(f"type={type_name(tp)} cannot be decoded: {err}") from None

    def convert(data: Any) -> Any:
        try:
            return msgspec.convert(data, tp, str_keys=True, dec_hook=_decode_hook)
        except msgspec.ValidationError as err:
            raise ValueError(f"not a valid {type_name(tp)}: {err}") from err

    return convert
