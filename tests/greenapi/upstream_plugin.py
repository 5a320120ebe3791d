"""A pytest plugin that runs whatsapp-chatbot-python's own tests on BotstateStateManager.

Loaded with ``-p upstream_plugin`` when pytest runs the test files of the
framework's sdist (see test_upstream.py). Every ``StateManager()`` the
framework's ``Observer`` creates becomes a ``BotstateStateManager`` over a
fresh botstate storage (``BOTSTATE_UPSTREAM_STORAGE``, default memory), so
their state tests exercise ours. At the end it prints how many managers the
tests created, so the caller can tell the substitution happened.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from botstate_greenapi import BotstateStateManager

created: list[BotstateStateManager] = []
total = 0


def _manager() -> BotstateStateManager:
    global total
    url = os.environ.get("BOTSTATE_UPSTREAM_STORAGE", "memory://")
    manager = BotstateStateManager(url, namespace=f"up{uuid.uuid4().hex[:10]}")
    created.append(manager)
    total += 1
    return manager


@pytest.fixture(autouse=True)
def _botstate_state_manager(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from whatsapp_chatbot_python.manager import observer

    monkeypatch.setattr(observer, "StateManager", _manager)
    yield
    while created:
        created.pop().close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    terminalreporter.write_line(f"botstate managers created: {total}")
