"""Validated settings: durations in seconds, and typed adapter options.

:func:`seconds` is the one validator of durations in botstate (TTLs, timeouts,
intervals, lock leases); :func:`coerce_options` checks an adapter's options
(from URL query strings or keyword arguments) against a spec of option kinds:
``int``, ``float``, ``bool``, ``str``, :class:`Seconds`, :class:`SecondsOrZero`
or a :class:`Choice`.

>>> coerce_options({"timeout": "2.5", "mode": "wal"},
...                {"timeout": Seconds, "mode": Choice("wal", "delete")}, adapter="x")
{'timeout': 2.5, 'mode': 'wal'}
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, TypeAlias

from .errors import BotstateError, ConfigError, InvalidArgument
from .urls import REDACTED, is_secret_option

__all__ = [
    "MAX_SECONDS",
    "Choice",
    "OptionKind",
    "Seconds",
    "SecondsOrZero",
    "coerce_options",
    "seconds",
]


MAX_SECONDS = 100 * 365.25 * 86400
"""The longest duration botstate accepts (TTLs included): 100 years, in seconds."""


def seconds(
    value: object,
    name: str = "ttl",
    *,
    zero: bool = False,
    forever: bool = False,
    error: type[BotstateError] = InvalidArgument,
) -> float:
    """Return ``value`` (int, float or ``timedelta``) as float seconds, or raise ``error``.

    The duration must be positive (``>= 0`` with ``zero=True``) and at most
    :data:`MAX_SECONDS` (100 years: every backend can store an expiry that far
    ahead); ``math.inf`` is allowed with ``forever=True`` ("never expires").
    Booleans, NaN and other types are refused. ``name`` names the setting.
    """
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise error(
            f"{name} must be a number of seconds (int, float or timedelta), "
            f"not {type(value).__name__}"
        )
    try:
        number = float(value)
    except OverflowError:  # an int beyond float range is not FOREVER: refuse it below
        number = MAX_SECONDS * 2 if value > 0 else -1.0
    low_ok = number >= 0 if zero else number > 0
    if not low_ok or math.isnan(number):
        bound = ">= 0" if zero else "positive"
        raise error(f"{name} must be {bound} seconds, got {value!r}")
    if number == math.inf and forever:
        return number
    if number > MAX_SECONDS:
        instead = " (use FOREVER for no expiry)" if forever else ""
        raise error(
            f"{name} must be at most {MAX_SECONDS:.0f} seconds (100 years), got {value!r}{instead}"
        )
    return number


class Seconds(float):
    """Option kind for :func:`coerce_options`: a positive, finite number of seconds."""


class SecondsOrZero(float):
    """Option kind: a finite number of seconds >= 0 (``0`` usually means "off")."""


class Choice:
    """Option kind: one of a fixed set of strings, matched case-insensitively.

    The value comes back spelled as declared:

    >>> Choice("WAL", "DELETE").coerce("wal")
    'WAL'
    """

    def __init__(self, *choices: str) -> None:
        if not choices:
            raise InvalidArgument("Choice needs at least one allowed value")
        self.choices = choices
        self._by_folded = {choice.casefold(): choice for choice in choices}

    def coerce(self, value: object) -> str:
        """The declared spelling matching ``value``; ``ValueError`` if there is none."""
        if isinstance(value, str):
            found = self._by_folded.get(value.strip().casefold())
            if found is not None:
                return found
        raise ValueError(value)

    def describe(self) -> str:
        return "one of " + ", ".join(self.choices)

    def __repr__(self) -> str:
        return f"Choice({', '.join(map(repr, self.choices))})"


OptionKind: TypeAlias = "type | Choice"
"""What :func:`coerce_options` accepts as the kind of an option."""

_KIND_NAMES: dict[object, str] = {
    Seconds: "a positive, finite number of seconds",
    SecondsOrZero: "a finite number of seconds >= 0",
}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def coerce_options(
    given: Mapping[str, Any], spec: Mapping[str, OptionKind], *, adapter: str
) -> dict[str, Any]:
    """Check option names against ``spec`` and convert query strings to their kinds.

    An unknown name or a bad value raises :class:`ConfigError` listing what is
    allowed; a secret option's value is never shown. ``None`` values pass through.
    """
    out: dict[str, Any] = {}
    for name, value in given.items():
        if name not in spec:
            allowed = ", ".join(sorted(spec)) or "none"
            raise ConfigError(
                f"unknown option {name!r} for adapter {adapter!r} (allowed: {allowed})"
            )
        kind = spec[name]
        try:
            out[name] = _coerce(value, kind)
        except (TypeError, ValueError):
            shown = REDACTED if is_secret_option(name) else repr(value)
            wanted = (
                kind.describe()
                if isinstance(kind, Choice)
                else _KIND_NAMES.get(kind, getattr(kind, "__name__", str(kind)))
            )
            raise ConfigError(
                f"option {name!r} of adapter {adapter!r} must be {wanted}, got {shown}"
            ) from None
    return out


def _coerce(value: Any, kind: OptionKind) -> Any:
    if value is None:
        return None
    if isinstance(kind, Choice):
        return kind.coerce(value)
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError(value)
    if kind is int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError(value)
        return int(value)
    if kind is float:
        if isinstance(value, bool):
            raise ValueError(value)
        return float(value)
    if kind is Seconds or kind is SecondsOrZero:
        number = float(value) if isinstance(value, str) else value
        return seconds(number, zero=kind is SecondsOrZero, error=InvalidArgument)
    if kind is str:
        if not isinstance(value, str):
            raise TypeError(value)
        return value
    return value
