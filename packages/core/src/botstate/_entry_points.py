"""Entry points of one group, read from the ``*.dist-info`` folders on ``sys.path``.

Importing :mod:`importlib.metadata` costs more than the rest of botstate
(zipfile, email, pathlib, csv ...: about half of ``import botstate`` +
``open_storage("memory://")`` on a cold start), and every bot pays it once at
start-up to find its adapter. Distributions installed the usual way (pip, uv,
hatch editable installs) are ``*.dist-info`` or ``*.egg-info`` folders inside
the folders of ``sys.path``; those are read here with :func:`os.listdir` and a
few lines of parsing, following the rules of :mod:`importlib.metadata`: path
order, the first distribution of a (normalized) name wins, ``entry_points.txt``
in its ini format. Any other layout (a zip file or an ``.egg`` on ``sys.path``,
a meta-path finder that finds distributions of its own, a file this reader does
not understand) is handed to :mod:`importlib.metadata`, which stays the
reference: :func:`entry_points` never returns less than it would.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable
from typing import Any

__all__ = ["Distribution", "EntryPoint", "entry_points"]

_INFO_SUFFIXES = (".dist-info", ".egg-info")
# importlib.metadata.EntryPoint.pattern: "module[:attr.attr] [extras]".
_VALUE = re.compile(r"(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?((?P<extras>\[.*\])\s*)?$")


class _Unsupported(Exception):
    """A layout this reader leaves to importlib.metadata."""


class _Headers(dict[str, str]):
    """Metadata headers; a missing one reads as ``None`` (as ``email.message`` does)."""

    def __missing__(self, key: str) -> None:
        return None


class Distribution:
    """An installed distribution's folder; ``metadata`` holds its first headers."""

    __slots__ = ("_headers", "path")

    def __init__(self, path: str) -> None:
        self.path = path
        self._headers: _Headers | None = None

    @property
    def metadata(self) -> _Headers:
        """Headers of ``METADATA`` (``PKG-INFO`` for eggs), read on first use."""
        if self._headers is None:
            self._headers = _read_headers(self.path)
        return self._headers

    @property
    def version(self) -> str | None:
        return self.metadata["Version"]

    def __repr__(self) -> str:
        return f"<Distribution {self.path!r}>"


class EntryPoint:
    """``name = value`` in a ``[group]`` of a distribution's ``entry_points.txt``."""

    __slots__ = ("dist", "group", "name", "value")

    def __init__(self, name: str, value: str, group: str, dist: Distribution | None) -> None:
        self.name = name
        self.value = value
        self.group = group
        self.dist = dist

    def load(self) -> Any:
        """Import the module and return the object the value names."""
        import importlib

        match = _VALUE.match(self.value)
        if match is None:
            raise ValueError(f"malformed entry point value {self.value!r}")
        obj: Any = importlib.import_module(match.group("module"))
        for attr in filter(None, (match.group("attr") or "").split(".")):
            obj = getattr(obj, attr)
        return obj

    def __repr__(self) -> str:
        return f"EntryPoint(name={self.name!r}, value={self.value!r}, group={self.group!r})"


def entry_points(group: str) -> list[Any]:
    """Every entry point of ``group``, in the order importlib.metadata gives them."""
    try:
        return _scan(group, sys.path)
    except _Unsupported:
        from importlib import metadata

        return list(metadata.entry_points(group=group))


def _scan(group: str, path: Iterable[Any]) -> list[Any]:
    import importlib.machinery

    for finder in sys.meta_path:
        if finder is not importlib.machinery.PathFinder and hasattr(finder, "find_distributions"):
            raise _Unsupported(finder)
    found: list[Any] = []
    seen: set[str] = set()
    for entry in path:
        if not isinstance(entry, str):
            raise _Unsupported(entry)
        root = entry or "."
        try:
            children = os.listdir(root)
        except OSError:
            if os.path.isfile(root):  # a zip file
                raise _Unsupported(entry) from None
            continue  # missing or unreadable: importlib.metadata finds nothing there either
        if os.path.basename(root).lower().endswith(".egg"):
            raise _Unsupported(entry)
        for child in children:
            low = child.lower()
            if not low.endswith(_INFO_SUFFIXES):
                continue
            stem, ext = os.path.splitext(child)
            if ext not in _INFO_SUFFIXES:  # ".DIST-INFO": importlib reads its metadata for a name
                raise _Unsupported(child)
            name = re.sub(r"[-_.]+", "_", stem.partition("-")[0]).lower()
            if name in seen:
                continue
            seen.add(name)
            found.extend(_group_of(os.path.join(entry, child), group))
    return found


def _group_of(info: str, group: str) -> list[EntryPoint]:
    text = _read(os.path.join(info, "entry_points.txt"))
    if text is None or f"[{group}]" not in text:
        return []
    dist = Distribution(info)
    section: str | None = None
    out: list[EntryPoint] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line.strip("[]")
            continue
        if section is None:
            continue
        name, sep, value = line.partition("=")
        if not sep:  # importlib.metadata raises on it: let it say so
            raise _Unsupported(info)
        if section == group:
            out.append(EntryPoint(name.strip(), value.strip(), group, dist))
    return out


def _read_headers(info: str) -> _Headers:
    text = _read(os.path.join(info, "METADATA"))
    if text is None:
        text = _read(os.path.join(info, "PKG-INFO"))
    headers = _Headers()
    for line in (text or "").splitlines():
        if not line:
            break  # the body starts
        if line[0] in " \t":
            continue  # a folded continuation: Name and Version are never folded
        key, sep, value = line.partition(":")
        if sep:
            headers.setdefault(key.strip(), value.strip())
    return headers


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as file:
            return file.read()
    except (OSError, UnicodeDecodeError):
        return None
