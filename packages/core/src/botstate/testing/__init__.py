"""Test helpers: the conformance suite, a manual clock, and a registry reset.

Needs ``pytest`` and ``pytest-asyncio`` (``pip install "botstate[testing]"``).

Subclass :class:`AdapterSuite` in your tests and override the ``adapter``
fixture; every test of the capabilities your adapter declares then runs
against it::

    import pytest_asyncio
    from botstate.testing import AdapterSuite

    class TestMyAdapter(AdapterSuite):
        @pytest_asyncio.fixture
        async def adapter(self):
            adapter = MyAdapter(...)
            yield adapter
            await adapter.close()
"""

from ..clock import ManualClock
from ..plugins import reset_registry
from .suite import AdapterSuite

__all__ = ["AdapterSuite", "ManualClock", "reset_registry"]
