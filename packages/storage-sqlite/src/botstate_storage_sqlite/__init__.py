"""SQLite storage adapter for botstate (``sqlite:///path.db``).

>>> from botstate_storage_sqlite import SqliteAdapter
>>> adapter = SqliteAdapter.from_url("sqlite:///bot.db")

The adapter (and with it aiosqlite) is imported on first access, so the
plugin entry point can register ``sqlite`` without loading the driver.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .__about__ import __version__

if TYPE_CHECKING:
    from .adapter import SqliteAdapter
    from .schema import SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION", "SqliteAdapter", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "SqliteAdapter":
        from .adapter import SqliteAdapter

        return SqliteAdapter
    if name == "SCHEMA_VERSION":
        from .schema import SCHEMA_VERSION

        return SCHEMA_VERSION
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
