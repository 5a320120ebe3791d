"""What PTB keeps in ``user_data``/``chat_data``/``bot_data``, as a tree any codec stores.

python-telegram-bot users put ``int`` keys, tuples, sets, datetimes and bytes in
their data (PicklePersistence stored anything). JSON has none of these, and
MessagePack without a schema turns tuples and sets into arrays, so this module
turns such values into a *stored tree* of JSON types with small tags and back:

====================  ==========================================
Python                stored
====================  ==========================================
``None``, ``bool``,   as is
``int``, ``str``,
finite ``float``
NaN, ±infinity        ``{"~f": "nan" | "inf" | "-inf"}``
``list``              array
``dict`` (str keys)   object
other ``dict``        ``{"~d": [[key, value], ...]}``
``tuple``             ``{"~t": [...]}``
``set``/``frozenset`` ``{"~s": [...]}`` / ``{"~fs": [...]}``
``bytes``             ``{"~b": "<base64>"}``
``datetime``          ``{"~dt": "<ISO 8601>"}`` or ``{"~dt": ["<ISO>", "<zoneinfo key>"]}``
``date``/``time``     ``{"~date": "<ISO>"}`` / ``{"~time": "<ISO>"}``
``timedelta``         ``{"~td": [days, seconds, microseconds]}``
``Decimal``/``UUID``  ``{"~dec": "<text>"}`` / ``{"~uuid": "<text>"}``
====================  ==========================================

A tag is an object with exactly one key starting with ``~``; a user's dict of
that shape is stored in the ``~d`` form, so nothing is ever misread as a tag.
Types are matched exactly: a subclass (an ``IntEnum``, a ``defaultdict``, a
``telegram.Message``) is refused with :class:`UnstorableValue`, whose message
names where it sits (``chat_data[42]['when']``) rather than silently losing its
type. The stored bytes never name a class: nothing is imported or run on load.
"""

from __future__ import annotations

import base64
import math
import uuid
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from botstate.errors import DecodeError, EncodeError

__all__ = ["UnstorableValue", "from_stored", "join_top", "split_top", "to_stored"]


class UnstorableValue(EncodeError):
    """A value in PTB data that botstate-ptb cannot store; ``path`` says where it is.

    ``key`` is the storage key the value belongs to (``ptb:chat_data:42``).
    Nothing of that key is written.
    """

    def __init__(self, message: str, key: str | None = None, path: str = "") -> None:
        super().__init__(message, key)
        self.path = path


class _Refused(Exception):
    """Raised inside the walk; each container on the way out adds its step to ``steps``."""

    def __init__(self, value: object) -> None:
        self.value = value
        self.steps: list[str] = []  # innermost first


def to_stored(value: Any, *, key: str, where: str) -> Any:
    """Turn ``value`` into a stored tree, or raise :class:`UnstorableValue`.

    ``where`` is how the user names the value (``"chat_data[42]"``); it starts
    the path in the error message. ``key`` is the storage key.
    """
    try:
        return _encode(value)
    except _Refused as refused:
        path = where + "".join(reversed(refused.steps))
        kind = type(refused.value)
        raise UnstorableValue(
            f"{path} holds a {kind.__module__}.{kind.__qualname__}, which botstate-ptb cannot "
            "store (it keeps None, bool, int, float, str, bytes, list, tuple, set, frozenset, "
            "dict, datetime, date, time, timedelta, Decimal and UUID, each of exactly that "
            f"type); nothing of {key!r} was written",
            key,
            path,
        ) from None
    except RecursionError:
        raise UnstorableValue(
            f"{where} is nested too deeply (or refers to itself); nothing of {key!r} was written",
            key,
            where,
        ) from None


def from_stored(tree: Any, *, key: str) -> Any:
    """Turn a stored tree back into Python values; :class:`DecodeError` names ``key``."""
    try:
        return _decode(tree)
    except (ValueError, TypeError, LookupError, AttributeError, ArithmeticError) as err:
        raise DecodeError(f"stored PTB data under {key!r} is not valid: {err}", key) from err


_PLAIN = frozenset({str, int, bool, type(None)})


def _encode(value: Any) -> Any:
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is dict:
        return _encode_dict(value)
    if kind is list:
        return _items(value)
    if kind is float:
        if math.isfinite(value):
            return value
        return {"~f": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
    encoder = _ENCODERS.get(kind)
    if encoder is None:
        raise _Refused(value)
    return encoder(value)


def _encode_dict(value: dict[Any, Any]) -> Any:
    out: dict[str, Any] = {}
    items = iter(value.items())
    k: Any = None
    in_key = False  # the step's text is built only when a value is refused
    try:
        for k, v in items:
            if type(k) is not str:
                break
            out[k] = _encode(v)
        else:
            if len(out) == 1 and k.startswith("~"):
                return {"~d": [[k, out[k]]]}  # would read as a tag
            return out
        # A key that is not a str: the "~d" form, keeping what is encoded so far.
        pairs = [[name, stored] for name, stored in out.items()]
        in_key = True
        stored_key = _encode(k)
        in_key = False
        pairs.append([stored_key, _encode(v)])
        for k, v in items:
            in_key = True
            stored_key = _encode(k)
            in_key = False
            pairs.append([stored_key, _encode(v)])
    except _Refused as refused:
        refused.steps.append(f" (the key {k!r})" if in_key else f"[{k!r}]")
        raise
    return {"~d": pairs}


def _items(value: Any) -> list[Any]:
    i = 0
    out = []
    try:
        for i, item in enumerate(value):  # noqa: B007 - i names the failing item
            out.append(_encode(item))
    except _Refused as refused:
        refused.steps.append(f"[{i}]" if type(value) in (list, tuple) else " (an item)")
        raise
    return out


def _encode_datetime(value: datetime) -> Any:
    if isinstance(value.tzinfo, ZoneInfo):
        return {"~dt": [value.isoformat(), value.tzinfo.key]}
    return {"~dt": value.isoformat()}


_ENCODERS: dict[type, Callable[[Any], Any]] = {
    tuple: lambda v: {"~t": _items(v)},
    set: lambda v: {"~s": _items(v)},
    frozenset: lambda v: {"~fs": _items(v)},
    bytes: lambda v: {"~b": base64.b64encode(v).decode("ascii")},
    datetime: _encode_datetime,
    date: lambda v: {"~date": v.isoformat()},
    time: lambda v: {"~time": v.isoformat()},
    timedelta: lambda v: {"~td": [v.days, v.seconds, v.microseconds]},
    Decimal: lambda v: {"~dec": str(v)},
    uuid.UUID: lambda v: {"~uuid": str(v)},
}


def _decode(tree: Any) -> Any:
    kind = type(tree)
    if kind is list:
        return [_decode(item) for item in tree]
    if kind is not dict:
        return tree
    if len(tree) == 1:
        ((tag, body),) = tree.items()
        if isinstance(tag, str) and tag.startswith("~"):
            decoder = _DECODERS.get(tag)
            if decoder is None:
                raise ValueError(f"unknown tag {tag!r}")
            return decoder(body)
    return {k: _decode(v) for k, v in tree.items()}


def _decode_datetime(body: Any) -> datetime:
    if isinstance(body, list):
        text, zone = body
        return datetime.fromisoformat(text).astimezone(ZoneInfo(zone))
    return datetime.fromisoformat(body)


def _decode_float(body: str) -> float:
    if body not in ("nan", "inf", "-inf"):
        raise ValueError(f"bad float {body!r}")
    return float(body)


_DECODERS: dict[str, Callable[[Any], Any]] = {
    "~d": lambda body: {_decode(k): _decode(v) for k, v in body},
    "~t": lambda body: tuple(_decode(item) for item in body),
    "~s": lambda body: {_decode(item) for item in body},
    "~fs": lambda body: frozenset(_decode(item) for item in body),
    "~b": lambda body: base64.b64decode(body, validate=True),
    "~dt": _decode_datetime,
    "~date": date.fromisoformat,
    "~time": time.fromisoformat,
    "~td": lambda body: timedelta(days=body[0], seconds=body[1], microseconds=body[2]),
    "~dec": Decimal,
    "~uuid": uuid.UUID,
    "~f": _decode_float,
}


def split_top(tree: Any) -> dict[Any, Any]:
    """The stored tree of a dict as ``{python key: stored tree of its value}``.

    Used to compare and merge PTB data one top-level key at a time.
    """
    if type(tree) is not dict:
        raise ValueError(f"expected stored dict data, got {type(tree).__name__}")
    if len(tree) == 1 and "~d" in tree:
        return {_decode(k): v for k, v in tree["~d"]}
    if len(tree) == 1 and next(iter(tree)).startswith("~"):
        raise ValueError(f"expected stored dict data, got the tag {next(iter(tree))!r}")
    return dict(tree)


def join_top(top: dict[Any, Any]) -> Any:
    """The inverse of :func:`split_top`: the stored tree of a dict from its parts."""
    if all(type(k) is str for k in top) and not (len(top) == 1 and next(iter(top)).startswith("~")):
        return dict(top)
    return {"~d": [[_encode(k), v] for k, v in top.items()]}
