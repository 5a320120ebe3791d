"""The stored form of PTB data: what round-trips, what is refused and how the error reads."""

from __future__ import annotations

import json
import math
import uuid
from collections import defaultdict
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from enum import IntEnum
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

import botstate
from botstate_ptb import UnstorableValue
from botstate_ptb.values import from_stored, join_top, split_top, to_stored


def round_trip(value: Any) -> Any:
    tree = to_stored(value, key="k", where="chat_data[1]")
    wire = json.loads(json.dumps(tree, allow_nan=False))  # what the JSON codec keeps
    return from_stored(wire, key="k")


@pytest.mark.parametrize(
    "value",
    [
        {1: "int key", -5: {2: 3}},
        {(1, 2): "tuple key", frozenset({1}): "frozenset key", None: 0, True: 1, 1.5: 2},
        {"when": datetime(2024, 1, 2, 3, 4, 5, 6)},
        {"when": datetime(2024, 1, 2, 3, 4, tzinfo=timezone(timedelta(hours=-3)))},
        {"day": date(2024, 2, 29), "at": time(23, 59, 1), "wait": timedelta(days=-1, seconds=5)},
        {"set": {1, "a", (2, 3)}, "frozen": frozenset({"x"}), "empty set": set()},
        {"tuple": (1, [2, (3,)]), "empty tuple": ()},
        {"bytes": b"\x00\xffabc", "money": Decimal("10.25"), "id": uuid.UUID(int=7)},
        {"floats": [0.1, -0.0, float("inf"), float("-inf")]},
        {"~t": [1]},  # a user's dict shaped like a tag
        {"~": {"~d": []}},
        {"~a": 1, "~b": 2},
        {"nested": [{"deep": [[[{1: {2: {3: "x"}}}]]]}]},
        {},
    ],
)
def test_round_trip_keeps_types_through_json(value: dict[Any, Any]) -> None:
    back = round_trip(value)
    assert back == value
    assert _types(back) == _types(value)


def _types(value: Any) -> Any:
    if isinstance(value, dict):
        return ("dict", sorted((repr(_types(k)), repr(_types(v))) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [_types(v) for v in value])
    if isinstance(value, (set, frozenset)):
        return (type(value).__name__, sorted(repr(_types(v)) for v in value))
    return type(value).__name__


def test_nan_round_trips() -> None:
    assert math.isnan(round_trip({"x": float("nan")})["x"])


def test_zoneinfo_datetime_keeps_its_zone() -> None:
    when = datetime(2024, 3, 31, 1, 30, tzinfo=ZoneInfo("Europe/Berlin"))
    back = round_trip({"when": when})["when"]
    assert back == when and back.tzinfo == ZoneInfo("Europe/Berlin")
    assert back.utcoffset() == when.utcoffset()


class Color(IntEnum):
    RED = 1


@pytest.mark.parametrize(
    ("value", "path", "kind"),
    [
        ({"a": object()}, "chat_data[1]['a']", "builtins.object"),
        ({"a": [1, {"b": (2, Color.RED)}]}, "chat_data[1]['a'][1]['b'][1]", "Color"),
        ({1: {2: defaultdict(list)}}, "chat_data[1][1][2]", "collections.defaultdict"),
        ({(1, object()): 1}, "chat_data[1] (the key (1, <object", "builtins.object"),
        ({"s": {2, Color.RED}}, "chat_data[1]['s'] (an item)", "Color"),
        ({"b": bytearray(b"x")}, "chat_data[1]['b']", "bytearray"),
    ],
)
def test_unstorable_values_name_their_place(value: Any, path: str, kind: str) -> None:
    with pytest.raises(UnstorableValue) as caught:
        to_stored(value, key="ptb:chat_data:1", where="chat_data[1]")
    error = caught.value
    assert isinstance(error, botstate.EncodeError) and isinstance(error, botstate.BotstateError)
    assert error.key == "ptb:chat_data:1"
    assert error.path.startswith(path), error.path
    assert (
        path in str(error) and kind in str(error) and "nothing of 'ptb:chat_data:1'" in str(error)
    )


def test_self_reference_is_refused_not_a_crash() -> None:
    loop: dict[str, Any] = {}
    loop["me"] = loop
    with pytest.raises(UnstorableValue, match="nested too deeply"):
        to_stored(loop, key="k", where="bot_data")


@pytest.mark.parametrize(
    "tree",
    [{"~zz": 1}, {"~f": "big"}, {"~b": "!!"}, {"~dt": "yesterday"}, {"~td": [1]}, {"~dec": "x"}],
)
def test_corrupt_stored_trees_raise_decode_error_naming_the_key(tree: Any) -> None:
    with pytest.raises(botstate.DecodeError, match="ptb:chat_data:1") as caught:
        from_stored(tree, key="ptb:chat_data:1")
    assert caught.value.key == "ptb:chat_data:1"


def test_split_and_join_top_are_inverse() -> None:
    for value in ({"a": 1}, {1: "x", "b": (1,)}, {"~t": 2}):
        tree = to_stored(value, key="k", where="w")
        assert join_top(split_top(tree)) == tree
    with pytest.raises(ValueError, match="expected stored dict"):
        split_top([1])
    with pytest.raises(ValueError, match="tag"):
        split_top({"~t": []})


keys = st.one_of(st.integers(), st.text(max_size=5), st.tuples(st.integers(), st.text(max_size=3)))
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.binary(max_size=8),
    st.datetimes(),
    st.dates(),
    st.timedeltas(),
)
trees = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.frozensets(st.integers(), max_size=4),
        st.sets(st.text(max_size=3), max_size=4),
        st.dictionaries(keys, inner, max_size=4),
    ),
    max_leaves=20,
)


@given(st.dictionaries(keys, trees, max_size=5))
def test_any_mix_round_trips(value: dict[Any, Any]) -> None:
    back = round_trip(value)
    assert back == value
    assert _types(back) == _types(value)
