"""whatsapp-chatbot-python's own tests, run on BotstateStateManager.

The sdist of the installed version is downloaded at test time (tooling.sdists)
and its test files that touch the state manager run in place, with
``upstream_plugin`` making every ``StateManager()`` the framework creates a
``BotstateStateManager``. Nothing of theirs is copied into this repository.
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from tooling.sdists import unpack_sdist
from tooling.services import ServiceError, missing

HERE = Path(__file__).resolve().parent
# Their files that build Routers/bots and so exercise the state manager;
# test_calls_imports.py needs the voip extra and no state.
FILES = ["tests/test_incoming_call_notifications.py", "tests/test_manager.py"]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_frameworks_own_tests_pass_on_our_manager(backend: str, tmp_path: Path) -> None:
    release = version("whatsapp-chatbot-python")
    try:
        root = unpack_sdist("whatsapp-chatbot-python", release)
    except ServiceError as err:
        missing(str(err))
    ini = tmp_path / "pytest.ini"
    ini.write_text("[pytest]\n")  # not this repository's settings
    url = "memory://" if backend == "memory" else f"sqlite:///{tmp_path / 'upstream.db'}"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        "BOTSTATE_UPSTREAM_STORAGE": url,
    }
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-c", str(ini), "-p", "upstream_plugin",
         "-p", "no:cacheprovider", "-q", *FILES],
        cwd=root, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    report = proc.stdout[-3000:] + proc.stderr[-2000:]
    assert proc.returncode == 0, report
    assert " passed" in proc.stdout and " failed" not in proc.stdout, report
    created = int(proc.stdout.split("botstate managers created: ")[1].split()[0])
    assert created > 0, report  # their routers really ran on our manager
