"""Entry points read without importlib.metadata find what importlib.metadata finds.

``botstate._entry_points`` reads ``*.dist-info`` folders itself so that opening a
storage does not pay for importing importlib.metadata; each test compares it with
importlib.metadata on real folders: the test environment's and ones made here.
"""

from __future__ import annotations

import importlib
import os.path
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

import botstate
from botstate._entry_points import EntryPoint, entry_points
from botstate.plugins import ENTRY_POINT_GROUP

GROUP = "botstate.test_entry_points"


def described(eps: Any) -> list[tuple[str, str, str, str | None, str | None]]:
    return [
        (
            ep.name,
            ep.value,
            ep.group,
            ep.dist.metadata["Name"] if ep.dist else None,
            ep.dist.version if ep.dist else None,
        )
        for ep in eps
    ]


def same_as_importlib(group: str) -> list[tuple[str, str, str, str | None, str | None]]:
    importlib.invalidate_caches()
    ours = described(entry_points(group))
    assert ours == described(metadata.entry_points(group=group))
    return ours


def dist_info(site: Path, folder: str, entry_points_txt: str | None, metadata_text: str) -> None:
    info = site / folder
    info.mkdir(parents=True)
    name = "PKG-INFO" if folder.endswith(".egg-info") else "METADATA"
    (info / name).write_text(metadata_text)
    if entry_points_txt is not None:
        (info / "entry_points.txt").write_text(entry_points_txt)


def test_the_installed_adapters_are_found_as_importlib_finds_them() -> None:
    found = same_as_importlib(ENTRY_POINT_GROUP)
    assert ("memory", "botstate_storage_memory.plugin") in [(n, v) for n, v, *_ in found]
    same_as_importlib("console_scripts")  # a group with many distributions


def test_folders_on_sys_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    dist_info(
        first,
        "demo_plugin-1.0.dist-info",
        f"# a comment\n[console_scripts]\ndemo = demo:main\n\n[{GROUP}]\n"
        f"one = demo_plugin.one\n  two   =   demo_plugin.two:make [extra]\n",
        "Metadata-Version: 2.1\nName: demo-plugin\nVersion: 1.0\nSummary: x\n\nName: body\n",
    )
    # The same distribution again, later on sys.path: importlib.metadata ignores it.
    dist_info(second, "Demo.Plugin-2.0.dist-info", f"[{GROUP}]\nshadowed = x\n", "Name: x\n")
    dist_info(
        second,
        "old_style-0.1.egg-info",
        f"[{GROUP}]\nold = old_style.plugin\n",
        ("Metadata-Version: 1.0\nName: old-style\nVersion: 0.1\n"),
    )
    dist_info(second, "no_meta-3.dist-info", f"[{GROUP}]\nbare = bare\n", "")
    dist_info(second, "other-1.dist-info", "[console_scripts]\nother = other:main\n", "Name: o\n")
    dist_info(second, "no_eps-1.dist-info", None, "Name: no-eps\nVersion: 1\n")
    (second / "single-1.0.egg-info").write_text("Name: single\n")  # a file, not a folder
    monkeypatch.syspath_prepend(str(second))
    monkeypatch.syspath_prepend(str(first))
    monkeypatch.syspath_prepend(str(tmp_path / "missing"))
    found = same_as_importlib(GROUP)
    assert sorted(found) == [
        ("bare", "bare", GROUP, None, None),
        ("old", "old_style.plugin", GROUP, "old-style", "0.1"),
        ("one", "demo_plugin.one", GROUP, "demo-plugin", "1.0"),
        ("two", "demo_plugin.two:make [extra]", GROUP, "demo-plugin", "1.0"),
    ]


def test_a_zip_on_sys_path_is_left_to_importlib(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = tmp_path / "plugins.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("zipped-1.0.dist-info/METADATA", "Name: zipped\nVersion: 1.0\n")
        zf.writestr("zipped-1.0.dist-info/entry_points.txt", f"[{GROUP}]\nz = zipped.plugin\n")
    monkeypatch.syspath_prepend(str(archive))
    assert same_as_importlib(GROUP) == [("z", "zipped.plugin", GROUP, "zipped", "1.0")]


def test_load_imports_the_named_object() -> None:
    assert EntryPoint("j", "os.path:join", GROUP, None).load() is os.path.join
    assert EntryPoint("p", "os.path", GROUP, None).load() is os.path
    assert EntryPoint("e", "os.path : join [extra]", GROUP, None).load() is os.path.join
    with pytest.raises(ValueError, match="malformed entry point value"):
        EntryPoint("bad", "no way:", GROUP, None).load()


def test_opening_memory_does_not_import_importlib_metadata() -> None:
    code = (
        "import sys, botstate; botstate.open_storage('memory://'); "
        "print('importlib.metadata' in sys.modules, 'pluggy' in sys.modules, "
        "'uuid' in sys.modules, 'decimal' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True", "False", "False"]
    code = "import sys, botstate; print('pluggy' in sys.modules, 'urllib.parse' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
    assert "memory" in [info.name for info in botstate.list_adapters()]
