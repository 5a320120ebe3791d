"""aiogram's own FSM, scene, isolation and dispatcher tests, run against BotstateStorage.

The sdist of the installed aiogram version is downloaded once (``pip download
--no-binary :all:``, tooling.sdists) into ``~/.cache/botstate/sdists/``. Each backend then
runs its test files in place, in a subprocess, with the fixtures of
``suite/botstate_aiogram_suite.py`` (every storage and isolation they build is
ours; the plugin imports the installed aiogram before the sdist's folder is on
``sys.path``, and refuses to run if the sdist's copy was picked). No aiogram
code is copied into this repository. The pass counts per backend are printed
at the end of the run.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from tooling.sdists import unpack_sdist
from tooling.services import ServiceError, missing

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_DIR = Path(__file__).resolve().parent / "suite"

# The files whose tests go through a storage or an event isolation: BaseStorage's
# contract, isolation, FSM middleware, scenes (history under a second destiny),
# the dispatcher (its default storage is ours too) and two FSM regressions.
# Not run: tests/test_fsm/test_context.py sets its state up by writing into
# MemoryStorage's private dict, which no other storage has.
SUITE_FILES = [
    "tests/test_fsm/storage/test_storages.py",
    "tests/test_fsm/storage/test_isolation.py",
    "tests/test_fsm/test_scene.py",
    "tests/test_dispatcher/test_dispatcher.py",
    "tests/test_issues/test_1317_state_vs_isolation.py",
]
# Run where the aiogram version has them (added in later releases).
OPTIONAL_FILES = [
    "tests/test_fsm/test_middleware.py",
    "tests/test_issues/test_1672_middleware_data_in_scene.py",
    "tests/test_issues/test_1687_scene_goto_loses_middleware_data.py",
    "tests/test_issues/test_1743_channel_post_with_scenes.py",
]
# Passed per backend: aiogram 3.24.0: 175, 3.31.0: 196. Fewer means tests went missing.
# (aiogram before 3.24 writes these tests with pytest-lazy-fixture, which pytest 8 lacks.)
MIN_PASSED = 150
RUN_TIMEOUT = 300  # seconds per backend; a hang fails the test instead of blocking CI

INI = """\
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
"""


@pytest.fixture(scope="session")
def aiogram_tests() -> Path:
    """The unpacked sdist of the installed aiogram (tooling.sdists: downloaded once)."""
    try:
        return unpack_sdist("aiogram", importlib.metadata.version("aiogram"))
    except ServiceError as err:
        missing(str(err))


def _run_suite(tests_root: Path, url: str, tmp_path: Path) -> dict[str, int]:
    ini = tmp_path / "suite.ini"
    ini.write_text(INI)
    report = tmp_path / "junit.xml"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PLUGIN_DIR), env.get("PYTHONPATH")]))
    cmd = [
        sys.executable, "-m", "pytest", "-c", str(ini), "--rootdir", str(tests_root),
        # keeps aiogram's root conftest (MongoDB drivers, its own storages) out
        "--confcutdir", str(tests_root / "tests" / "test_fsm"),
        "-p", "botstate_aiogram_suite", "--botstate-url", url,
        "-p", "no:cacheprovider", "-q", "--junitxml", str(report),
        *(str(tests_root / name) for name in SUITE_FILES),
        *(str(tests_root / name) for name in OPTIONAL_FILES if (tests_root / name).is_file()),
    ]  # fmt: skip
    try:
        done = subprocess.run(
            # not cwd=tests_root: `python -m` would put the sdist's own aiogram/ on sys.path
            cmd,
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
        )
    except subprocess.TimeoutExpired as err:
        pytest.fail(f"aiogram's suite did not finish in {RUN_TIMEOUT}s: {err.stdout!r}")
    if not report.is_file():
        pytest.fail(f"aiogram's suite did not run:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    suite = ET.parse(report).getroot()
    suite = suite if suite.tag == "testsuite" else suite[0]
    counts = {
        name: int(suite.get(name, "0")) for name in ("tests", "failures", "errors", "skipped")
    }
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    assert counts["failures"] == counts["errors"] == 0, done.stdout[-6000:]
    opened = re.search(r"botstate-aiogram-suite: (\d+) BotstateStorage opened", done.stdout)
    assert opened, done.stdout[-3000:]
    counts["storages"] = int(opened.group(1))
    return counts


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["memory", "sqlite", "redis"])
def test_aiogram_suite(
    backend: str,
    aiogram_tests: Path,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    suite_results: list[str],
) -> None:
    if backend == "memory":
        url = "memory://"
    elif backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'suite.db'}"
    else:
        server: Any = request.getfixturevalue("redis_server")
        url = server.url
    counts = _run_suite(aiogram_tests, url, tmp_path)
    version = importlib.metadata.version("aiogram")
    suite_results.append(
        f"aiogram {version} suite on BotstateStorage({backend}): {counts['passed']} passed, "
        f"{counts['skipped']} skipped, {counts['failures']} failed, {counts['errors']} errors "
        f"({counts['storages']} BotstateStorage instances used)"
    )
    assert counts["passed"] >= MIN_PASSED, counts
    # the tests really ran on ours: every storage they built (and Dispatcher()'s default) is ours
    assert counts["storages"] >= 80, counts  # 3.24.0: 94, 3.31.0: 112
