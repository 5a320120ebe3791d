"""DynamoDB storage adapter for botstate (``dynamodb://table?region=...``).

The public names are imported on first access, so that loading the plugin
(which imports this package) does not import boto3.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .__about__ import __version__

if TYPE_CHECKING:
    from ._config import KVConfig
    from ._items import MAX_ITEM_BYTES
    from .adapter import DynamoDBAdapter

__all__ = ["MAX_ITEM_BYTES", "DynamoDBAdapter", "KVConfig", "__version__"]

_LAZY = {"DynamoDBAdapter": "adapter", "KVConfig": "_config", "MAX_ITEM_BYTES": "_items"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
