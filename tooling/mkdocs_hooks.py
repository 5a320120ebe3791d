"""MkDocs hooks (``hooks:`` in mkdocs.yml): the pages made from the packages, and includes.

What the pages are is decided in ``tooling/docs_pages.py`` (importable without
MkDocs, and tested); this module hands them to MkDocs.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Not installed in the lint environment; `hatch run docs:build` exercises this module.
from mkdocs.exceptions import PluginError  # type: ignore[import-not-found]  # noqa: E402
from mkdocs.structure.files import File, Files  # type: ignore[import-not-found]  # noqa: E402

from tooling.docs_pages import (  # noqa: E402
    DocsError,
    expand_includes,
    generated_nav,
    generated_pages,
)


def on_config(config: Any) -> Any:
    """Fill the nav sections ``Storages``, ``Integrations``, ``API reference``, ``Changelogs``."""
    generated = generated_nav()
    nav = []
    for item in config["nav"]:
        title = next(iter(item)) if isinstance(item, dict) and len(item) == 1 else None
        if title in generated:
            if generated[title]:
                nav.append({title: generated[title]})
            continue
        nav.append(item)
    config["nav"] = nav
    return config


def on_files(files: Files, config: Any) -> Files:
    """Add the pages made from the packages."""
    for path, content in generated_pages().items():
        if files.get_file_from_path(path) is not None:
            raise PluginError(f"docs/{path} exists but is generated from the packages: remove it")
        files.append(File.generated(config, path, content=content))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    """Expand the page's ``<!-- include: ... -->`` lines."""
    try:
        return expand_includes(markdown, page.file.src_uri)
    except DocsError as err:
        raise PluginError(str(err)) from err
