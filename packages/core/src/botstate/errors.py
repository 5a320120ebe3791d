"""The one error tree of botstate.

Every error botstate raises derives from :class:`BotstateError`; adapters wrap
driver errors at their boundary (``raise StorageUnavailable(...) from err``) so
no driver exception reaches the caller raw::

    BotstateError
    ├── ConfigError (ValueError)    bad URL, options, settings, or plugin setup
    │   ├── AdapterNotFound         no installed adapter has that name or scheme
    │   ├── InvalidURL              the URL cannot be parsed or has bad options
    │   └── PluginError             a plugin failed to load or registered badly
    ├── InvalidArgument (ValueError, TypeError)
    │   │                           a bad argument to a call: a TTL, a prefix, a lock timeout
    │   └── InvalidKey              empty, NUL, lone surrogate, > 1024 UTF-8 bytes, not str
    ├── UsageError (RuntimeError)   a call the contract does not allow in this state
    │                               (a lazy session's data before load(), a lock released twice)
    ├── CodecError
    │   ├── EncodeError             a value the codec cannot encode (nothing is written)
    │   └── DecodeError             stored bytes the codec cannot decode
    ├── MigrationError              session data newer than the code, or a migration failed
    └── StorageError
        ├── StorageUnavailable      connection refused or lost, timeout
        ├── ConflictError           an atomic update kept losing; a lock not got in time or lost
        ├── ValueTooLarge           the backend cannot hold a value this big
        └── UnsupportedOperation (NotImplementedError)
                                    the adapter cannot do this; the message says why

A read error is never turned into "missing": ``get`` either returns what is
stored, ``None`` for an absent key, or raises.
"""

from __future__ import annotations

__all__ = [
    "AdapterNotFound",
    "BotstateError",
    "CodecError",
    "ConfigError",
    "ConflictError",
    "DecodeError",
    "EncodeError",
    "InvalidArgument",
    "InvalidKey",
    "InvalidURL",
    "MigrationError",
    "PluginError",
    "StorageError",
    "StorageUnavailable",
    "UnsupportedOperation",
    "UsageError",
    "ValueTooLarge",
]


class BotstateError(Exception):
    """Base class of every error raised by botstate and its adapters."""


class ConfigError(BotstateError, ValueError):
    """The storage was configured wrongly (URL, options, settings, plugins, schema)."""


class AdapterNotFound(ConfigError):
    """No installed adapter answers to the requested name or URL scheme."""


class InvalidURL(ConfigError):
    """A storage URL could not be parsed, or one of its options is invalid."""


class PluginError(ConfigError):
    """A plugin could not be loaded or registered something invalid."""


class InvalidArgument(BotstateError, ValueError, TypeError):
    """A call got an argument it cannot use (wrong type or out of range).

    It is also a ``ValueError`` and a ``TypeError``, so code that catches the
    built-in errors Python raises for bad arguments keeps working.
    """


class UsageError(BotstateError, RuntimeError):
    """The API was used in a way its contract does not allow.

    For example a lazy session's ``data`` read before ``load()``.
    """


class InvalidKey(InvalidArgument):
    """A key is not a valid storage key; ``key`` holds the offending key."""

    def __init__(self, message: str, key: object = None) -> None:
        super().__init__(message)
        self.key = key


class CodecError(BotstateError):
    """A value could not be encoded or decoded; ``key`` names the entry."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class EncodeError(CodecError):
    """The codec cannot turn this value into bytes; nothing was written."""


class DecodeError(CodecError):
    """The stored bytes cannot be turned back into a value."""


class MigrationError(BotstateError):
    """Stored session data cannot be brought to the code's schema version.

    Raised for data written by a newer version of the code (never silently
    downgraded), a missing migration step, or a migration function that failed.
    """


class StorageError(BotstateError):
    """The backend failed to carry out an operation."""


class StorageUnavailable(StorageError):
    """The backend cannot be reached (refused, lost connection, timeout)."""


class ConflictError(StorageError):
    """An atomic operation lost to concurrent writers more often than allowed, or a
    lock (``Storage.lock``) was not got within its timeout or was lost while held."""


class ValueTooLarge(StorageError):
    """The value exceeds what the backend can store under one key."""


class UnsupportedOperation(StorageError, NotImplementedError):
    """The adapter does not support this operation; the message says why."""
