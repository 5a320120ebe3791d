"""Real servers for tests and benchmarks, started on free loopback ports.

Each service module offers ``start_*()`` returning an object with the address
to use and ``stop()``. ``python -m tooling.services start redis`` runs one by
hand (see ``__main__``). Nothing here ever binds to a non-loopback address.
"""

from __future__ import annotations

import importlib
import os
import socket
import subprocess
import time
from pathlib import Path
from types import ModuleType
from typing import NoReturn

__all__ = [
    "ROOT",
    "STATE_DIR",
    "ServiceError",
    "free_port",
    "in_ci",
    "missing",
    "require_module",
    "stop_process",
    "wait_for_port",
]

ROOT = Path(__file__).resolve().parents[2]
STATE_DIR = ROOT / "tooling" / ".services"
LOOPBACK = "127.0.0.1"


class ServiceError(RuntimeError):
    """A test service could not be found or started; the message says how to fix it."""


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing(message: str) -> NoReturn:
    """A test needs something absent: skip it locally, fail it under ``CI=true``.

    CI must never turn a missing server, package or tool into a silent skip.
    """
    import pytest

    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def require_module(name: str, distribution: str) -> ModuleType:
    """Import ``name`` for a test, or :func:`missing` naming the distribution to install."""
    try:
        return importlib.import_module(name)
    except ImportError as err:
        missing(f"{distribution} is not installed ({err})")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    port: int, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Wait until something accepts connections on ``127.0.0.1:port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ServiceError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise ServiceError(f"nothing listened on {LOOPBACK}:{port} within {timeout}s")


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Terminate ``proc`` (then kill it if it lingers) and reap it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
