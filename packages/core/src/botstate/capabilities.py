"""What an adapter can do natively, declared as ``adapter.capabilities``."""

from __future__ import annotations

import enum

__all__ = ["Capability"]


class Capability(str, enum.Enum):
    """A feature an adapter declares in its ``capabilities`` frozenset.

    The conformance suite runs the tests of every declared capability and
    ``Storage`` chooses its strategy from them (e.g. atomic ``update``).
    """

    BATCH = "batch"
    """``get_many``/``set_many``/``delete_many`` use native multi-key round trips."""

    SCAN = "scan"
    """``scan(prefix)`` lists live keys; required by ``Storage.keys`` and ``clear``."""

    ATOMIC = "atomic"
    """``get_versioned``/``set_if``/``delete_if`` are compare-and-set on a version."""

    EXPIRY_EVENTS = "expiry_events"
    """``on_expire(callback)`` reports entries removed by expiry (key and last value)."""

    PERSISTENT = "persistent"
    """Data survives a restart of the process (and of the server, where there is one)."""

    SHARED = "shared"
    """Data written by one process is visible to other processes or hosts."""

    def __str__(self) -> str:
        return self.value
