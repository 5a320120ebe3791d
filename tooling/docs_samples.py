"""The Python code samples of the documentation pages and READMEs, extracted and run.

    python -m tooling.docs_samples list                 # every sample, run or skipped
    python -m tooling.docs_samples run FILE.md          # run FILE's samples, in the current dir

A file's ```` ```python ```` blocks run in order in one namespace, like a reader
going down the page, with top-level ``await`` allowed (each page gets its own
event loop). A block preceded by ``<!-- docs-test: skip (why) -->`` is not run:
one that needs a server the reader brings, a bot token or a framework that is
not installed. A block with ``title="NAME"`` in its info string (```` ```toml
title="bot.toml" ````) is written to the file NAME first, so later samples can
read it. ``tests/tooling/test_docs.py`` runs every file in a temporary directory
and reports each skipped block as a skipped test.

Samples are fragments of a bot's code: they run with ``botstate`` and
``asyncio`` imported. Where ``$DOCS_SAMPLES_REDIS_URL`` is set (the test starts
a redis-server), a sample's local Redis (``redis://localhost:6379/0``,
``redis://127.0.0.1:6379``) means that server, so the Redis samples run against
a real Redis too.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import os
import re
import sys
import traceback
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PYTHON = {"python", "py", "python3"}
# A Redis on the reader's machine, with its database number.
LOCAL_REDIS = re.compile(r"redis://(?:localhost|127\.0\.0\.1):6379(?:/\d+)?")
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>```+|~~~+)(?P<info>[^`\n]*)$")
MARKER = re.compile(r"^\s*<!-- docs-test: (?P<what>.*?) -->\s*$")
SKIP = re.compile(r"^skip \((?P<why>[^()]*\S[^()]*)\)$")
TITLE = re.compile(r"""\btitle=["']([^"']+)["']""")


class SampleError(Exception):
    """A malformed marker or fence in a page; the message names the place."""


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    """1-based line of the first line of code (the one after the fence)."""
    language: str
    code: str
    skip: str | None = None
    """Why the block is not run, from its ``docs-test: skip`` marker."""
    title: str | None = None
    """The file name a non-Python block is written to."""

    @property
    def where(self) -> str:
        try:
            return f"{self.path.relative_to(ROOT)}:{self.line}"
        except ValueError:
            return f"{self.path}:{self.line}"

    @property
    def runs(self) -> bool:
        return self.language in PYTHON and self.skip is None


def sources(root: Path = ROOT) -> list[Path]:
    """The files whose samples are tested: docs pages and every README the site shows."""
    files = sorted((root / "docs").rglob("*.md"))
    files.append(root / "README.md")
    files += sorted((root / "packages").glob("*/README.md"))
    files.append(root / "tooling" / "template" / "README.md")
    return [f for f in files if f.is_file()]


def blocks(path: Path) -> list[Block]:
    """The fenced code blocks of ``path`` with their markers."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    index = 0
    marker: tuple[int, str] | None = None
    while index < len(lines):
        line = lines[index]
        marked = MARKER.match(line)
        fence = FENCE.match(line)
        if marked:
            if marker is not None:
                raise SampleError(f"{path}:{marker[0]}: marker not followed by a code block")
            marker = (index + 1, marked.group("what"))
            index += 1
            continue
        if fence is None:
            if marker is not None and line.strip():
                raise SampleError(f"{path}:{marker[0]}: marker not followed by a code block")
            index += 1
            continue
        info = fence.group("info").strip()
        language = info.split()[0].lower() if info else ""
        close = re.compile(rf"^{re.escape(fence.group('indent'))}{fence.group('fence')}\s*$")
        end = index + 1
        while end < len(lines) and not close.match(lines[end]):
            end += 1
        if end == len(lines):
            raise SampleError(f"{path}:{index + 1}: code block never closed")
        indent = len(fence.group("indent"))
        code = "\n".join(text[indent:] for text in lines[index + 1 : end]) + "\n"
        skip = None
        if marker is not None:
            skipped = SKIP.match(marker[1])
            if skipped is None:
                raise SampleError(
                    f"{path}:{marker[0]}: unknown marker {marker[1]!r}; "
                    "the one marker is 'docs-test: skip (why it cannot run here)'"
                )
            if language not in PYTHON:
                raise SampleError(f"{path}:{marker[0]}: skip marker on a {language!r} block")
            skip = skipped.group("why")
        title = TITLE.search(info)
        found.append(
            Block(path, index + 2, language, code, skip, title.group(1) if title else None)
        )
        marker = None
        index = end + 1
    if marker is not None:
        raise SampleError(f"{path}:{marker[0]}: marker not followed by a code block")
    return found


def all_blocks(root: Path = ROOT) -> Iterator[Block]:
    for path in sources(root):
        yield from blocks(path)


async def _close_storages(namespace: dict[str, Any]) -> None:
    from botstate.storage import Storage

    for value in list(namespace.values()):
        if isinstance(value, Storage):
            await value.close()


def run(path: Path) -> int:
    """Run the samples of ``path`` in the current directory; 0 if all passed."""
    import botstate

    # A real __main__ module: dataclasses and typing look names up through sys.modules.
    main = types.ModuleType("__main__")
    sys.modules["__main__"] = main
    namespace = main.__dict__
    namespace.update(asyncio=asyncio, botstate=botstate)
    redis_url = os.environ.get("DOCS_SAMPLES_REDIS_URL")
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        for block in blocks(path):
            if block.title and block.language not in PYTHON:
                Path(block.title).write_text(block.code, encoding="utf-8")
                continue
            if not block.runs:
                continue
            # Padded so tracebacks give the line numbers of the page.
            source = "\n" * (block.line - 1) + block.code
            if redis_url:
                source = LOCAL_REDIS.sub(redis_url, source)
            try:
                code = compile(source, str(path), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
                if code.co_flags & inspect.CO_COROUTINE:
                    loop.run_until_complete(eval(code, namespace))
                else:
                    exec(code, namespace)
            except BaseException:
                print(f"{block.where}: this sample failed:", file=sys.stderr)
                traceback.print_exc()
                print(
                    f"{block.where}: fix it, or if it cannot run in a test (a server the "
                    "reader brings, a bot token), put '<!-- docs-test: skip (why) -->' on "
                    "the line before its fence",
                    file=sys.stderr,
                )
                return 1
        loop.run_until_complete(_close_storages(namespace))
    finally:
        loop.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["list"] and len(args) == 1:
        for block in all_blocks():
            if block.language in PYTHON:
                print(block.where, "run" if block.runs else f"skip ({block.skip})")
        return 0
    if args[:1] == ["run"] and len(args) == 2:
        return run(Path(args[1]).resolve())
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
