"""DynamoDB storage adapter for botstate (``dynamodb://table?region=...``)."""

from .__about__ import __version__
from ._config import KVConfig
from ._items import MAX_ITEM_BYTES
from .adapter import DynamoDBAdapter

__all__ = ["MAX_ITEM_BYTES", "DynamoDBAdapter", "KVConfig", "__version__"]
