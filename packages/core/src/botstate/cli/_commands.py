"""The small commands: ``adapters``, ``keys``, ``get``, ``set``, ``delete``, ``check``."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import secrets
import sys
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

from ..capabilities import Capability
from ..contract import StorageAdapter
from ..errors import ConfigError, StorageError, StorageUnavailable
from ..opening import open_adapter, open_storage
from ..plugins import AdapterInfo, adapter_name_for_url, list_adapters
from ..storage import Storage
from ..urls import redact_url
from ._output import Output, one_line

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_UNAVAILABLE", "EXIT_USAGE", "Context"]

EXIT_OK = 0
EXIT_FAILED = 1  # the operation ran and failed: key not found, keys not copied, check mismatch
EXIT_USAGE = 2  # bad arguments, URL, options, unknown adapter, unsupported operation
EXIT_UNAVAILABLE = 3  # the storage could not be reached or timed out
EXIT_INTERRUPTED = 130

T = TypeVar("T")


@dataclass
class Context:
    """What every command gets: where to write and how long one storage call may take."""

    out: Output
    timeout: float | None

    async def call(self, awaitable: Awaitable[T], what: str) -> T:
        """Await one storage operation, turning a timeout into :class:`StorageUnavailable`."""
        if self.timeout is None:
            return await awaitable
        try:
            return await asyncio.wait_for(awaitable, self.timeout)
        except asyncio.TimeoutError as err:
            raise StorageUnavailable(f"{what} timed out after {self.timeout:g}s") from err

    async def iterate(self, iterator: AsyncIterator[T], what: str) -> AsyncIterator[T]:
        """Iterate with the timeout applied to every step."""
        while True:
            try:
                item = await self.call(iterator.__anext__(), what)
            except StopAsyncIteration:
                return
            yield item


# -- adapters -------------------------------------------------------------


def capabilities_of(info: AdapterInfo) -> tuple[list[str] | None, str | None]:
    """The declared capabilities of an adapter (importing its module), or ``None`` and why not."""
    if info.error is not None:
        return None, info.error
    try:
        factory = info.load_factory()
        owner: Any = getattr(factory, "__self__", factory)
        declared = owner.capabilities
        return sorted(str(Capability(c)) for c in declared), None
    except Exception as err:  # a broken adapter module must not break the listing
        return None, one_line(err)


def cmd_adapters(args: argparse.Namespace, ctx: Context) -> int:
    found = list_adapters()
    rows: list[dict[str, Any]] = []
    for info in found:
        caps, problem = capabilities_of(info)
        rows.append(
            {
                "name": info.name,
                "distribution": info.distribution,
                "version": info.version,
                "schemes": list(info.schemes),
                "capabilities": caps,
                "description": info.description,
                "error": problem,
            }
        )
    if args.json:
        ctx.out.print(json.dumps(rows, indent=2))
    else:
        headers = ["NAME", "DISTRIBUTION", "VERSION", "SCHEMES", "CAPABILITIES", "DESCRIPTION"]
        ctx.out.table(
            headers,
            [
                [
                    r["name"],
                    r["distribution"] or "-",
                    r["version"] or "-",
                    ", ".join(f"{s}://" for s in r["schemes"]) or "-",
                    "?" if r["capabilities"] is None else ", ".join(r["capabilities"]) or "-",
                    f"ERROR: {r['error']}" if r["error"] else r["description"],
                ]
                for r in rows
            ],
        )
    broken = sorted(r["name"] for r in rows if r["error"])
    if broken:
        ctx.out.note(
            f"botstate: warning: {len(broken)} adapter(s) cannot load: {', '.join(broken)}"
        )
    if not rows:
        ctx.out.note("no adapters installed; try: pip install botstate-storage-memory")
    return EXIT_OK


# -- keys / get / set / delete -------------------------------------------


def _open_bytes(args: argparse.Namespace) -> Storage[bytes]:
    """A ``Storage`` that hands back raw bytes, so any stored value can be shown."""
    return open_storage(args.url, namespace=args.namespace, codec="bytes")


async def cmd_keys(args: argparse.Namespace, ctx: Context) -> int:
    async with _open_bytes(args) as storage:
        count = 0
        async for key in ctx.iterate(storage.keys(args.prefix).__aiter__(), "listing keys"):
            ctx.out.print(key)
            count += 1
    if count == 0:
        ctx.out.note("(no keys)")
    return EXIT_OK


def render_value(data: bytes) -> tuple[str, str | None]:
    """Text to show for stored bytes, and a note saying how it was rendered if not JSON."""
    try:
        value = json.loads(data)
    except ValueError:
        pass
    else:
        return json.dumps(value, indent=2, ensure_ascii=False), None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return repr(data), f"not JSON or UTF-8 text; shown as a bytes literal ({len(data)} bytes)"
    if text.isprintable() or all(c.isprintable() or c in "\n\t" for c in text):
        return text, f"not JSON; shown as UTF-8 text ({len(data)} bytes)"
    return repr(data), f"not JSON; shown as a bytes literal ({len(data)} bytes)"


async def cmd_get(args: argparse.Namespace, ctx: Context) -> int:
    async with _open_bytes(args) as storage:
        data = await ctx.call(storage.get(args.key), f"get {args.key!r}")
        ttl = None
        if data is not None and args.ttl:
            ttl = await ctx.call(storage.ttl(args.key), f"ttl of {args.key!r}")
    if data is None:
        ctx.out.error(f"key {args.key!r} not found{_in_namespace(args)}")
        return EXIT_FAILED
    if args.raw:
        ctx.out.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        text, note = render_value(data)
        ctx.out.print(text)
        if note:
            ctx.out.note(f"({note})")
    if args.ttl:
        never = ttl is None or ttl == math.inf  # None: deleted between the two calls
        ctx.out.note("ttl: never expires" if never else f"ttl: {ttl:.1f}s")
    return EXIT_OK


def encode_value(value: str, *, raw: bool) -> bytes:
    """The bytes ``set`` stores: the JSON value re-encoded compactly, or the text as is."""
    text = sys.stdin.read() if value == "-" else value
    if raw:
        return text.encode("utf-8", "surrogateescape")
    try:
        parsed = json.loads(text)
    except ValueError as err:
        raise ConfigError(
            f"VALUE is not valid JSON ({err}); quote strings as JSON ('\"hello\"') "
            "or pass --raw to store the text unchanged"
        ) from None
    return json.dumps(parsed, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


async def cmd_set(args: argparse.Namespace, ctx: Context) -> int:
    data = encode_value(args.value, raw=args.raw)
    async with _open_bytes(args) as storage:
        await ctx.call(storage.set(args.key, data, ttl=args.ttl), f"set {args.key!r}")
    return EXIT_OK


async def cmd_delete(args: argparse.Namespace, ctx: Context) -> int:
    async with _open_bytes(args) as storage:
        removed = await ctx.call(storage.delete(args.key), f"delete {args.key!r}")
    if not removed:
        ctx.out.error(f"key {args.key!r} not found{_in_namespace(args)}; nothing deleted")
        return EXIT_FAILED
    return EXIT_OK


def _in_namespace(args: argparse.Namespace) -> str:
    return f" in namespace {args.namespace!r}" if args.namespace else ""


# -- check ----------------------------------------------------------------


async def cmd_check(args: argparse.Namespace, ctx: Context) -> int:
    shown = redact_url(args.url)
    adapter = open_adapter(args.url)
    try:
        problem, timings = await _check(args, ctx, adapter, shown)
    finally:
        await adapter.close()
    for name, ms in timings:
        ctx.out.print(f"latency:      {name:<16} {ms:8.2f} ms")
    if problem is not None:
        ctx.out.print(f"status:       FAILED ({problem})")
        return EXIT_FAILED
    ctx.out.print("status:       ok")
    return EXIT_OK


async def _check(
    args: argparse.Namespace, ctx: Context, adapter: StorageAdapter, shown: str
) -> tuple[str | None, list[tuple[str, float]]]:
    """Write, read back and delete a scratch key: the problem found (if any) and the timings."""
    caps = ", ".join(sorted(str(c) for c in adapter.capabilities)) or "-"
    ctx.out.print(f"storage:      {shown}")
    ctx.out.print(f"adapter:      {adapter_name_for_url(args.url)} ({adapter!r})")
    ctx.out.print(f"capabilities: {caps}")
    key = f"botstate-check:{secrets.token_hex(8)}"
    value = secrets.token_bytes(16)
    timings: list[tuple[str, float]] = []

    async def step(name: str, awaitable: Awaitable[T]) -> T:
        start = time.perf_counter()
        result = await ctx.call(awaitable, f"{name} on {shown}")
        timings.append((name, (time.perf_counter() - start) * 1000))
        return result

    problem = None
    try:
        await step("set", adapter.set(key, value, expires_at=time.time() + args.scratch_ttl))
        try:
            got = await step("get", adapter.get(key))
            if got != value:
                problem = f"read back {got!r} instead of the {len(value)} bytes written"
        finally:
            removed = await step("delete", adapter.delete(key))
        if problem is None and not removed:
            problem = "delete reported the scratch key as already gone"
        if problem is None and await step("get after delete", adapter.get(key)) is not None:
            problem = "the scratch key is still readable after delete"
    except StorageError as err:
        ctx.out.print(f"status:       FAILED ({one_line(err)})")
        raise
    return problem, timings
