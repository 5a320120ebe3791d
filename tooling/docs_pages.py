"""The documentation pages made from the packages, and the includes of docs pages.

``tooling/mkdocs_hooks.py`` hands these to MkDocs; nothing here imports MkDocs.

- Every package under ``packages/`` gets its pages without anyone listing it:
  a storage or integration page made of its README, an API reference page per
  public module (mkdocstrings), and a changelog page. ``tooling/workspace.py``
  decides the paths; the navigation sections ``Storages``, ``Integrations``,
  ``API reference`` and ``Changelogs`` of mkdocs.yml are filled here.
- A line ``<!-- include: path/to/file.md#Heading -->`` in a page is replaced by
  that section of the file (the text under the heading, up to the next heading
  of the same or a higher level; without ``#Heading``, the whole file). A
  missing file or heading fails the build.
- Links in included text are rewritten so they work on the site: a relative
  link to a package README becomes a link to its page, other relative links
  point to the file on GitHub, and absolute links to the documentation site
  become links between pages, which ``mkdocs build --strict`` then checks.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from pathlib import Path

from tooling.workspace import (
    DOCS_URL,
    REPO_URL,
    ROOT,
    Member,
    changelog_page,
    members,
    reference_page,
)

INCLUDE = re.compile(r"^<!-- include: (?P<path>[^#\s]+)(?:#(?P<heading>[^>]+?))? -->[ \t]*$", re.M)
LINK = re.compile(r"(\]\(\s*<?)([^)\s>]+)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")
# Sections of mkdocs.yml's nav that this hook fills.
GENERATED = ("Storages", "Integrations", "API reference", "Changelogs")
# Repository files that have a page of their own: relative links to them go there.
TEMPLATE_README = "tooling/template/README.md"
TEMPLATE_PAGE = "adapters.md"


class DocsError(Exception):
    """A page that cannot be made: a missing included file or heading."""


def _md(page: str) -> str:
    """``storages/redis/`` -> ``storages/redis.md``; ``""`` -> ``index.md``."""
    return page.rstrip("/") + ".md" if page else "index.md"


def _pages(root: Path) -> dict[str, str]:
    """Repository files (relative to the root) -> the docs page showing them."""
    pages = {TEMPLATE_README: TEMPLATE_PAGE}
    for member in members(root):
        readme = f"packages/{member.dir.name}/README.md"
        pages[readme] = _md(member.page) if member.kind != "core" else "storage.md"
        pages[f"packages/{member.dir.name}/CHANGELOG.md"] = _md(changelog_page(member))
    return pages


def _relative(target: str, page: str) -> str:
    """The link from the page ``page`` (a docs path) to the docs path ``target``."""
    path, _, anchor = target.partition("#")
    rel = posixpath.relpath(path, posixpath.dirname(page) or ".")
    return rel + (f"#{anchor}" if anchor else "")


def rewrite_links(text: str, source: str, page: str, root: Path = ROOT) -> str:
    """Make the links of ``text``, read from the repository file ``source``, work in ``page``."""
    pages = _pages(root)

    def fix(match: re.Match[str]) -> str:
        url = match.group(2)
        if url.startswith(DOCS_URL):
            path, _, anchor = url[len(DOCS_URL) :].partition("#")
            new = _relative(_md(path) + (f"#{anchor}" if anchor else ""), page)
        elif re.match(r"^[a-z][a-z0-9+.-]*:|^#", url):
            return match.group(0)
        else:
            path, _, anchor = url.partition("#")
            file = posixpath.normpath(posixpath.join(posixpath.dirname(source), path))
            if file in pages:
                new = _relative(pages[file] + (f"#{anchor}" if anchor else ""), page)
            elif (root / file).is_dir():
                new = f"{REPO_URL}/tree/main/{file}"
            else:
                new = f"{REPO_URL}/blob/main/{file}" + (f"#{anchor}" if anchor else "")
        return match.group(1) + new

    return _outside_code(text, lambda chunk: LINK.sub(fix, chunk))


def _outside_code(text: str, change: Callable[[str], str]) -> str:
    """Apply ``change`` to the text outside fenced code blocks."""
    out: list[str] = []
    chunk: list[str] = []
    fence: str | None = None
    for line in text.splitlines(keepends=True):
        match = FENCE.match(line)
        if fence is None and match:
            out.append(change("".join(chunk)))
            chunk = []
            fence = match.group(1)
            out.append(line)
        elif fence is not None:
            out.append(line)
            if match and match.group(1) == fence and line.strip() == fence:
                fence = None
        else:
            chunk.append(line)
    out.append(change("".join(chunk)))
    return "".join(out)


def section(text: str, heading: str, where: str) -> str:
    """The body of the section titled ``heading`` (not inside code blocks)."""
    lines = text.splitlines(keepends=True)
    start = level = None
    fence = False
    for index, line in enumerate(lines):
        if FENCE.match(line):
            fence = not fence
            continue
        match = None if fence else HEADING.match(line)
        if match is None:
            continue
        if start is None and match.group(2) == heading:
            start, level = index + 1, len(match.group(1))
        elif start is not None and level is not None and len(match.group(1)) <= level:
            return "".join(lines[start:index]).strip("\n") + "\n"
    if start is None:
        raise DocsError(f"{where}: no heading {heading!r}")
    return "".join(lines[start:]).strip("\n") + "\n"


def expand_includes(markdown: str, page: str, root: Path = ROOT) -> str:
    """Replace the page's include lines by the text they name."""

    def include(match: re.Match[str]) -> str:
        source = match.group("path")
        path = root / source
        if not path.is_file():
            raise DocsError(f"{page}: included file {source} does not exist")
        text = path.read_text(encoding="utf-8")
        if match.group("heading"):
            text = section(text, match.group("heading"), f"{page}: include of {source}")
        else:  # the including page has its own title
            text = re.sub(r"\A# .*\n", "", text).lstrip("\n")
        return rewrite_links(text, source, page, root)

    return INCLUDE.sub(include, markdown)


# -- generated pages --------------------------------------------------------


def _package_page(member: Member, root: Path) -> str:
    source = f"packages/{member.dir.name}/README.md"
    page = _md(member.page)
    text = (member.dir / "README.md").read_text(encoding="utf-8")
    text = rewrite_links(text, source, page, root)
    links = ", ".join(
        f"[`{module}`]({_relative(_md(reference_page(module)), page)})" for module in member.modules
    )
    changes = _relative(_md(changelog_page(member)), page)
    return (
        f"{text.rstrip()}\n\n## Reference\n\n"
        f"API: {links}. [Changelog]({changes}). Install: `pip install {member.name}`; "
        f"source: [packages/{member.dir.name}]({REPO_URL}/tree/main/packages/{member.dir.name}).\n"
    )


def _reference_page(module: str) -> str:
    return f"# `{module}`\n\n::: {module}\n"


def _changelog(member: Member, root: Path) -> str:
    source = f"packages/{member.dir.name}/CHANGELOG.md"
    text = (member.dir / "CHANGELOG.md").read_text(encoding="utf-8")
    text = re.sub(r"\A# .*\n", "", text).lstrip("\n")
    body = rewrite_links(text, source, _md(changelog_page(member)), root)
    return f"# {member.name}\n\n{body}"


def generated_pages(root: Path = ROOT) -> dict[str, str]:
    """Docs path -> markdown of every page made from the packages."""
    pages: dict[str, str] = {}
    for member in members(root):
        if member.kind != "core":
            pages[_md(member.page)] = _package_page(member, root)
        for module in member.modules:
            pages[_md(reference_page(module))] = _reference_page(module)
        pages[_md(changelog_page(member))] = _changelog(member, root)
    return pages


def generated_nav(root: Path = ROOT) -> dict[str, list[dict[str, str]]]:
    """The entries of the nav sections this module fills (``GENERATED``), by title."""
    nav: dict[str, list[dict[str, str]]] = {title: [] for title in GENERATED}
    for member in members(root):
        if member.kind == "storage":
            nav["Storages"].append({member.title: _md(member.page)})
        elif member.kind == "integration":
            nav["Integrations"].append({member.title: _md(member.page)})
        for module in member.modules:
            nav["API reference"].append({module: _md(reference_page(module))})
        nav["Changelogs"].append({member.name: _md(changelog_page(member))})
    return nav
