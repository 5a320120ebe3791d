"""What adapter authors use: the contract, a base class, and the shared helpers.

A third-party adapter needs nothing else from botstate::

    from botstate.adapter import BaseAdapter, Capability, coerce_options, hookimpl, parse_url

    class MyAdapter(BaseAdapter):
        capabilities = frozenset({Capability.PERSISTENT})
        ...

    @hookimpl
    def botstate_register_storage(register):
        register("mystore", "mystore_pkg.adapter:MyAdapter.from_url", schemes=["mystore"])

Test it with the conformance suite in :mod:`botstate.testing`.
"""

from __future__ import annotations

from .base import BaseAdapter, int_version
from .capabilities import Capability
from .clock import Clock, ManualClock, system_clock
from .contract import BlockingOps, ExpiryCallback, ExpiryEvent, StorageAdapter, Version
from .hookspecs import hookimpl
from .keys import MAX_KEY_BYTES, validate_key
from .logs import hide_in_logs
from .opening import open_adapter
from .options import (
    MAX_SECONDS,
    Choice,
    OptionKind,
    Seconds,
    SecondsOrZero,
    coerce_options,
    seconds,
)
from .plugins import register_plugin
from .urls import StorageURL, is_secret_option, parse_url, redact_secrets, redact_url

__all__ = [
    "MAX_KEY_BYTES",
    "MAX_SECONDS",
    "BaseAdapter",
    "BlockingOps",
    "Capability",
    "Choice",
    "Clock",
    "ExpiryCallback",
    "ExpiryEvent",
    "ManualClock",
    "OptionKind",
    "Seconds",
    "SecondsOrZero",
    "StorageAdapter",
    "StorageURL",
    "Version",
    "coerce_options",
    "hide_in_logs",
    "hookimpl",
    "int_version",
    "is_secret_option",
    "open_adapter",
    "parse_url",
    "redact_secrets",
    "redact_url",
    "register_plugin",
    "seconds",
    "system_clock",
    "validate_key",
]
