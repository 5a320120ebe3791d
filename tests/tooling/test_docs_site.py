"""The pages the docs site makes from packages/, and its includes (tooling/docs_pages.py).

The strict build itself (``hatch run docs:build``) runs in tooling/ci.sh; these
tests need no MkDocs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tooling.docs_pages import (
    DocsError,
    expand_includes,
    generated_nav,
    generated_pages,
    rewrite_links,
    section,
)
from tooling.workspace import DOCS_URL, REPO_URL, ROOT, members


def make_package(root: Path, directory: str, dist: str, module: str, readme: str) -> None:
    package = root / "packages" / directory
    (package / "src" / module).mkdir(parents=True)
    (package / "src" / module / "__about__.py").write_text('__version__ = "0.1.0"\n')
    (package / "pyproject.toml").write_text(f'[project]\nname = "{dist}"\n')
    (package / "README.md").write_text(readme)
    (package / "CHANGELOG.md").write_text("# Changelog\n\n## Unreleased\n\n- Started.\n")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    make_package(tmp_path, "core", "botstate", "botstate", "# botstate\n")
    (tmp_path / "packages" / "core" / "src" / "botstate" / "adapter.py").write_text("")
    (tmp_path / "packages" / "core" / "src" / "botstate" / "sync").mkdir()
    make_package(
        tmp_path,
        "storage-foo",
        "botstate-storage-foo",
        "botstate_storage_foo",
        "# botstate-storage-foo\n\nFor [botstate](../core/README.md), see "
        f"[sessions]({DOCS_URL}sessions/#which-key-to-use) and [a file](src/x.py).\n"
        "```python\n[not a link](../core/README.md)\n```\n",
    )
    make_package(tmp_path, "whatsup", "botstate-whatsup", "botstate_whatsup", "# w\n")
    return tmp_path


def test_a_new_package_gets_its_pages_and_nav_entries(root: Path) -> None:
    assert generated_nav(root) == {
        "Storages": [{"botstate-storage-foo": "storages/foo.md"}],
        "Integrations": [{"botstate-whatsup": "integrations/whatsup.md"}],
        "API reference": [
            {"botstate": "reference/botstate.md"},
            {"botstate.adapter": "reference/botstate.adapter.md"},
            {"botstate.sync": "reference/botstate.sync.md"},
            {"botstate_storage_foo": "reference/botstate_storage_foo.md"},
            {"botstate_whatsup": "reference/botstate_whatsup.md"},
        ],
        "Changelogs": [
            {"botstate": "changelog/core.md"},
            {"botstate-storage-foo": "changelog/storage-foo.md"},
            {"botstate-whatsup": "changelog/whatsup.md"},
        ],
    }
    pages = generated_pages(root)
    assert (
        pages["reference/botstate_whatsup.md"] == "# `botstate_whatsup`\n\n::: botstate_whatsup\n"
    )
    assert pages["changelog/whatsup.md"] == "# botstate-whatsup\n\n## Unreleased\n\n- Started.\n"
    storage = pages["storages/foo.md"]
    # README links that work on a package index and on GitHub work on the site too.
    assert "For [botstate](../storage.md)" in storage
    assert "[sessions](../sessions.md#which-key-to-use)" in storage
    assert f"[a file]({REPO_URL}/blob/main/packages/storage-foo/src/x.py)" in storage
    assert "[not a link](../core/README.md)" in storage  # code is left alone
    assert "API: [`botstate_storage_foo`](../reference/botstate_storage_foo.md)" in storage
    assert "[Changelog](../changelog/storage-foo.md)" in storage


def test_section_stops_at_the_next_heading_of_its_level() -> None:
    text = "# T\n\n## A\n\none\n```toml\n# not a heading\n```\n### A.1\n\ntwo\n## B\n\nthree\n"
    assert section(text, "A", "t") == "one\n```toml\n# not a heading\n```\n### A.1\n\ntwo\n"
    assert section(text, "B", "t") == "three\n"
    with pytest.raises(DocsError, match="no heading 'C'"):
        section(text, "C", "t")
    with pytest.raises(DocsError, match="no heading 'not a heading'"):
        section(text, "not a heading", "t")


def test_includes_expand_with_links_fixed(root: Path) -> None:
    (root / "README.md").write_text(
        "# r\n\n## Use\n\nSee [core](packages/core/README.md) and [tpl](tooling/template).\n"
    )
    (root / "tooling" / "template").mkdir(parents=True)
    page = "guide/use.md"
    out = expand_includes("# Use\n\n<!-- include: README.md#Use -->\n\nEnd.\n", page, root)
    assert out == (
        "# Use\n\nSee [core](../storage.md) and "
        f"[tpl]({REPO_URL}/tree/main/tooling/template).\n\n\nEnd.\n"
    )
    whole = expand_includes("<!-- include: packages/whatsup/README.md -->", page, root)
    assert whole == ""  # the included file's own title is dropped
    with pytest.raises(DocsError, match=r"missing\.md does not exist"):
        expand_includes("<!-- include: missing.md -->", page, root)


PAGES = sorted(p.relative_to(ROOT / "docs") for p in (ROOT / "docs").rglob("*.md"))


@pytest.mark.parametrize("page", PAGES, ids=[p.as_posix() for p in PAGES])
def test_every_include_of_the_site_resolves(page: Path) -> None:
    text = (ROOT / "docs" / page).read_text(encoding="utf-8")
    expanded = expand_includes(text, page.as_posix())
    assert "<!-- include:" not in expanded


def test_the_real_packages_all_have_pages() -> None:
    pages = generated_pages()
    for member in members():
        if member.kind != "core":
            assert f"{member.page.rstrip('/')}.md" in pages
        assert f"changelog/{member.dir.name}.md" in pages
    assert {"reference/botstate.md", "reference/botstate.adapter.md"} <= set(pages)
    assert "reference/botstate.testing.md" in pages


def test_rewrite_keeps_other_absolute_links() -> None:
    text = "[a](https://example.org/x) [b](#local) [c](mailto:x@example.org)"
    assert rewrite_links(text, "README.md", "index.md") == text
