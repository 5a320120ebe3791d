"""Frameworks' source distributions, downloaded at test time to run their own tests.

>>> root = unpack_sdist("whatsapp-chatbot-python", "1.1.1")
>>> sorted(p.name for p in (root / "tests").glob("test_*.py"))

Kept outside the checkout, under ``$BOTSTATE_CACHE/sdists/`` (default
``~/.cache/botstate``), so a second run needs no network, even from a fresh
clone (as CI makes for every run). Downloads and unpacking go through private
temporary folders renamed into place, so checkouts sharing the cache may run
at once. Nothing from an sdist is ever copied into the repository: tests run
the unpacked files in place, with fixtures supplied by botstate.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from tooling.services import ServiceError

__all__ = ["CACHE", "unpack_sdist"]

CACHE = Path(os.environ.get("BOTSTATE_CACHE") or Path.home() / ".cache" / "botstate") / "sdists"


def _unpacked(target: Path) -> Path | None:
    done = target / ".unpacked"
    if done.exists():
        top = target / done.read_text().strip()
        if top.is_dir():
            return top
    return None


def unpack_sdist(distribution: str, version: str) -> Path:
    """The unpacked sdist of ``distribution==version`` (its top folder), downloading it once."""
    target = CACHE / f"{distribution}-{version}"
    top = _unpacked(target)
    if top is not None:
        return top
    CACHE.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{distribution}-{version}-", dir=CACHE))
    try:
        return _download_and_unpack(distribution, version, work, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _download_and_unpack(distribution: str, version: str, work: Path, target: Path) -> Path:
    downloads = work / "downloads"
    downloads.mkdir()
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
    unpacked = work / "unpacked"
    unpacked.mkdir()
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):  # refuse links and paths outside target
            tar.extractall(unpacked, filter="data")
        else:  # pragma: no cover - Python without extraction filters
            tar.extractall(unpacked)
    (top,) = [path for path in unpacked.iterdir() if path.is_dir()]
    (unpacked / ".unpacked").write_text(top.name)  # relative: the cache may move
    # Complete (marker included) or not there at all, never half-unpacked; an OSError
    # means another run put it there first.
    with contextlib.suppress(OSError):
        unpacked.rename(target)
    found = _unpacked(target)
    if found is None:
        raise ServiceError(f"could not unpack the {distribution} {version} sdist into {target}")
    return found
