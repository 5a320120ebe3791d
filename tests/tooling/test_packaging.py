"""Every distribution under packages/ is ready to publish.

The metadata tests read each ``pyproject.toml``; the build tests build every
sdist and wheel once (``tooling.release.build_package``, the same builder as
``release.py build-all``) into a temporary directory, run ``twine check
--strict`` on them and look inside. Packages are found by directory, so a new
one is checked as soon as it exists.
"""

from __future__ import annotations

import re
import tarfile
import zipfile
from email.message import Message
from email.parser import Parser
from pathlib import Path

import pytest
import trove_classifiers

from tooling import release
from tooling.workspace import AUTHORS, LICENSE, ROOT, Member, members

MEMBERS = members()
IDS = [m.dir.name for m in MEMBERS]
PYTHONS = ("3.10", "3.11", "3.12", "3.13")
REQUIRED_CLASSIFIERS = {
    "Development Status :: 3 - Alpha",
    "Intended Audience :: Developers",
    "Programming Language :: Python :: 3",
    "Programming Language :: Python :: 3 :: Only",
    "Typing :: Typed",
    *(f"Programming Language :: Python :: {v}" for v in PYTHONS),
}
# Markdown links, reference definitions and HTML attributes: a package index shows the
# README outside the repository, so every target must be an absolute URL.
LINK_TARGETS = re.compile(
    r"\]\(\s*<?([^)\s>]+)|^\s*\[[^\]]+\]:\s*<?(\S+?)>?\s*$|(?:href|src)\s*=\s*[\"']([^\"']+)",
    re.MULTILINE,
)


def _toml(path: Path) -> dict[str, object]:
    return release._toml().loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def test_packages_are_found() -> None:
    kinds = {m.dir.name: m.kind for m in MEMBERS}
    assert kinds["core"] == "core"
    assert {"storage-memory", "storage-sqlite", "storage-redis", "storage-kv"} <= set(kinds)
    assert all(kinds[d] == "storage" for d in kinds if d.startswith("storage-"))


def test_the_root_license_is_mit_by_the_botstate_authors() -> None:
    text = (ROOT / LICENSE).read_text(encoding="utf-8")
    assert text.startswith("MIT License\n")
    assert re.search(rf"^Copyright \(c\) \d{{4}}(-\d{{4}})? {AUTHORS}$", text, re.MULTILINE)


@pytest.mark.parametrize("member", MEMBERS, ids=IDS)
def test_license_file_is_the_root_one(member: Member) -> None:
    copy = member.dir / LICENSE
    assert copy.is_file(), f"cp {LICENSE} packages/{member.dir.name}/ (hatchling ships it)"
    assert copy.read_bytes() == (ROOT / LICENSE).read_bytes(), (
        f"packages/{member.dir.name}/{LICENSE} differs from the root {LICENSE}: copy it again"
    )
    assert member.project["license"] == "MIT"
    assert member.project["license-files"] == [LICENSE]


@pytest.mark.parametrize("member", MEMBERS, ids=IDS)
def test_metadata(member: Member) -> None:
    project = member.project
    assert project["authors"] == [{"name": AUTHORS}]
    assert project["urls"] == member.urls
    assert project["requires-python"] == ">=3.10"
    keywords = project["keywords"]
    assert isinstance(keywords, list)
    assert len(keywords) >= 3
    assert len(set(keywords)) == len(keywords)
    classifiers = project["classifiers"]
    assert isinstance(classifiers, list)
    unknown = [c for c in classifiers if c not in trove_classifiers.classifiers]
    assert not unknown, f"not in trove-classifiers: {unknown}"
    assert set(classifiers) >= REQUIRED_CLASSIFIERS, REQUIRED_CLASSIFIERS - set(classifiers)
    versions = {c.rsplit(" :: ", 1)[1] for c in classifiers if re.match(r".*:: 3\.\d+$", c)}
    assert versions == set(PYTHONS)
    # The SPDX expression says it; PEP 639 forbids license classifiers beside it.
    assert not [c for c in classifiers if c.startswith("License ::")]
    assert classifiers == sorted(classifiers)
    if member.kind == "storage":
        assert "Topic :: Database" in classifiers
    if member.kind != "integration":  # an integration of a synchronous framework is not
        assert "Framework :: AsyncIO" in classifiers
    build = _toml(member.dir / "pyproject.toml")["build-system"]
    assert build == {"requires": ["hatchling>=1.27"], "build-backend": "hatchling.build"}


@pytest.mark.parametrize("member", MEMBERS, ids=IDS)
def test_package_files(member: Member) -> None:
    assert (member.dir / "src" / member.module / "py.typed").is_file()
    assert (member.dir / "CHANGELOG.md").is_file()
    assert member.project["readme"] == "README.md"


@pytest.mark.parametrize(
    "readme",
    [m.dir / "README.md" for m in MEMBERS] + [ROOT / "tooling" / "template" / "README.md"],
    ids=[*IDS, "template"],
)
def test_readme_links_work_on_a_package_index(readme: Path) -> None:
    text = readme.read_text(encoding="utf-8")
    targets = [next(filter(None, m.groups())) for m in LINK_TARGETS.finditer(text)]
    relative = [t for t in targets if not t.startswith(("https://", "mailto:"))]
    assert not relative, f"{readme.relative_to(ROOT)}: links that break off GitHub: {relative}"
    assert "root README" not in text


def test_link_check_sees_relative_links() -> None:
    text = "[a](../core) [b](https://x.io/) <img src='logo.png'>\n[ref]: docs/x.md\n"
    found = [next(filter(None, m.groups())) for m in LINK_TARGETS.finditer(text)]
    assert found == ["../core", "https://x.io/", "logo.png", "docs/x.md"]


# -- built artefacts ------------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    """Every package's sdist and wheel, built once from the working tree."""
    out = tmp_path_factory.mktemp("dist")
    return {
        m.dir.name: release.build_package(release.load_package(ROOT, m.dir.name), out)
        for m in MEMBERS
    }


def _metadata(text: str) -> Message:
    return Parser().parsestr(text)


@pytest.mark.slow
def test_twine_check_strict_passes_for_every_artefact(built: dict[str, list[Path]]) -> None:
    files = [f for pair in built.values() for f in pair]
    assert len(files) == 2 * len(MEMBERS)
    release.twine_check(files)  # raises with twine's output on a failure


@pytest.mark.slow
@pytest.mark.parametrize("member", MEMBERS, ids=IDS)
def test_wheel_and_sdist_carry_license_and_urls(
    member: Member, built: dict[str, list[Path]]
) -> None:
    license_text = (ROOT / LICENSE).read_text(encoding="utf-8")
    sdist, wheel = built[member.dir.name]
    stem = release._file_stem(member.name, member.version)
    assert sdist.name == f"{stem}.tar.gz"
    assert wheel.name.startswith(f"{stem}-")

    with zipfile.ZipFile(wheel) as zf:
        dist_info = f"{stem}.dist-info"
        assert zf.read(f"{dist_info}/licenses/{LICENSE}").decode() == license_text
        wheel_meta = _metadata(zf.read(f"{dist_info}/METADATA").decode())
        assert f"{member.module}/py.typed" in zf.namelist()
    with tarfile.open(sdist) as tf:
        member_file = tf.extractfile(f"{stem}/{LICENSE}")
        assert member_file is not None
        assert member_file.read().decode() == license_text
        pkg_info = tf.extractfile(f"{stem}/PKG-INFO")
        assert pkg_info is not None
        sdist_meta = _metadata(pkg_info.read().decode())

    for meta in (wheel_meta, sdist_meta):
        assert meta["Name"] == member.name
        assert meta["Version"] == member.version
        assert meta["License-Expression"] == "MIT"
        assert meta.get_all("License-File") == [LICENSE]
        assert meta["Author"] == AUTHORS
        urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL") or [])
        assert urls == member.urls
        assert set(meta.get_all("Classifier") or []) == set(member.project["classifiers"])
        assert meta["Keywords"]
        assert meta["Description-Content-Type"] == "text/markdown"
        assert (member.dir / "README.md").read_text(encoding="utf-8").strip() in (
            meta.get_payload() or ""
        )
