"""Time sources. Expiry compares against a clock so tests can move time by hand."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeAlias

__all__ = ["Clock", "ManualClock", "system_clock"]

Clock: TypeAlias = Callable[[], float]
"""A function returning the current UNIX time in seconds."""

system_clock: Clock = time.time


class ManualClock:
    """A clock that moves only when told to, for TTL tests without sleeping.

    >>> clock = ManualClock(1000.0)
    >>> clock.advance(30)
    >>> clock()
    1030.0
    """

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else float(start)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``."""
        self.now += seconds

    def __repr__(self) -> str:
        return f"ManualClock({self.now!r})"
