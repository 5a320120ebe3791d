"""Redis storage adapter for botstate (``redis://``, ``rediss://``, ``unix://``, ``redis+cluster://``).

The adapter is imported on first attribute access, so loading the plugin
(which imports this package) does not import redis-py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .__about__ import __version__

if TYPE_CHECKING:
    from .adapter import HEADER_BYTES, RedisAdapter
    from .config import RedisOptions

__all__ = ["HEADER_BYTES", "RedisAdapter", "RedisOptions", "__version__"]


def __getattr__(name: str) -> Any:
    if name in ("HEADER_BYTES", "RedisAdapter"):
        from . import adapter

        return getattr(adapter, name)
    if name == "RedisOptions":
        from . import config

        return config.RedisOptions
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
