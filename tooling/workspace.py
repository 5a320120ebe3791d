"""The distributions of this monorepo, as release.py, the packaging tests and the docs see them.

Every ``packages/<dir>/pyproject.toml`` is one distribution; nothing lists them by
hand, so a new package is built, checked and documented as soon as its directory
exists. Its place in the documentation follows from the directory name:

- ``core``: the ``botstate`` distribution, documented by the guide pages;
- ``storage-<name>``: a storage adapter, page ``storages/<name>/``;
- any other ``<dir>``: a framework integration, page ``integrations/<dir>/``.

Each has an API reference page ``reference/<module>/`` (the core one per public
namespace) and a changelog page ``changelog/<dir>/``. The published metadata
(project URLs) points at the same pages, so the two cannot drift apart.
"""

from __future__ import annotations

import importlib
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
REPO_URL = "https://github.com/botstate/botstate"
DOCS_URL = "https://botstate.readthedocs.io/en/latest/"
AUTHORS = "the botstate authors"
LICENSE = "LICENSE"

CORE_DIR = "core"
STORAGE_PREFIX = "storage-"
# The core's public namespaces with a reference page each, when the module exists.
CORE_MODULES = ("botstate", "botstate.adapter", "botstate.testing", "botstate.sync")


def _toml() -> Any:
    return importlib.import_module("tomllib" if sys.version_info >= (3, 11) else "tomli")


@dataclass(frozen=True)
class Member:
    """One distribution under ``packages/``."""

    dir: Path
    name: str
    """The distribution name, e.g. ``botstate-storage-redis``."""
    module: str
    """The top-level import name, e.g. ``botstate_storage_redis``."""
    project: dict[str, Any] = field(compare=False, repr=False)
    """The ``[project]`` table of its ``pyproject.toml``."""

    @property
    def kind(self) -> str:
        """``core``, ``storage`` or ``integration``."""
        if self.dir.name == CORE_DIR:
            return "core"
        return "storage" if self.dir.name.startswith(STORAGE_PREFIX) else "integration"

    @property
    def slug(self) -> str:
        """Its name in page paths: ``redis`` for ``storage-redis``, ``aiogram`` for ``aiogram``."""
        return self.dir.name.removeprefix(STORAGE_PREFIX)

    @property
    def title(self) -> str:
        """Its page title, ``botstate-storage-redis``: the name users install."""
        return self.name

    @property
    def page(self) -> str:
        """Its documentation page (a path in the site, '' for the home page)."""
        if self.kind == "core":
            return ""
        return f"{'storages' if self.kind == 'storage' else 'integrations'}/{self.slug}/"

    @property
    def modules(self) -> list[str]:
        """The modules with an API reference page."""
        if self.kind != "core":
            return [self.module]
        source = self.dir / "src"
        return [
            name
            for name in CORE_MODULES
            if (source / Path(*name.split("."))).is_dir()
            or (source / Path(*name.split("."))).with_suffix(".py").is_file()
        ]

    @property
    def urls(self) -> dict[str, str]:
        """The project URLs its ``pyproject.toml`` must declare."""
        return {
            "Homepage": REPO_URL,
            "Documentation": DOCS_URL + self.page,
            "Source": f"{REPO_URL}/tree/main/packages/{self.dir.name}",
            "Changelog": f"{REPO_URL}/blob/main/packages/{self.dir.name}/CHANGELOG.md",
            "Issues": f"{REPO_URL}/issues",
        }

    @property
    def version(self) -> str:
        """The version in its ``src/<module>/__about__.py``."""
        about = self.dir / "src" / self.module / "__about__.py"
        match = re.search(r'^__version__\s*=\s*["\']([^"\']+)["\']', about.read_text(), re.M)
        if match is None:
            raise ValueError(f"no __version__ = '...' line in {about}")
        return match.group(1)


def members(root: Path = ROOT) -> list[Member]:
    """Every distribution under ``root/packages``, the core first, then by directory name."""
    found = []
    for pyproject in sorted((root / "packages").glob("*/pyproject.toml")):
        directory = pyproject.parent
        project = _toml().loads(pyproject.read_text(encoding="utf-8"))["project"]
        abouts = sorted((directory / "src").glob("*/__about__.py"))
        if len(abouts) != 1:
            raise ValueError(f"expected one src/<module>/__about__.py in {directory}")
        found.append(Member(directory, project["name"], abouts[0].parent.name, project))
    order = {"core": 0, "storage": 1, "integration": 2}
    return sorted(found, key=lambda m: (order[m.kind], m.dir.name))


def reference_page(module: str) -> str:
    """The API reference page of a module: ``reference/botstate.adapter/``."""
    return f"reference/{module}/"


def changelog_page(member: Member) -> str:
    return f"changelog/{member.dir.name}/"
