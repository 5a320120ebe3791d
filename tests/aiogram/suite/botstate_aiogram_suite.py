"""pytest plugin: aiogram's own FSM tests, run against BotstateStorage.

Loaded with ``-p botstate_aiogram_suite`` by ``tests/aiogram/test_aiogram_suite.py``
inside an unpacked aiogram sdist, with ``--confcutdir`` keeping aiogram's root
``conftest.py`` (which needs MongoDB drivers) out. It supplies the fixtures
aiogram's tests ask for, on the backend given by ``--botstate-url``:

- ``memory_storage`` / ``storage`` (the parametrised storage tests): a
  ``BotstateStorage``; the redis/mongo parametrisations are dropped as
  duplicates (they would run the same storage again).
- ``redis_isolation`` / ``isolation``: ``BotstateStorage.create_isolation()``;
  aiogram's in-memory and disabled isolations are dropped (not ours).
- Every ``MemoryStorage()`` a test builds (directly, or as the default of
  ``Dispatcher()``) and every ``SimpleEventIsolation()``: ours, each on a
  namespace of its own so the test still gets independent storages.

Nothing of aiogram is copied: its test files run as shipped.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiogram.fsm.storage.base import StorageKey

from botstate_aiogram import BotstateEventIsolation, BotstateStorage

_DUPLICATE_STORAGES = {"redis_storage", "mongo_storage", "pymongo_storage"}
_OTHER_ISOLATIONS = {"lock_isolation", "disabled_isolation"}

CHAT_ID = -42
USER_ID = 42


def pytest_configure(config: pytest.Config) -> None:
    import aiogram

    # This plugin imported the installed aiogram before pytest put the sdist's folder on
    # sys.path; make sure the tests exercise it, not the sdist's copy of the sources.
    if Path(aiogram.__file__).resolve().is_relative_to(config.rootpath.resolve()):
        raise pytest.UsageError(f"aiogram imported from the sdist: {aiogram.__file__}")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--botstate-url",
        required=True,
        help="botstate storage URL; each storage a test opens gets a namespace of its own",
    )


class _Storages:
    """Opens a fresh ``BotstateStorage`` per call (own namespace), closes them all at the end."""

    def __init__(self, url: str, test_id: int) -> None:
        self.url = url
        self.test_id = test_id
        self.opened: list[BotstateStorage] = []
        self._counter = itertools.count()

    def storage(self) -> BotstateStorage:
        global _opened
        _opened += 1
        n = next(self._counter)
        fsm = BotstateStorage.from_url(self.url, namespace=f"suite{self.test_id}x{n}")
        self.opened.append(fsm)
        return fsm

    def isolation(self) -> BotstateEventIsolation:
        return self.storage().create_isolation()

    async def close(self) -> None:
        for fsm in self.opened:
            await fsm.storage.close()


_test_ids = itertools.count()
_opened = 0  # BotstateStorages the tests got, reported to the runner


def pytest_terminal_summary(terminalreporter: Any) -> None:
    terminalreporter.write_line(f"botstate-aiogram-suite: {_opened} BotstateStorage opened")


@pytest.fixture(autouse=True)
async def botstate_storages(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[_Storages]:
    """Make every MemoryStorage()/SimpleEventIsolation() of the test ours."""
    storages = _Storages(request.config.getoption("--botstate-url"), next(_test_ids))
    module = request.node.module
    targets = [sys.modules["aiogram.dispatcher.dispatcher"], module]
    for target in targets:
        if hasattr(target, "MemoryStorage"):
            monkeypatch.setattr(target, "MemoryStorage", storages.storage)
        if hasattr(target, "SimpleEventIsolation"):
            monkeypatch.setattr(target, "SimpleEventIsolation", storages.isolation)
    yield storages
    await storages.close()


@pytest.fixture
async def memory_storage(botstate_storages: _Storages) -> BotstateStorage:
    return botstate_storages.storage()


@pytest.fixture
async def redis_isolation(botstate_storages: _Storages) -> BotstateEventIsolation:
    return botstate_storages.isolation()


@pytest.fixture
def storage(request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue(request.param)


@pytest.fixture
def isolation(request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue(request.param)


@pytest.fixture
def bot() -> Any:
    from tests.mocked_bot import MockedBot  # aiogram's own test bot, from the sdist

    return MockedBot()


@pytest.fixture(name="storage_key")
def create_storage_key(bot: Any) -> StorageKey:
    return StorageKey(chat_id=CHAT_ID, user_id=USER_ID, bot_id=bot.id)


@pytest.fixture
async def dispatcher() -> AsyncIterator[Any]:
    from aiogram import Dispatcher

    dp = Dispatcher()
    await dp.emit_startup()
    try:
        yield dp
    finally:
        await dp.emit_shutdown()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    keep, drop = [], []
    for item in items:
        params: dict[str, Any] = getattr(getattr(item, "callspec", None), "params", {})
        if (
            params.get("storage") in _DUPLICATE_STORAGES
            or params.get("isolation") in _OTHER_ISOLATIONS
        ):
            drop.append(item)
        elif "TestRedisEventIsolation" in item.nodeid:
            drop.append(item)  # aiogram's RedisEventIsolation class itself, not ours
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_report_header(config: pytest.Config) -> list[str]:
    import aiogram

    url = config.getoption("--botstate-url")
    return [
        f"aiogram {aiogram.__version__} ({Path(aiogram.__file__).parent}) "
        f"FSM tests on BotstateStorage({url})"
    ]
