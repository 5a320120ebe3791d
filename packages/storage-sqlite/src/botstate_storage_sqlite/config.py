"""SQLite URLs and options: ``sqlite:///relative.db``, ``sqlite:////abs.db``, ``sqlite://:memory:``.

``botstate.parse_url`` reads ``:memory:`` as a host, so the URL is split here.
Every option is checked before anything touches the disk; the table name is
the only identifier that reaches SQL text, and only after it matched
``[A-Za-z_][A-Za-z0-9_]*``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote

from botstate import ConfigError, InvalidURL, coerce_options

__all__ = [
    "DEFAULT_BUSY_TIMEOUT",
    "DEFAULT_PURGE_INTERVAL",
    "DEFAULT_TABLE",
    "JOURNAL_MODES",
    "MEMORY",
    "SYNCHRONOUS_LEVELS",
    "SqliteConfig",
    "parse_sqlite_url",
]

MEMORY = ":memory:"
DEFAULT_TABLE = "botstate"
DEFAULT_BUSY_TIMEOUT = 5.0
DEFAULT_PURGE_INTERVAL = 5.0
JOURNAL_MODES = ("WAL", "DELETE", "TRUNCATE", "PERSIST", "MEMORY", "OFF")
SYNCHRONOUS_LEVELS = ("OFF", "NORMAL", "FULL", "EXTRA")
META_TABLE = "botstate_meta"

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPTIONS: dict[str, type] = {
    "path": str,
    "table": str,
    "journal_mode": str,
    "synchronous": str,
    "busy_timeout": float,
    "purge_interval": float,
}
_FORMS = "sqlite:///relative.db, sqlite:////absolute/path.db or sqlite://:memory:"


@dataclass(frozen=True)
class SqliteConfig:
    """Validated settings of one adapter (see the package README for each option)."""

    path: str
    table: str = DEFAULT_TABLE
    journal_mode: str = "WAL"
    synchronous: str = "NORMAL"
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT
    purge_interval: float = DEFAULT_PURGE_INTERVAL

    def __post_init__(self) -> None:
        if not isinstance(self.path, str) or not self.path:
            raise ConfigError(f"the sqlite adapter needs a database path ({_FORMS})")
        if "\x00" in self.path:
            raise ConfigError("the sqlite database path must not contain NUL")
        object.__setattr__(self, "table", validate_table(self.table))
        object.__setattr__(
            self, "journal_mode", _choice("journal_mode", self.journal_mode, JOURNAL_MODES)
        )
        object.__setattr__(
            self, "synchronous", _choice("synchronous", self.synchronous, SYNCHRONOUS_LEVELS)
        )
        for name in ("busy_timeout", "purge_interval"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"option {name!r} must be a number of seconds, got {value!r}")
            if not 0 <= value < float("inf"):
                raise ConfigError(f"option {name!r} must be >= 0 seconds, got {value!r}")
            object.__setattr__(self, name, float(value))

    @property
    def in_memory(self) -> bool:
        """A private database that lives as long as the adapter's connection."""
        return self.path == MEMORY

    @classmethod
    def from_options(cls, url: str | None, options: Mapping[str, Any]) -> SqliteConfig:
        """Merge a URL's query with keyword options (keywords win) and validate them."""
        given: dict[str, Any] = {}
        if url is not None:
            path, query = parse_sqlite_url(url)
            if "path" in query or "path" in options:
                raise ConfigError("give the sqlite database path in the URL or as 'path', not both")
            given.update(query)
            given["path"] = path
        given.update(options)
        if "path" not in given:
            raise ConfigError(f"the sqlite adapter needs a URL ({_FORMS}) or a 'path' option")
        return cls(**coerce_options(given, _OPTIONS, adapter="sqlite"))


def parse_sqlite_url(url: str) -> tuple[str, dict[str, str]]:
    """Split a ``sqlite://`` URL into ``(path, query options)``.

    >>> parse_sqlite_url("sqlite:////var/lib/bot/state.db?table=sessions")
    ('/var/lib/bot/state.db', {'table': 'sessions'})
    """
    if not isinstance(url, str):
        raise InvalidURL(f"storage URL must be a str, not {type(url).__name__}")
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() != "sqlite":
        raise InvalidURL(f"not a sqlite URL: {url!r} (expected {_FORMS})")
    rest, _, _fragment = rest.partition("#")
    location, _, query_text = rest.partition("?")
    if location in (MEMORY, "/" + MEMORY):
        path = MEMORY
    elif location.startswith("/") and len(location) > 1:
        path = unquote(location[1:])
    elif not location or location == "/":
        raise InvalidURL(f"sqlite URL {url!r} names no database file (expected {_FORMS})")
    else:
        raise InvalidURL(f"sqlite URLs have no host: {url!r} (expected {_FORMS})")
    query: dict[str, str] = {}
    for key, value in parse_qsl(query_text, keep_blank_values=True):
        if key in query:
            raise InvalidURL(f"option {key!r} given twice in {url!r}")
        query[key] = value
    return path, query


def validate_table(name: object) -> str:
    """Return ``name`` if it is a plain SQL identifier we may use as a table name."""
    if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
        raise ConfigError(
            f"table name {name!r} is not a plain identifier "
            "(letters, digits and _, not starting with a digit)"
        )
    lowered = name.lower()
    if lowered.startswith("sqlite_") or lowered == META_TABLE:
        raise ConfigError(f"table name {name!r} is reserved")
    if len(name) > 100:
        raise ConfigError(f"table name {name[:20]!r}... is longer than 100 characters")
    return name


def _choice(option: str, value: object, allowed: tuple[str, ...]) -> str:
    text = value.strip().upper() if isinstance(value, str) else value
    if text not in allowed:
        raise ConfigError(f"option {option!r} must be one of {', '.join(allowed)}, got {value!r}")
    assert isinstance(text, str)
    return text
