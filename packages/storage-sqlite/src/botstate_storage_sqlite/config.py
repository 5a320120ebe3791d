"""SQLite URLs and options: ``sqlite:///relative.db``, ``sqlite:////abs.db``, ``sqlite://:memory:``.

URLs are read by ``botstate.adapter.parse_url``; only the ``sqlite://:memory:`` form,
whose ``:memory:`` would read as a host, is rewritten to ``sqlite:///:memory:``
first. Every option is checked before anything touches the disk; the table
name is the only identifier that reaches SQL text, and only after it matched
``[A-Za-z_][A-Za-z0-9_]*``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botstate import ConfigError, InvalidURL
from botstate.adapter import Choice, OptionKind, SecondsOrZero, coerce_options, parse_url

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
_MEMORY_HOST = re.compile(r"sqlite://:memory:(?=$|[?#])", re.IGNORECASE)
_OPTIONS: dict[str, OptionKind] = {
    "path": str,
    "table": str,
    "journal_mode": Choice(*JOURNAL_MODES),
    "synchronous": Choice(*SYNCHRONOUS_LEVELS),
    "busy_timeout": SecondsOrZero,
    "purge_interval": SecondsOrZero,
}
_FORMS = "sqlite:///relative.db, sqlite:////absolute/path.db or sqlite://:memory:"


@dataclass(frozen=True)
class SqliteConfig:
    """Validated settings of one adapter (see the package README for each option).

    Build it with :meth:`from_options`: option kinds (choices, seconds) are
    checked there, by ``coerce_options``; the path and table checks run here.
    """

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
    if isinstance(url, str) and _MEMORY_HOST.match(url):
        url = f"sqlite:///{url[9:]}"  # else parse_url reads ":memory:" as host:port
    parsed = parse_url(url)
    if parsed.scheme != "sqlite":
        raise InvalidURL(f"not a sqlite URL: {parsed} (expected {_FORMS})")
    if parsed.hosts or parsed.username is not None or parsed.password is not None:
        raise InvalidURL(f"sqlite URLs have no host: {parsed} (expected {_FORMS})")
    # parse_url keeps the slash that ends "sqlite://": "/relative.db", "//abs/path.db".
    path = parsed.path[1:]
    if not path:
        raise InvalidURL(f"sqlite URL {parsed} names no database file (expected {_FORMS})")
    return path, dict(parsed.query)


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
