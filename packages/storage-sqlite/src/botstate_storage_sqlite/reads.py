"""The read queries as plain functions, run on the read connection's thread.

The async methods of the adapter and their blocking twins (see
:mod:`.blocking`) hand the same functions to the worker, so both read alike.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from .schema import Statements
from .writer import CHUNK

__all__ = ["fetch_all", "fetch_many", "fetch_one"]


def fetch_all(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> list[Any]:
    """Every row ``sql`` selects with ``params``."""
    return conn.execute(sql, params).fetchall()


def fetch_one(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> Any:
    """The first row ``sql`` selects with ``params`` (a plain tuple), or ``None``."""
    return conn.execute(sql, params).fetchone()


def fetch_many(
    conn: sqlite3.Connection, sql: Statements, keys: Sequence[str], now: float
) -> dict[str, bytes]:
    """``{key: value}`` for the ``keys`` that hold a row live at ``now`` (one query per CHUNK)."""
    wanted = list(dict.fromkeys(keys))
    found: dict[str, bytes] = {}
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        found.update(conn.execute(sql.select_many(len(chunk)), (*chunk, now)).fetchall())
    return found
