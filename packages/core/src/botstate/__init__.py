"""botstate: session and state storage for Python chat bots.

>>> import botstate
>>> storage = botstate.open_storage("memory://", namespace="mybot")
>>> await storage.set("chat:1", {"step": "ask_name"})
>>> await storage.get("chat:1")
{'step': 'ask_name'}
"""

from .__about__ import __version__
from .adapter import BaseAdapter, ExpiryCallback, ExpiryEvent, StorageAdapter, Version
from .capabilities import Capability
from .clock import Clock, ManualClock, system_clock
from .codecs import BytesCodec, Codec, JsonCodec, TextCodec
from .errors import (
    AdapterNotFound,
    BotstateError,
    CodecError,
    ConfigError,
    ConflictError,
    DecodeError,
    EncodeError,
    InvalidKey,
    InvalidURL,
    MigrationError,
    PluginError,
    StorageError,
    StorageUnavailable,
    UnsupportedOperation,
    ValueTooLarge,
)
from .hookspecs import hookimpl
from .keys import MAX_KEY_BYTES, validate_key
from .leases import Lease
from .locks import KeyedLock
from .registry import (
    AdapterInfo,
    adapters,
    get_codec,
    open_adapter,
    open_storage,
    register_plugin,
    reset_registry,
)
from .scopes import chat_key, topic_key, user_in_chat_key, user_key
from .sessions import Isolation, MultiSession, MultiSessions, Session, Sessions
from .storage import FOREVER, TTL, Storage
from .urls import (
    Seconds,
    SecondsOrZero,
    StorageURL,
    coerce_options,
    parse_url,
    redact_secrets,
    redact_url,
)

__all__ = [
    "FOREVER",
    "MAX_KEY_BYTES",
    "TTL",
    "AdapterInfo",
    "AdapterNotFound",
    "BaseAdapter",
    "BotstateError",
    "BytesCodec",
    "Capability",
    "Clock",
    "Codec",
    "CodecError",
    "ConfigError",
    "ConflictError",
    "DecodeError",
    "EncodeError",
    "ExpiryCallback",
    "ExpiryEvent",
    "InvalidKey",
    "InvalidURL",
    "Isolation",
    "JsonCodec",
    "KeyedLock",
    "Lease",
    "ManualClock",
    "MigrationError",
    "MultiSession",
    "MultiSessions",
    "PluginError",
    "Seconds",
    "SecondsOrZero",
    "Session",
    "Sessions",
    "Storage",
    "StorageAdapter",
    "StorageError",
    "StorageURL",
    "StorageUnavailable",
    "TextCodec",
    "UnsupportedOperation",
    "ValueTooLarge",
    "Version",
    "__version__",
    "adapters",
    "chat_key",
    "coerce_options",
    "get_codec",
    "hookimpl",
    "open_adapter",
    "open_storage",
    "parse_url",
    "redact_secrets",
    "redact_url",
    "register_plugin",
    "reset_registry",
    "system_clock",
    "topic_key",
    "user_in_chat_key",
    "user_key",
    "validate_key",
]
