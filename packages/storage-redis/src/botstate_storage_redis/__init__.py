"""Redis storage adapter for botstate (``redis://``, ``rediss://``, ``unix://``, ``redis+cluster://``)."""

from .__about__ import __version__
from .adapter import HEADER_BYTES, RedisAdapter
from .config import RedisOptions

__all__ = ["HEADER_BYTES", "RedisAdapter", "RedisOptions", "__version__"]
