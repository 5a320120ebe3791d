"""In-memory storage adapter for botstate (``memory://``)."""

from .__about__ import __version__
from .adapter import DEFAULT_MAX_ENTRIES, DEFAULT_SWEEP_INTERVAL, MemoryAdapter

__all__ = ["DEFAULT_MAX_ENTRIES", "DEFAULT_SWEEP_INTERVAL", "MemoryAdapter", "__version__"]
