"""Frameworks' source distributions, downloaded at test time to run their own tests.

>>> root = unpack_sdist("whatsapp-chatbot-python", "1.1.1")
>>> sorted(p.name for p in (root / "tests").glob("test_*.py"))

Kept under ``.cache/sdists/`` in the checkout (ignored by git) so a second run
needs no network. Nothing from an sdist is ever copied into the repository:
tests run the unpacked files in place, with fixtures supplied by botstate.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

from tooling.services import ROOT, ServiceError

__all__ = ["CACHE", "unpack_sdist"]

CACHE = ROOT / ".cache" / "sdists"


def unpack_sdist(distribution: str, version: str) -> Path:
    """The unpacked sdist of ``distribution==version`` (its top folder), downloading it once."""
    target = CACHE / f"{distribution}-{version}"
    done = target / ".unpacked"
    if done.exists():
        top = target / done.read_text().strip()
        if top.is_dir():
            return top
    downloads = CACHE / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
        "--no-deps", "--no-binary", ":all:", "--dest", str(downloads),
        f"{distribution}=={version}",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    if proc.returncode != 0:
        raise ServiceError(f"could not download the {distribution} {version} sdist: {proc.stderr}")
    normalized = {distribution.lower().replace("-", "_"), distribution.lower()}
    archive = next(
        (
            path
            for path in downloads.glob("*.tar.gz")
            if path.name.lower().rsplit("-", 1)[0].replace("-", "_") in normalized
            and path.name.endswith(f"-{version}.tar.gz")
        ),
        None,
    )
    if archive is None:
        raise ServiceError(f"pip downloaded no sdist of {distribution} {version}")
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):  # refuse links and paths outside target
            tar.extractall(target, filter="data")
        else:  # pragma: no cover - Python without extraction filters
            tar.extractall(target)
    (top,) = [path for path in target.iterdir() if path.is_dir()]
    done.write_text(top.name)  # relative: the checkout may move
    return top
