"""pyTelegramBotAPI's own tests and state storage: its sdist has none to run.

The sdist ships tests (types, handler backends, API helper, bots against the
real Bot API with a token) but none that exercise a state storage: they use
the default StateMemoryStorage implicitly, if at all. This test downloads the
installed version's sdist and checks that is still so; if a release adds
state-storage tests, it fails, asking for them to be run on our storages
(as tests/greenapi/test_upstream.py does for green-api).
"""

from __future__ import annotations

import re
from importlib.metadata import version

import pytest

from tooling.sdists import unpack_sdist
from tooling.services import ServiceError, missing

STATE_STORAGE = re.compile(
    r"state_storage|StateStorageBase|StateMemoryStorage|StateRedisStorage|StatePickleStorage"
    r"|\.set_state\(|\.get_state\(|retrieve_data|get_interactive_data"
)


@pytest.mark.slow
def test_sdist_has_no_state_storage_tests_to_run() -> None:
    release = version("pyTelegramBotAPI")
    try:
        root = unpack_sdist("pyTelegramBotAPI", release)
    except ServiceError as err:
        missing(str(err))
    tests = sorted((root / "tests").glob("test_*.py"))
    assert tests, f"pyTelegramBotAPI {release}'s sdist ships no tests any more"
    touching = [path.name for path in tests if STATE_STORAGE.search(path.read_text())]
    assert touching == [], (
        f"pyTelegramBotAPI {release}'s own tests now exercise state storage in {touching}: "
        "run them on BotstateStateStorage with fixtures supplied from this repository"
    )
