"""``botstate copy``: move every entry from one storage to another, bytes and expiry intact.

Works on the raw adapters, so values are copied byte for byte whatever codec
wrote them, and namespaces are just part of the key (``--prefix mybot:``
copies one namespace). Keys are streamed from ``scan`` in batches: each batch
is read with ``get_expiry`` (per key) then ``get_many``, and written
with ``set_many`` grouped by expiry, so a key keeps its remaining TTL. Keys
that expire before they are written are skipped. Writing overwrites, so a
re-run after a failure is safe; keys deleted in the source are not deleted in
the destination.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..capabilities import Capability
from ..contract import StorageAdapter
from ..errors import (
    BotstateError,
    ConfigError,
    StorageUnavailable,
    UnsupportedOperation,
)
from ..opening import open_adapter
from ..urls import redact_url
from ._commands import EXIT_FAILED, EXIT_OK, EXIT_UNAVAILABLE, Context
from ._output import Progress, one_line

__all__ = ["CopyReport", "cmd_copy"]

# A key about to expire this soon is not worth writing: it would be gone on arrival.
_MIN_REMAINING = 0.05
_SHOWN_FAILURES = 20


@dataclass
class CopyReport:
    copied: int = 0
    expired: int = 0
    vanished: int = 0  # listed by scan but gone when read
    failures: list[tuple[str, str]] = field(default_factory=list)
    unavailable: bool = False  # every failure was "cannot reach the storage"
    stopped: str | None = None


async def cmd_copy(args: argparse.Namespace, ctx: Context) -> int:
    if args.src == args.dst:
        raise ConfigError("source and destination are the same storage; nothing to do")
    src = open_adapter(args.src)
    try:
        dst = open_adapter(args.dst)
    except BaseException:
        await src.close()
        raise
    if Capability.SCAN not in src.capabilities:
        await src.close()
        await dst.close()
        raise UnsupportedOperation(
            f"the source {redact_url(args.src)} cannot list its keys (no SCAN capability), "
            "so it cannot be copied"
        )
    if not {Capability.PERSISTENT, Capability.SHARED} & dst.capabilities:
        await src.close()
        await dst.close()
        raise ConfigError(
            f"the destination {redact_url(args.dst)} lives only inside this command's process "
            "(neither PERSISTENT nor SHARED): the copy would vanish when the command exits"
        )
    verb = "would copy" if args.dry_run else "copied"
    report = CopyReport()
    started = time.monotonic()
    try:
        with ctx.out.progress("dry run" if args.dry_run else "copying") as progress:
            await _copy(args, ctx, src, dst, report, progress)
    finally:
        await asyncio.gather(src.close(), dst.close(), return_exceptions=True)
    elapsed = time.monotonic() - started
    rate = report.copied / elapsed if elapsed > 0 else 0.0
    ctx.out.print(
        f"{verb} {report.copied:,} keys from {redact_url(args.src)} to {redact_url(args.dst)} "
        f"in {elapsed:.2f}s ({rate:,.0f} keys/s); skipped {report.expired:,} expired, "
        f"{report.vanished:,} gone before read; {len(report.failures):,} failed"
    )
    if not report.failures and report.stopped is None:
        return EXIT_OK
    for key, error in report.failures[:_SHOWN_FAILURES]:
        ctx.out.error(f"key {key!r}: {error}")
    if len(report.failures) > _SHOWN_FAILURES:
        ctx.out.error(f"... and {len(report.failures) - _SHOWN_FAILURES:,} more failed keys")
    if report.stopped:
        ctx.out.error(report.stopped)
    ctx.out.error(
        f"{len(report.failures):,} key(s) were not copied; fix the cause and run the same "
        "command again (copying overwrites, so a re-run is safe)"
    )
    if report.unavailable and report.copied == 0:
        return EXIT_UNAVAILABLE
    return EXIT_FAILED


async def _copy(
    args: argparse.Namespace,
    ctx: Context,
    src: StorageAdapter,
    dst: StorageAdapter,
    report: CopyReport,
    progress: Progress,
) -> None:
    batch: list[str] = []
    async for key in ctx.iterate(src.scan(args.prefix).__aiter__(), "listing source keys"):
        # Checked when another key arrives, so "not tried" is said only when keys remained.
        if args.max_errors and len(report.failures) >= args.max_errors:
            report.stopped = (
                f"stopped after {len(report.failures):,} failed keys "
                f"(--max-errors {args.max_errors}); the keys after that point were not tried"
            )
            return
        batch.append(key)
        if len(batch) >= args.batch:
            await _copy_batch(args, ctx, src, dst, batch, report, progress)
            batch = []
    if batch:
        await _copy_batch(args, ctx, src, dst, batch, report, progress)


async def _copy_batch(
    args: argparse.Namespace,
    ctx: Context,
    src: StorageAdapter,
    dst: StorageAdapter,
    keys: Sequence[str],
    report: CopyReport,
    progress: Progress,
) -> None:
    # Reading the source is not a per-key problem: if it fails, the copy cannot go on.
    # Expiries are read before values: get_expiry answers None both for "no expiry" and
    # for "gone", so a key that expires in between must then be missing from get_many,
    # not copied as if it never expired.
    expiries: dict[str, float | None] = dict.fromkeys(keys)
    if not args.ignore_ttl:
        try:
            found = await ctx.call(
                asyncio.gather(*(src.get_expiry(key) for key in keys)),
                "reading source expiries",
            )
        except UnsupportedOperation as err:
            raise UnsupportedOperation(
                f"{err}; pass --ignore-ttl to copy without expiry times"
            ) from err
        expiries = dict(zip(keys, found, strict=True))
    values = await ctx.call(src.get_many(keys), "reading source values")
    vanished = len(set(keys)) - len(values)
    now = time.time()
    groups: dict[float | None, dict[str, bytes]] = defaultdict(dict)
    expired = 0
    for key, value in values.items():
        expires_at = expiries.get(key)
        if expires_at is not None and expires_at - now < _MIN_REMAINING:
            expired += 1
            continue
        groups[expires_at][key] = value
    report.vanished += vanished
    report.expired += expired
    written = 0
    failed_before = len(report.failures)
    if args.dry_run:
        written = sum(len(items) for items in groups.values())
    else:
        results = await asyncio.gather(
            *(
                _write_group(ctx, dst, items, expires_at, report)
                for expires_at, items in groups.items()
            )
        )
        written = sum(results)
    report.copied += written
    progress.update(
        done=written, skipped=vanished + expired, failed=len(report.failures) - failed_before
    )


async def _write_group(
    ctx: Context,
    dst: StorageAdapter,
    items: dict[str, bytes],
    expires_at: float | None,
    report: CopyReport,
) -> int:
    """Write keys sharing one expiry; return how many were written, record the others."""
    try:
        await ctx.call(dst.set_many(items, expires_at=expires_at), "writing to the destination")
        return len(items)
    except StorageUnavailable as err:
        # Retrying key by key would only repeat the wait for each key.
        _fail(report, list(items), err)
        return 0
    except BotstateError as err:
        if len(items) == 1:
            _fail(report, list(items), err)
            return 0
    # One bad key (too large, say) fails the whole batch: find it by writing one at a time.
    written = 0
    for key, value in items.items():
        try:
            await ctx.call(dst.set(key, value, expires_at=expires_at), "writing to the destination")
            written += 1
        except BotstateError as err:
            _fail(report, [key], err)
    return written


def _fail(report: CopyReport, keys: list[str], err: BotstateError) -> None:
    unavailable = isinstance(err, StorageUnavailable)
    if not report.failures:
        report.unavailable = unavailable
    else:
        report.unavailable = report.unavailable and unavailable
    message = one_line(err)
    report.failures.extend((key, message) for key in keys)
