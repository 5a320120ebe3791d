"""botstate: session and state storage for Python chat bots.

>>> import botstate
>>> storage = botstate.open_storage("memory://", namespace="mybot")
>>> await storage.set("chat:1", {"step": "ask_name"})
>>> await storage.get("chat:1")
{'step': 'ask_name'}

This module holds what a bot's code uses. Adapter authors find the contract
and its helpers in :mod:`botstate.adapter`; tests find the conformance suite
in :mod:`botstate.testing`.
"""

from .__about__ import __version__
from .capabilities import Capability
from .codecs import Codec, JsonCodec
from .errors import (
    AdapterNotFound,
    BotstateError,
    CodecError,
    ConfigError,
    ConflictError,
    DecodeError,
    EncodeError,
    InvalidArgument,
    InvalidKey,
    InvalidURL,
    MigrationError,
    PluginError,
    StorageError,
    StorageUnavailable,
    UnsupportedOperation,
    UsageError,
    ValueTooLarge,
)
from .opening import open_storage
from .plugins import list_adapters
from .scopes import chat_key, topic_key, user_in_chat_key, user_key
from .sessions import MultiSessions, Session, Sessions
from .storage import FOREVER, Storage

__all__ = [
    "FOREVER",
    "AdapterNotFound",
    "BotstateError",
    "Capability",
    "Codec",
    "CodecError",
    "ConfigError",
    "ConflictError",
    "DecodeError",
    "EncodeError",
    "InvalidArgument",
    "InvalidKey",
    "InvalidURL",
    "JsonCodec",
    "MigrationError",
    "MultiSessions",
    "PluginError",
    "Session",
    "Sessions",
    "Storage",
    "StorageError",
    "StorageUnavailable",
    "UnsupportedOperation",
    "UsageError",
    "ValueTooLarge",
    "__version__",
    "chat_key",
    "list_adapters",
    "open_storage",
    "topic_key",
    "user_in_chat_key",
    "user_key",
]
