"""The conformance suite for adapter authors (needs ``pytest`` and ``pytest-asyncio``).

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
from .suite import AdapterSuite

__all__ = ["AdapterSuite", "ManualClock"]
