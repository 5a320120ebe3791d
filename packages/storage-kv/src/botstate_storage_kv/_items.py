"""The item layout in the table, and DynamoDB's item-size rule.

One item per key::

    k    String  partition key: the storage key
    v    Binary  the value bytes
    exp  Number  absolute expiry, UNIX seconds with a fraction (absent = never);
                 the table's TTL attribute
    ver  Number  random 63-bit version, new on every write
"""

from __future__ import annotations

import math
import random
from typing import Any

from botstate import StorageError, ValueTooLarge

__all__ = [
    "EXP",
    "KEY",
    "MAX_ITEM_BYTES",
    "VALUE",
    "VER",
    "check_size",
    "encode_expiry",
    "is_live",
    "new_version",
    "put_item",
    "value_of",
    "version_of",
]

KEY, VALUE, EXP, VER = "k", "v", "exp", "ver"

MAX_ITEM_BYTES = 400 * 1024
"""DynamoDB's limit for one item: attribute names plus values."""

_NUMBER_BYTES = 21  # the most a DynamoDB number can take
_MARGIN = 100  # slack for endpoints that count a little differently
_FIXED = len(KEY) + len(VALUE) + len(VER) + _NUMBER_BYTES
_WITH_EXP = len(EXP) + _NUMBER_BYTES


def check_size(key: str, value: bytes, expires_at: float | None) -> None:
    """Raise :class:`ValueTooLarge` if the item would break DynamoDB's 400 KB item limit."""
    size = _FIXED + len(key.encode("utf-8")) + len(value)
    if expires_at is not None:
        size += _WITH_EXP
    if size > MAX_ITEM_BYTES - _MARGIN:
        raise ValueTooLarge(
            f"value of {len(value)} bytes for key {key[:60]!r} makes a DynamoDB item of about "
            f"{size} bytes; the limit is {MAX_ITEM_BYTES} bytes per item (key and value included)"
        )


def new_version() -> int:
    """A fresh random version; never 0, which stands for "written without a version"."""
    return random.getrandbits(63) or 1


def encode_expiry(expires_at: float | None) -> str | None:
    """The ``exp`` number text, or ``None`` for no expiry (``inf`` also means never)."""
    if expires_at is None or expires_at == math.inf:
        return None
    if math.isnan(expires_at) or expires_at == -math.inf:
        raise ValueError(f"expires_at must be a finite number, got {expires_at!r}")
    return f"{expires_at:.6f}"


def put_item(key: str, value: bytes, exp: str | None, version: int) -> dict[str, Any]:
    item: dict[str, Any] = {KEY: {"S": key}, VALUE: {"B": value}, VER: {"N": str(version)}}
    if exp is not None:
        item[EXP] = {"N": exp}
    return item


def is_live(item: dict[str, Any], now: float) -> bool:
    """Whether a stored item has no expiry or an expiry still in the future."""
    exp = item.get(EXP)
    return exp is None or float(exp["N"]) > now


def value_of(item: dict[str, Any]) -> bytes:
    try:
        return bytes(item[VALUE]["B"])
    except (KeyError, TypeError):
        raise StorageError(
            f"item {item.get(KEY, {}).get('S')!r} has no binary attribute {VALUE!r}: "
            f"was this table written by something other than botstate?"
        ) from None


def version_of(item: dict[str, Any]) -> int:
    ver = item.get(VER)
    return 0 if ver is None else int(ver["N"])
