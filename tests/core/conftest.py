"""Fixtures for the core tests: Storage over the real memory adapter on a manual clock."""

from __future__ import annotations

import pytest

from botstate import Storage
from botstate.adapter import ManualClock
from botstate_storage_memory import MemoryAdapter


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1_000_000.0)


@pytest.fixture
def adapter(clock: ManualClock) -> MemoryAdapter:
    """No background sweeper: expiry happens when the clock is advanced and read."""
    return MemoryAdapter(clock=clock, sweep_interval=0)


@pytest.fixture
def storage(adapter: MemoryAdapter, clock: ManualClock) -> Storage[object]:
    """``Storage`` in namespace ``bot`` over ``adapter`` (which a test module may override)."""
    return Storage(adapter, namespace="bot", clock=clock)
