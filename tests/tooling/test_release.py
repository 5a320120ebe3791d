"""tooling/release.py, run as a script on a copy of the repo's packages (never the real files)."""

from __future__ import annotations

import datetime
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tooling.workspace import members

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tooling" / "release.py"


_RANGE = re.compile(r'"(botstate(?:-storage-[a-z]+)?)>=[0-9.]+,<[0-9.]+"')


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A copy of packages/ (metadata files only) to release from, set back to 0.1.0.

    Every package at 0.1.0 and every botstate range at ``>=0.1,<0.2``, whatever the
    real repo is at, so the scenarios below read the same at every release.
    """
    for pyproject in (ROOT / "packages").glob("*/pyproject.toml"):
        src_dir = pyproject.parent
        dst_dir = tmp_path / "packages" / src_dir.name
        dst_dir.mkdir(parents=True)
        text = _RANGE.sub(r'"\1>=0.1,<0.2"', pyproject.read_text())
        (dst_dir / "pyproject.toml").write_text(text)
        if (src_dir / "CHANGELOG.md").exists():
            shutil.copy(src_dir / "CHANGELOG.md", dst_dir / "CHANGELOG.md")
        for about in src_dir.glob("src/*/__about__.py"):
            target = dst_dir / about.relative_to(src_dir)
            target.parent.mkdir(parents=True)
            target.write_text('"""Version."""\n\n__version__ = "0.1.0"\n')
    return tmp_path


def release(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--root", str(repo), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def version_of(repo: Path, package: str) -> str:
    (about,) = (repo / "packages" / package).glob("src/*/__about__.py")
    match = re.search(r'__version__ = "([^"]+)"', about.read_text())
    assert match
    return match.group(1)


def write_changelog(repo: Path, package: str, unreleased: str) -> Path:
    path = repo / "packages" / package / "CHANGELOG.md"
    path.write_text(
        f"# {package}\n\n## Unreleased\n\n{unreleased}\n## 0.1.0 (2024-01-01)\n\n- First release.\n"
    )
    return path


def test_the_real_repo_passes_check() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "check"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("how", "expected"),
    [("patch", "0.1.1"), ("minor", "0.2.0"), ("major", "1.0.0"), ("0.3.7", "0.3.7")],
)
def test_bump_sets_the_version_and_closes_the_changelog(
    repo: Path, how: str, expected: str
) -> None:
    (about,) = (repo / "packages" / "storage-memory").glob("src/*/__about__.py")
    about.write_text('"""Version."""\n\n__version__ = "0.1.0"\n')
    changelog = write_changelog(repo, "storage-memory", "- Added a thing.\n- Fixed another.\n")
    # --force: past 0.1.x the core's memory extra no longer admits it (tested below).
    result = release(repo, "bump", "storage-memory", how, "--date", "2025-03-04", "--force")
    assert result.returncode == 0, result.stderr
    assert f"0.1.0 -> {expected}" in result.stdout
    assert version_of(repo, "storage-memory") == expected
    assert about.read_text() == f'"""Version."""\n\n__version__ = "{expected}"\n'
    assert changelog.read_text() == (
        "# storage-memory\n\n## Unreleased\n\n"
        f"## {expected} (2025-03-04)\n\n- Added a thing.\n- Fixed another.\n\n"
        "## 0.1.0 (2024-01-01)\n\n- First release.\n"
    )
    # Only that package changed.
    assert version_of(repo, "core") == "0.1.0"


def test_bump_defaults_to_today(repo: Path) -> None:
    changelog = write_changelog(repo, "core", "- Something.\n")
    before = version_of(repo, "core")
    assert release(repo, "bump", "core", "patch").returncode == 0
    # Today as seen just after the run (the bump cannot be from a later day).
    assert f"({datetime.date.today().isoformat()})" in changelog.read_text()
    assert version_of(repo, "core") != before


def test_unreleased_as_the_last_section(repo: Path) -> None:
    path = repo / "packages" / "core" / "CHANGELOG.md"
    path.write_text("# core\n\n## Unreleased\n\n- Only change.\n")
    bumped = release(repo, "bump", "core", "9.0.0", "--date", "2025-01-02", "--force")
    assert bumped.returncode == 0
    assert (
        path.read_text() == "# core\n\n## Unreleased\n\n## 9.0.0 (2025-01-02)\n\n- Only change.\n"
    )


def test_dry_run_writes_nothing(repo: Path) -> None:
    changelog = write_changelog(repo, "storage-memory", "- Added a thing.\n")
    before = changelog.read_text()
    version = version_of(repo, "storage-memory")
    result = release(repo, "bump", "storage-memory", "patch", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "dry run" in result.stdout
    assert changelog.read_text() == before
    assert version_of(repo, "storage-memory") == version


def test_empty_unreleased_is_refused_unless_allowed(repo: Path) -> None:
    changelog = write_changelog(repo, "storage-memory", "")
    version = version_of(repo, "storage-memory")
    refused = release(repo, "bump", "storage-memory", "patch")
    assert refused.returncode == 1
    assert "nothing under '## Unreleased'" in refused.stderr
    assert version_of(repo, "storage-memory") == version
    allowed = release(
        repo, "bump", "storage-memory", "patch", "--allow-empty", "--date", "2025-01-02"
    )
    assert allowed.returncode == 0, allowed.stderr
    assert "(2025-01-02)\n\n- No user-facing changes." in changelog.read_text()


@pytest.mark.parametrize("how", ["0.0.9", "0.1.0", "one.two", "1.2"])
def test_a_version_that_does_not_go_up_is_refused(repo: Path, how: str) -> None:
    write_changelog(repo, "storage-memory", "- Change.\n")
    (about,) = (repo / "packages" / "storage-memory").glob("src/*/__about__.py")
    about.write_text('__version__ = "0.1.0"\n')
    result = release(repo, "bump", "storage-memory", how)
    assert result.returncode == 1
    assert "release: error:" in result.stderr
    assert version_of(repo, "storage-memory") == "0.1.0"


def test_unknown_package_names_the_known_ones(repo: Path) -> None:
    result = release(repo, "bump", "storage-nope", "patch")
    assert result.returncode == 1
    assert "storage-memory" in result.stderr


def _snapshot(repo: Path) -> dict[str, str]:
    return {str(p): p.read_text() for p in sorted((repo / "packages").rglob("*")) if p.is_file()}


@pytest.mark.parametrize("dry_run", [False, True])
def test_bump_refuses_a_core_version_the_adapters_exclude(repo: Path, dry_run: bool) -> None:
    write_changelog(repo, "core", "- Breaking change.\n")
    before = _snapshot(repo)
    result = release(repo, "bump", "core", "minor", *(["--dry-run"] if dry_run else []))
    assert result.returncode == 1
    assert "would break version ranges" in result.stderr
    assert "--force" in result.stderr
    for adapter in ("kv", "memory", "redis", "sqlite"):
        assert (
            f"botstate-storage-{adapter} (packages/storage-{adapter}) requires botstate>=0.1,<0.2"
            in result.stderr
        )
    assert "dry run" not in result.stdout
    assert _snapshot(repo) == before  # nothing written


def test_bump_refuses_an_adapter_version_its_core_extra_excludes(repo: Path) -> None:
    write_changelog(repo, "storage-redis", "- New feature.\n")
    before = _snapshot(repo)
    result = release(repo, "bump", "storage-redis", "minor")
    assert result.returncode == 1
    assert "botstate-storage-redis 0.2.0 would break version ranges" in result.stderr
    assert "botstate[redis] requires botstate-storage-redis>=0.1,<0.2" in result.stderr
    assert _snapshot(repo) == before


def test_bump_within_the_ranges_needs_no_force(repo: Path) -> None:
    write_changelog(repo, "storage-redis", "- Fix.\n")
    result = release(repo, "bump", "storage-redis", "patch", "--date", "2025-01-02")
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stderr
    assert release(repo, "check").returncode == 0


def test_force_bumps_anyway_and_lists_what_it_breaks(repo: Path) -> None:
    write_changelog(repo, "core", "- Breaking change.\n")
    result = release(repo, "bump", "core", "minor", "--force", "--date", "2025-01-02")
    assert result.returncode == 0, result.stderr
    assert version_of(repo, "core") == "0.2.0"
    assert "release: warning (--force): botstate-storage-memory" in result.stderr
    # The state it wrote is exactly what check now refuses.
    checked = release(repo, "check")
    assert checked.returncode == 1
    assert "excludes the core's version 0.2.0" in checked.stderr


def test_bump_checks_against_widened_ranges(repo: Path) -> None:
    for pyproject in (
        p for p in (repo / "packages").glob("*/pyproject.toml") if p.parent.name != "core"
    ):
        pyproject.write_text(
            pyproject.read_text().replace("botstate>=0.1,<0.2", "botstate>=0.1,<0.3")
        )
    write_changelog(repo, "core", "- Breaking change.\n")
    result = release(repo, "bump", "core", "minor", "--date", "2025-01-02")
    assert result.returncode == 0, result.stderr
    assert version_of(repo, "core") == "0.2.0"


def test_check_names_an_adapter_whose_range_excludes_the_core(repo: Path) -> None:
    assert release(repo, "check").returncode == 0
    (about,) = (repo / "packages" / "core").glob("src/*/__about__.py")
    about.write_text('__version__ = "0.2.0"\n')
    result = release(repo, "check")
    assert result.returncode == 1
    assert "botstate-storage-memory" in result.stderr
    assert "excludes the core's version 0.2.0" in result.stderr


def test_check_after_widening_the_range(repo: Path) -> None:
    (about,) = (repo / "packages" / "core").glob("src/*/__about__.py")
    about.write_text('__version__ = "0.2.0"\n')
    for pyproject in (
        p for p in (repo / "packages").glob("*/pyproject.toml") if p.parent.name != "core"
    ):
        pyproject.write_text(
            pyproject.read_text().replace("botstate>=0.1,<0.2", "botstate>=0.1,<0.3")
        )
    core_pyproject = repo / "packages" / "core" / "pyproject.toml"
    assert release(repo, "check").returncode == 0, release(repo, "check").stderr
    # A core extra that no longer admits the adapter's version is named too.
    (mem_about,) = (repo / "packages" / "storage-memory").glob("src/*/__about__.py")
    mem_about.write_text('__version__ = "0.2.0"\n')
    result = release(repo, "check")
    assert result.returncode == 1
    assert "botstate[memory] requires botstate-storage-memory" in result.stderr
    assert core_pyproject.exists()


def test_check_flags_an_adapter_without_botstate_dependency(repo: Path) -> None:
    pyproject = repo / "packages" / "storage-memory" / "pyproject.toml"
    pyproject.write_text(re.sub(r'"botstate>=[^"]*"', '"something-else"', pyproject.read_text()))
    result = release(repo, "check")
    assert result.returncode == 1
    assert "does not depend on botstate" in result.stderr


def test_simple_parser_agrees_with_packaging() -> None:
    sys.path.insert(0, str(ROOT))
    try:
        from tooling.release import _load_contains, _simple_contains, split_requirement
    finally:
        sys.path.remove(str(ROOT))
    contains = _load_contains()
    cases = [
        (">=0.1,<0.2", "0.1.0"),
        (">=0.1,<0.2", "0.1.9"),
        (">=0.1,<0.2", "0.2.0"),
        (">=0.1,<0.2", "0.0.9"),
        ("==1.0", "1.0.0"),
        (">1.0,!=1.5.0", "1.5.0"),
        ("<=2", "2.0.0"),
    ]
    for spec, version in cases:
        assert _simple_contains(spec, version) == contains(spec, version), (spec, version)
    assert split_requirement("botstate >= 0.1, < 0.2") == ("botstate", ">= 0.1, < 0.2")
    assert split_requirement("Botstate_Storage.Redis[hiredis]>=0.1; python_version>'3'") == (
        "botstate-storage-redis",
        ">=0.1",
    )


# -- build-all ------------------------------------------------------------


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), *args],
        check=True,
        capture_output=True,
        timeout=60,
        env={
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@example.invalid",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@example.invalid",
            "HOME": str(repo),
            "PATH": os.environ.get("PATH", ""),
        },
    )


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A committed git checkout holding a full copy of packages/ and the LICENSE."""
    repo = tmp_path / "repo"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "dist", "build")
    for member in members():
        shutil.copytree(member.dir, repo / "packages" / member.dir.name, ignore=ignore)
    shutil.copy(ROOT / "LICENSE", repo / "LICENSE")
    (repo / ".gitignore").write_text("dist/\n")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "release")
    return repo


def _artefacts(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


@pytest.mark.slow
def test_build_all_builds_every_package_with_its_version(checkout: Path) -> None:
    (about,) = (checkout / "packages" / "storage-memory").glob("src/*/__about__.py")
    major, minor, patch = version_of(checkout, "storage-memory").split(".")
    bumped = f"{major}.{minor}.{int(patch) + 7}"  # within every range that admits the current
    about.write_text(about.read_text().replace(version_of(checkout, "storage-memory"), bumped))
    _git(checkout, "commit", "-q", "-am", f"memory {bumped}")
    dist = checkout / "dist"
    dist.mkdir()
    (dist / "botstate_storage_memory-0.1.0-py3-none-any.whl").write_text("stale")
    (dist / "notes.txt").write_text("kept")

    result = release(checkout, "build-all")
    assert result.returncode == 0, result.stderr
    expected = ["notes.txt"]
    for member in members(checkout):
        stem = f"{member.name.replace('-', '_')}-{member.version}"
        expected += [f"{stem}-py3-none-any.whl", f"{stem}.tar.gz"]
    assert _artefacts(dist) == sorted(expected)
    assert f"botstate_storage_memory-{bumped}.tar.gz" in expected
    assert f"{len(members(checkout)) * 2} files in" in result.stdout
    assert "twine check --strict passed" in result.stdout


@pytest.mark.parametrize("change", ["modified", "untracked", "staged"])
def test_build_all_refuses_a_dirty_tree(checkout: Path, change: str) -> None:
    readme = checkout / "packages" / "storage-redis" / "README.md"
    if change == "untracked":
        (checkout / "packages" / "core" / "scratch.py").write_text("x = 1\n")
    else:
        readme.write_text(readme.read_text() + "\nmore\n")
        if change == "staged":
            _git(checkout, "add", "-A")
    result = release(checkout, "build-all")
    assert result.returncode == 1
    assert "uncommitted changes or untracked files" in result.stderr
    assert ("packages/core/scratch.py" if change == "untracked" else "storage-redis/README.md") in (
        result.stderr
    )
    assert not (checkout / "dist").exists()


def test_build_all_refuses_ranges_that_check_refuses(checkout: Path) -> None:
    (about,) = (checkout / "packages" / "core").glob("src/*/__about__.py")
    about.write_text(re.sub(r'"[^"]+"', '"9.0.0"', about.read_text()))
    _git(checkout, "commit", "-q", "-am", "core 9")
    result = release(checkout, "build-all")
    assert result.returncode == 1
    assert "version ranges refuse the versions to release" in result.stderr
    assert "excludes the core's version 9.0.0" in result.stderr
    assert not (checkout / "dist").exists()


def test_build_all_outside_a_git_checkout_is_refused(repo: Path) -> None:
    result = release(repo, "build-all")
    assert result.returncode == 1
    assert "not a git checkout" in result.stderr


@pytest.mark.slow
def test_build_all_allow_dirty_builds_a_trial(checkout: Path, tmp_path: Path) -> None:
    (checkout / "untracked.txt").write_text("x")
    out = tmp_path / "trial"
    result = release(checkout, "build-all", "--allow-dirty", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "--allow-dirty" in result.stderr
    assert len(_artefacts(out)) == 2 * len(members(checkout))
