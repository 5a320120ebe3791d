"""Multi-step operations as plans without I/O, run by the async adapter and its blocking twins.

A plan is a generator: each ``yield`` hands its driver one step, a list of
requests, and gets back their replies in order; the plan's ``return`` value is
the operation's result. A request is a command tuple (``("MGET", k1, k2)``) or
an :class:`Eval` (a Lua script: ``EVALSHA``, falling back to ``EVAL`` when the
server has not cached it). A driver sends the requests of a step together
where it can (one pipeline, concurrent tasks) and raises the first error as a
botstate error; the strategy itself is written once, here.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from typing import Any, NamedTuple, TypeVar

from .layout import GET_MANY, GET_MANY_CHUNK, Script, new_header

__all__ = ["MGET_FROM", "MSET_CHUNK", "Eval", "Plan", "Request", "get_many", "mset_commands"]

MSET_CHUNK = 1000
"""Keys per ``MSET`` in ``set_many`` (all chunks leave in one round trip)."""
MGET_FROM = 32
"""``get_many`` of fewer keys runs the Lua script (one round trip whatever is missing);
from this many on, ``MGET`` (the script's cost grows with the keys, while ``MGET`` adds a
fixed second round trip only when keys are missing). Measured: equal at about 30 keys."""

_T = TypeVar("_T")


class Eval(NamedTuple):
    """Run ``script`` over ``keys`` (``EVALSHA``, then ``EVAL`` if the server lacks it)."""

    script: Script
    keys: Sequence[str]


Request = tuple[Any, ...] | Eval
Plan = Generator[list[Request], list[Any], _T]


def get_many(full: list[str]) -> Plan[list[bytes | None]]:
    """Values of the Redis keys ``full`` in order, nil for missing, on a standalone server.

    Fewer than ``MGET_FROM`` keys: the ``GET_MANY`` script alone (``MGET``, then
    ``TYPE`` of the keys it found missing), one round trip. More: one ``MGET``
    per 1000 keys, sent together. ``MGET`` answers nil both for a missing key
    and for one holding another type, so when some come back nil, one
    ``EXISTS`` counts those keys: 0 means all missing; otherwise (another type,
    or a key written meanwhile) the script re-reads the keys and checks their
    types atomically, raising for another type.
    """
    if len(full) < MGET_FROM:
        (raws,) = yield [Eval(GET_MANY, full)]
        return list(raws)
    chunks = [full[i : i + GET_MANY_CHUNK] for i in range(0, len(full), GET_MANY_CHUNK)]
    parts = yield [("MGET", *chunk) for chunk in chunks]
    found: list[bytes | None] = [raw for part in parts for raw in part]
    missing = [name for name, raw in zip(full, found, strict=True) if raw is None]
    if missing:
        (count,) = yield [("EXISTS", *missing)]
        if count:
            checked = yield [Eval(GET_MANY, chunk) for chunk in chunks]
            found = [raw for part in checked for raw in part]
    return found


def mset_commands(prefix: str, items: Mapping[str, bytes]) -> list[tuple[Any, ...]]:
    """``set_many`` without expiry: one ``MSET`` per ``MSET_CHUNK`` entries, a fresh header each."""
    args: list[Any] = []
    for key, value in items.items():
        args.append(prefix + key)
        args.append(new_header() + value)
    step = 2 * MSET_CHUNK
    return [("MSET", *args[i : i + step]) for i in range(0, len(args), step)]
