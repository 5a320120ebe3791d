"""Release helper: bump one package's version and check the core/adapter version ranges.

    python tooling/release.py bump storage-redis patch          # 0.1.0 -> 0.1.1
    python tooling/release.py bump core 0.2.0 --dry-run          # show, change nothing
    python tooling/release.py bump core minor --force            # even if ranges exclude it
    python tooling/release.py check                              # ranges admit current versions
    python tooling/release.py build-all                          # every sdist and wheel into dist/

``bump`` rewrites ``packages/<dir>/src/<pkg>/__about__.py`` and moves the notes
under ``## Unreleased`` in ``packages/<dir>/CHANGELOG.md`` to a new
``## X.Y.Z (YYYY-MM-DD)`` section, leaving ``## Unreleased`` empty. It refuses a
release without notes (``--allow-empty`` overrides), a version that does not
go up, and (``--force`` overrides) a version that ``check`` would then refuse:
the core at 0.2.0 while adapters require ``botstate<0.2``, or an adapter past
the range of its core extra. ``check`` fails, naming the package, when an
adapter's ``botstate`` requirement does not admit the core's version, or when a
core extra does not admit the adapter version it names.

``build-all`` builds the sdist and the wheel (from the sdist) of every package
under ``packages/`` into ``dist/`` (``--out``), each with the version in its
``__about__.py``, and runs ``twine check --strict`` on them. It refuses a tree
with uncommitted changes or untracked files (a release is built from a commit;
``--allow-dirty`` overrides, for a trial) and version ranges that ``check``
refuses; it removes the sdists and wheels already in the output directory
first, so ``dist/`` holds exactly one release of each package. Run it in the
dev environment (``hatch run python tooling/release.py build-all``): it needs
``uv`` or ``build``, and ``twine``.

Exit codes: 0 ok, 1 check/bump/build refused, 2 usage error.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CORE_DIR = "core"
CORE_DIST = "botstate"

_VERSION_LINE = re.compile(r'^(__version__\s*=\s*)(["\'])([^"\']+)\2', re.MULTILINE)
_RELEASE = re.compile(r"^\d+\.\d+\.\d+$")
_HEADING = re.compile(r"^## (.+?)[ \t]*$", re.MULTILINE)
_UNRELEASED = "Unreleased"


class ReleaseError(Exception):
    """A bump or check that must not go ahead; the message says why."""


class RangeError(ReleaseError):
    """A bump whose new version a package's version range would not admit."""

    def __init__(self, message: str, problems: list[str]) -> None:
        super().__init__(message)
        self.problems = problems


# -- versions -------------------------------------------------------------


def parse_release(text: str) -> tuple[int, int, int]:
    if not _RELEASE.match(text):
        raise ReleaseError(f"{text!r} is not a release version X.Y.Z")
    major, minor, patch = (int(part) for part in text.split("."))
    return major, minor, patch


def next_version(current: str, how: str) -> str:
    """``how`` is ``major``, ``minor``, ``patch`` or an explicit ``X.Y.Z`` above ``current``."""
    major, minor, patch = parse_release(current)
    if how == "major":
        return f"{major + 1}.0.0"
    if how == "minor":
        return f"{major}.{minor + 1}.0"
    if how == "patch":
        return f"{major}.{minor}.{patch + 1}"
    if parse_release(how) <= (major, minor, patch):
        raise ReleaseError(f"new version {how} is not above the current {current}")
    return how


def _load_contains() -> Callable[[str, str], bool]:
    """``contains(specifier, version)``: ``packaging`` when installed, else a small parser."""
    try:
        from packaging.specifiers import SpecifierSet
        from packaging.version import Version
    except ImportError:
        return _simple_contains

    def contains(specifier: str, version: str) -> bool:
        return SpecifierSet(specifier).contains(Version(version), prereleases=True)

    return contains


_OPS: dict[str, Callable[[tuple[int, ...], tuple[int, ...]], bool]] = {
    ">=": lambda v, b: v >= b,
    "<=": lambda v, b: v <= b,
    "==": lambda v, b: v == b,
    "!=": lambda v, b: v != b,
    ">": lambda v, b: v > b,
    "<": lambda v, b: v < b,
}


def _simple_contains(specifier: str, version: str) -> bool:
    """Enough of PEP 440 for ``>=0.1,<0.2`` style ranges of plain release numbers."""

    def key(text: str) -> tuple[int, ...]:
        parts = [int(p) for p in text.strip().split(".")]
        while len(parts) > 1 and parts[-1] == 0:
            parts.pop()
        return tuple(parts)

    for clause in filter(None, (c.strip() for c in specifier.split(","))):
        match = re.match(r"^(>=|<=|==|!=|>|<)\s*([\d.]+)$", clause)
        if match is None:
            raise ReleaseError(f"cannot read version clause {clause!r} (install packaging)")
        if not _OPS[match.group(1)](key(version), key(match.group(2))):
            return False
    return True


def split_requirement(requirement: str) -> tuple[str, str]:
    """``"botstate>=0.1,<0.2"`` -> ``("botstate", ">=0.1,<0.2")`` (extras and markers dropped)."""
    requirement = requirement.split(";", 1)[0].strip()
    match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*)$", requirement)
    if match is None:
        raise ReleaseError(f"cannot read requirement {requirement!r}")
    name = re.sub(r"[-_.]+", "-", match.group(1)).lower()
    return name, match.group(3).strip().strip("()")


# -- packages -------------------------------------------------------------


@dataclass
class Package:
    dir: Path
    name: str  # distribution name
    about: Path
    project: dict[str, Any]

    @property
    def version(self) -> str:
        match = _VERSION_LINE.search(self.about.read_text(encoding="utf-8"))
        if match is None:
            raise ReleaseError(f"no __version__ = '...' line in {self.about}")
        return match.group(3)


def _toml() -> Any:
    return importlib.import_module("tomllib" if sys.version_info >= (3, 11) else "tomli")


def load_package(root: Path, dir_name: str) -> Package:
    directory = root / "packages" / dir_name
    pyproject = directory / "pyproject.toml"
    if not pyproject.is_file():
        known = ", ".join(p.name for p in package_dirs(root))
        raise ReleaseError(f"no package directory packages/{dir_name} (known: {known})")
    project = _toml().loads(pyproject.read_text(encoding="utf-8"))["project"]
    abouts = sorted((directory / "src").glob("*/__about__.py"))
    if len(abouts) != 1:
        raise ReleaseError(f"expected one src/<pkg>/__about__.py in packages/{dir_name}")
    return Package(directory, project["name"], abouts[0], project)


def package_dirs(root: Path) -> list[Path]:
    return sorted(p.parent for p in (root / "packages").glob("*/pyproject.toml"))


# -- bump -----------------------------------------------------------------


def release_changelog(text: str, version: str, date: str, *, allow_empty: bool) -> str:
    """Move the body of ``## Unreleased`` under a new ``## version (date)`` heading."""
    headings = list(_HEADING.finditer(text))
    index = next(
        (i for i, h in enumerate(headings) if h.group(1).lower() == _UNRELEASED.lower()), None
    )
    if index is None:
        raise ReleaseError("CHANGELOG.md has no '## Unreleased' section")
    heading = headings[index]
    for other in headings:
        if other.group(1).split()[0] == version:
            raise ReleaseError(f"CHANGELOG.md already has a section for {version}")
    body_start = heading.end()
    body_end = headings[index + 1].start() if index + 1 < len(headings) else len(text)
    notes = text[body_start:body_end].strip("\n")
    if not notes.strip():
        if not allow_empty:
            raise ReleaseError(
                "nothing under '## Unreleased' in CHANGELOG.md: add release notes first "
                "(or pass --allow-empty)"
            )
        notes = "- No user-facing changes."
    rest = text[body_end:]
    released = f"## {version} ({date})\n\n{notes}\n"
    return text[:body_start] + "\n\n" + released + ("\n" + rest if rest else "")


def bump(
    root: Path,
    dir_name: str,
    how: str,
    *,
    dry_run: bool,
    date: str,
    allow_empty: bool,
    force: bool = False,
) -> tuple[str, list[str]]:
    """Bump one package; return what was done and the range problems ``--force`` let through."""
    package = load_package(root, dir_name)
    current = package.version
    new = next_version(current, how)
    problems = check(root, assume={dir_name: new})
    if problems and not force:
        raise RangeError(
            f"{package.name} {new} would break version ranges (widen them first, or pass --force):",
            problems,
        )
    changelog = package.dir / "CHANGELOG.md"
    if not changelog.is_file():
        raise ReleaseError(f"packages/{dir_name} has no CHANGELOG.md")
    new_changelog = release_changelog(
        changelog.read_text(encoding="utf-8"), new, date, allow_empty=allow_empty
    )
    about_text = package.about.read_text(encoding="utf-8")
    new_about = _VERSION_LINE.sub(
        lambda m: f"{m.group(1)}{m.group(2)}{new}{m.group(2)}", about_text, 1
    )
    if not dry_run:
        package.about.write_text(new_about, encoding="utf-8")
        changelog.write_text(new_changelog, encoding="utf-8")
    done = f"{package.name}: {current} -> {new}" + (
        " (dry run, nothing written)" if dry_run else ""
    )
    return done, problems


# -- check ----------------------------------------------------------------


def check(root: Path, *, assume: Mapping[str, str] | None = None) -> list[str]:
    """Return the problems found; an empty list means every range admits the current versions.

    ``assume`` maps package directory names to versions to check instead of the
    ones on disk (what ``bump`` is about to write).
    """
    assumed = dict(assume or {})

    def version_of(package: Package) -> str:
        return assumed.get(package.dir.name) or package.version

    contains = _load_contains()
    core = load_package(root, CORE_DIR)
    core_version = version_of(core)
    problems: list[str] = []
    versions: dict[str, str] = {}
    for directory in package_dirs(root):
        if directory.name == CORE_DIR:
            continue
        package = load_package(root, directory.name)
        versions[split_requirement(package.name)[0]] = version_of(package)
        ranges = [
            spec
            for name, spec in map(split_requirement, package.project.get("dependencies", []))
            if name == CORE_DIST
        ]
        if not ranges:
            problems.append(
                f"{package.name} (packages/{directory.name}) does not depend on botstate"
            )
        for spec in ranges:
            if not contains(spec, core_version):
                problems.append(
                    f"{package.name} (packages/{directory.name}) requires botstate{spec}, "
                    f"which excludes the core's version {core_version}"
                )
    for extra, requirements in core.project.get("optional-dependencies", {}).items():
        for requirement in requirements:
            name, spec = split_requirement(requirement)
            if name in versions and not contains(spec, versions[name]):
                problems.append(
                    f"botstate[{extra}] requires {name}{spec}, which excludes its version "
                    f"{versions[name]} (packages/core/pyproject.toml)"
                )
    return problems


# -- build-all ------------------------------------------------------------


def dirty_paths(root: Path) -> list[str]:
    """What ``git status --porcelain`` lists: changed, staged and untracked paths."""
    try:
        result = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=all"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    except FileNotFoundError as err:
        raise ReleaseError("git is not installed; build-all needs it to check the tree") from err
    if result.returncode != 0:
        raise ReleaseError(
            f"{root} is not a git checkout ({result.stderr.strip()}); "
            "build-all builds releases from committed files only"
        )
    return [line[3:] for line in result.stdout.splitlines() if line.strip()]


def _builder() -> list[str]:
    """The build command, to be followed by the output directory and the source."""
    uv = shutil.which("uv")
    if uv:
        return [uv, "build", "--quiet", "--out-dir"]
    return [sys.executable, "-m", "build", "--outdir"]


def _file_stem(name: str, version: str) -> str:
    """Artefact file names start with this (PEP 427 / PEP 625 name normalization)."""
    return f"{re.sub(r'[-_.]+', '_', name).lower()}-{version}"


def build_package(package: Package, out: Path) -> list[Path]:
    """Build ``package``'s sdist and wheel into ``out``; return the two files.

    Fails when the files do not carry the version of the package's ``__about__.py``.
    """
    version = package.version
    stem = _file_stem(package.name, version)
    with tempfile.TemporaryDirectory(prefix="botstate-build-") as tmp:
        result = subprocess.run(
            [*_builder(), tmp, str(package.dir)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if result.returncode != 0:
            raise ReleaseError(
                f"building {package.name} failed:\n{(result.stderr or result.stdout).strip()}"
            )
        built = sorted(Path(tmp).iterdir())
        sdists = [p for p in built if p.name.endswith(".tar.gz")]
        wheels = [p for p in built if p.suffix == ".whl"]
        if [p.name for p in sdists] != [f"{stem}.tar.gz"] or not (
            len(wheels) == 1 and wheels[0].name.startswith(f"{stem}-")
        ):
            raise ReleaseError(
                f"{package.name}: expected {stem}.tar.gz and one {stem}-*.whl "
                f"(version {version} from {package.about.name}), the build gave "
                f"{', '.join(p.name for p in built) or 'nothing'}"
            )
        out.mkdir(parents=True, exist_ok=True)
        return [Path(shutil.move(str(p), str(out / p.name))) for p in (*sdists, *wheels)]


def twine_check(files: Sequence[Path]) -> None:
    """``twine check --strict`` on ``files``: metadata complete, README renders."""
    result = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_COLOR": "1"},
    )
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()
        if "No module named twine" in output:
            raise ReleaseError(
                "twine is not installed: run in the dev environment "
                "(hatch run python tooling/release.py build-all)"
            )
        raise ReleaseError(f"twine check --strict failed:\n{output}")


def build_all(root: Path, out: Path, *, allow_dirty: bool = False) -> list[Path]:
    """Build every package's sdist and wheel into ``out``; return the files written."""
    if not allow_dirty:
        dirty = dirty_paths(root)
        if dirty:
            shown = "\n".join(f"  {path}" for path in dirty[:20])
            more = f"\n  ... and {len(dirty) - 20} more" if len(dirty) > 20 else ""
            raise ReleaseError(
                "the tree has uncommitted changes or untracked files; commit or remove them "
                f"first (or pass --allow-dirty for a trial build):\n{shown}{more}"
            )
    problems = check(root)
    if problems:
        raise RangeError("version ranges refuse the versions to release:", problems)
    if out.exists():
        for stale in sorted(out.iterdir()):
            if stale.is_file() and stale.name.endswith((".whl", ".tar.gz")):
                stale.unlink()
    files: list[Path] = []
    for directory in package_dirs(root):
        files += build_package(load_package(root, directory.name), out)
    twine_check(files)
    return files


# -- command line ---------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tooling/release.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("bump", help="bump one package's version and close its changelog")
    p.add_argument("package", help="directory name under packages/, e.g. storage-redis")
    p.add_argument("version", help="major, minor, patch or an explicit X.Y.Z")
    p.add_argument("--dry-run", action="store_true", help="show the new version, write nothing")
    p.add_argument("--allow-empty", action="store_true", help="release without changelog notes")
    p.add_argument("--date", default=None, help="release date (YYYY-MM-DD, default today)")
    p.add_argument(
        "--force", action="store_true", help="bump even if a version range would exclude it"
    )
    commands.add_parser("check", help="check that version ranges admit the current versions")
    p = commands.add_parser("build-all", help="build every sdist and wheel into dist/")
    p.add_argument("--out", type=Path, default=None, help="output directory (default dist/)")
    p.add_argument(
        "--allow-dirty", action="store_true", help="build even with uncommitted changes (trial)"
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "build-all":
            out = args.out if args.out is not None else args.root / "dist"
            if args.allow_dirty:
                print("release: warning: --allow-dirty, the tree is not checked", file=sys.stderr)
            files = build_all(args.root, out, allow_dirty=args.allow_dirty)
            for path in files:
                print(path)
            print(f"release: {len(files)} files in {out}, twine check --strict passed")
            return 0
        if args.command == "bump":
            date = args.date or datetime.date.today().isoformat()
            datetime.date.fromisoformat(date)
            done, forced = bump(
                args.root,
                args.package,
                args.version,
                dry_run=args.dry_run,
                date=date,
                allow_empty=args.allow_empty,
                force=args.force,
            )
            print(done)
            for problem in forced:
                print(f"release: warning (--force): {problem}", file=sys.stderr)
            return 0
        problems = check(args.root)
    except RangeError as err:
        print(f"release: error: {err}", file=sys.stderr)
        for problem in err.problems:
            print(f"release:   {problem}", file=sys.stderr)
        return 1
    except (ReleaseError, ValueError) as err:
        print(f"release: error: {err}", file=sys.stderr)
        return 1
    for problem in problems:
        print(f"release: {problem}", file=sys.stderr)
    if problems:
        return 1
    print("release: every adapter's botstate range admits the core's version")
    return 0


if __name__ == "__main__":
    sys.exit(main())
