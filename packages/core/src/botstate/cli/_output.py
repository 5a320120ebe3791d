"""Terminal output for the CLI: plain text always works, ``rich`` is used when installed.

Everything written goes through :class:`Output`, which scrubs the secrets of the
URLs given on the command line, so a password never reaches the terminal even
when an error message from a driver repeats it.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import time
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any, TextIO
from urllib.parse import quote

from ..errors import InvalidURL
from ..urls import REDACTED, is_secret_option, parse_url

__all__ = ["Output", "Progress", "Secrets", "one_line", "rich_available"]

# Shorter secrets are not scrubbed from free text: replacing every "test" would garble
# paths and messages. URLs themselves are always shown redacted, whatever the length.
_MIN_SCRUB = 6


def one_line(err: BaseException) -> str:
    """``"ErrorType: message"``, first line only: how the CLI names an error in a sentence."""
    return f"{type(err).__name__}: {err}".splitlines()[0]


def rich_available() -> bool:
    """Whether the optional ``rich`` package (``pip install "botstate[cli]"``) is importable."""
    return importlib.util.find_spec("rich") is not None


class Secrets:
    """Secret strings taken from the URLs on the command line, to scrub from any output."""

    def __init__(self) -> None:
        self._values: set[str] = set()

    def add_url(self, url: str) -> None:
        try:
            parsed = parse_url(url)
        except InvalidURL:
            # Not parseable: still hide whatever sits between "user:" and "@".
            _, sep, rest = url.partition("://")
            userinfo = rest.split("/", 1)[0].rpartition("@")[0] if sep else ""
            if ":" in userinfo:
                self._add(userinfo.split(":", 1)[1])
            return
        if parsed.password:
            self._add(parsed.password)
        for name, value in parsed.query.items():
            if is_secret_option(name) and value:
                self._add(value)

    def _add(self, value: str) -> None:
        for form in (value, quote(value, safe=""), quote(value)):
            if len(form) >= _MIN_SCRUB:
                self._values.add(form)

    def scrub(self, text: str) -> str:
        # Longest first, so a secret that contains another is replaced whole.
        for value in sorted(self._values, key=len, reverse=True):
            text = text.replace(value, REDACTED)
        return text


def _terminal(stream: TextIO) -> bool:
    # TTY_COMPATIBLE=1 is rich's own switch for "render as if on a terminal" (CI logs, tests).
    return stream.isatty() or os.environ.get("TTY_COMPATIBLE") == "1"


class Output:
    """Writes results to stdout and messages to stderr, as rich or plain text.

    Rich is used only when it is installed, ``--plain`` was not given, and the
    stream is a terminal: piped output stays plain, one record per line.
    """

    def __init__(self, secrets: Secrets, *, use_rich: bool) -> None:
        self.secrets = secrets
        self.stdout: TextIO = sys.stdout
        self.stderr: TextIO = sys.stderr
        self.use_rich = use_rich and rich_available()

    def rich_for(self, stream: TextIO) -> bool:
        return self.use_rich and _terminal(stream)

    def print(self, text: str = "") -> None:
        """A result line on stdout."""
        print(self.secrets.scrub(text), file=self.stdout, flush=True)

    def note(self, text: str) -> None:
        """A message for the user on stderr (not part of the result)."""
        print(self.secrets.scrub(text), file=self.stderr, flush=True)

    def error(self, text: str) -> None:
        self.note(f"botstate: error: {text}")

    def table(self, headers: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
        """A table on stdout; the last column may be long and is never padded."""
        cells = [[self.secrets.scrub(c) for c in row] for row in rows]
        if self.rich_for(self.stdout):
            self._rich_table(headers, cells)
            return
        widths = [len(h) for h in headers]
        for row in cells:
            for i, cell in enumerate(row[:-1]):
                widths[i] = max(widths[i], len(cell))
        lines = [list(headers), ["-" * w for w in widths[:-1]] + ["-" * len(headers[-1])], *cells]
        for row in lines:
            padded = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])] + [row[-1]]
            self.print("  ".join(padded).rstrip())

    def _rich_table(self, headers: Sequence[str], rows: list[list[str]]) -> None:
        # Imported by name: rich is optional, and mypy must not need it installed.
        console = importlib.import_module("rich.console")
        table = importlib.import_module("rich.table").Table(show_lines=False)
        for i, header in enumerate(headers):
            # Short identifying columns stay on one line; the description wraps.
            table.add_column(header, overflow="fold", no_wrap=i < 3)
        for row in rows:
            table.add_row(*row)
        console.Console(file=self.stdout, soft_wrap=False).print(table)

    def progress(self, label: str) -> Progress:
        """A running count with rate on stderr (a rich bar, or a plain line every second)."""
        return Progress(self, label)


class Progress:
    """Counts processed keys; ``update()`` after each batch, use as a context manager."""

    PLAIN_INTERVAL = 1.0

    def __init__(self, output: Output, label: str) -> None:
        self.output = output
        self.label = label
        self.done = 0
        self.skipped = 0
        self.failed = 0
        self.started = time.monotonic()
        self._last_line = self.started
        self._rich: Any = None
        self._task: Any = None

    def __enter__(self) -> Progress:
        if self.output.rich_for(self.output.stderr):
            console = importlib.import_module("rich.console")
            rp = importlib.import_module("rich.progress")
            self._rich = rp.Progress(
                rp.SpinnerColumn(),
                rp.TextColumn("{task.description}"),
                rp.TextColumn("{task.completed:,.0f} keys"),
                rp.TextColumn("{task.fields[rate]:,.0f} keys/s"),
                rp.TextColumn("{task.fields[extra]}"),
                rp.TimeElapsedColumn(),
                console=console.Console(file=self.output.stderr),
                transient=False,
            )
            self._rich.__enter__()
            self._task = self._rich.add_task(self.label, total=None, rate=0.0, extra="")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._rich is not None:
            self._refresh_rich()
            self._rich.__exit__(exc_type, exc, tb)
        elif self.done or self.skipped or self.failed:
            self.output.note(self.line())

    @property
    def elapsed(self) -> float:
        return max(time.monotonic() - self.started, 1e-9)

    @property
    def rate(self) -> float:
        return self.done / self.elapsed

    def line(self) -> str:
        return (
            f"{self.label}: {self.done:,} keys ({self.rate:,.0f} keys/s), "
            f"{self.skipped:,} skipped, {self.failed:,} failed, {self.elapsed:.1f}s"
        )

    def update(self, *, done: int = 0, skipped: int = 0, failed: int = 0) -> None:
        self.done += done
        self.skipped += skipped
        self.failed += failed
        if self._rich is not None:
            self._refresh_rich()
            return
        now = time.monotonic()
        if now - self._last_line >= self.PLAIN_INTERVAL:
            self._last_line = now
            self.output.note(self.line())

    def _refresh_rich(self) -> None:
        extra = f"{self.skipped:,} skipped, {self.failed:,} failed"
        self._rich.update(self._task, completed=self.done, rate=self.rate, extra=extra)
