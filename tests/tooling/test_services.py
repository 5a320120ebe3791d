"""``python -m tooling.services start NAME``: prints a storage URL botstate can open."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

import botstate
from tooling.services import missing

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("service", "scheme", "adapter"),
    [("redis", "redis://", "redis"), ("dynamodb", "dynamodb://", "kv")],
)
def test_start_prints_a_storage_url_and_stops_on_ctrl_c(
    service: str, scheme: str, adapter: str
) -> None:
    if not any(a.name == adapter and a.error is None for a in botstate.list_adapters()):
        missing(f"botstate-storage-{adapter} is not installed")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tooling.services", "start", service],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        url = proc.stdout.readline().strip()  # printed once the service answers
        if not url:
            proc.wait(30)
            missing(f"{service} could not be started: {proc.stderr.read()[-300:]}")
        assert url.startswith(scheme), url
        checked = subprocess.run(
            [sys.executable, "-m", "botstate", "check", url, "--plain"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert f"adapter:      {adapter} (" in checked.stdout
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        proc.wait(30)
    assert proc.returncode == 0
