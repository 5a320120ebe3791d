"""The example adapter: one file per key in a local directory.

Each entry is a file named by the SHA-256 of its key, holding a one-line JSON
header (the key and its absolute expiry) followed by the raw value. A write
goes to a temporary file that is then renamed over the entry, so a reader in
this or another process sees the old value or the new one, never half of
either. File I/O runs in a worker thread so the event loop is never blocked.

Expired entries are never returned; they are reclaimed when the key is
written again or deleted (a delete of an expired entry returns ``False``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from botstate import Capability, ConfigError, InvalidURL, StorageError, StorageUnavailable
from botstate.adapter import BaseAdapter, coerce_options, parse_url

__all__ = ["ExampleAdapter"]

_OPTIONS = {"directory": str, "fsync": bool}
_T = TypeVar("_T")
_Entry = tuple[str, "float | None", bytes]


class ExampleAdapter(BaseAdapter):
    """Entries are files under ``directory``; they survive restarts and are
    visible to every process on this host that opens the same directory.

    >>> adapter = ExampleAdapter("var/botstate", fsync=True)

    - ``directory``: created on the first write (opening does no I/O).
    - ``fsync`` (default ``False``): flush every write to disk before renaming.

    Not ATOMIC: a compare-and-set across processes would need file locks, so
    ``Storage.update`` falls back to a per-process lock on this adapter.
    """

    capabilities = frozenset({Capability.SCAN, Capability.PERSISTENT, Capability.SHARED})

    def __init__(self, directory: str | os.PathLike[str], *, fsync: bool = False) -> None:
        super().__init__()
        self.directory = Path(directory)
        self.fsync = fsync

    @classmethod
    def from_url(cls, url: str | None = None, **options: Any) -> ExampleAdapter:
        """Open ``example:///relative/dir`` or ``example:////absolute/dir``.

        Options (URL query or keywords): ``directory`` (instead of a URL path), ``fsync``.
        """
        given: dict[str, Any] = {}
        if url is not None:
            parsed = parse_url(url)
            if parsed.scheme != "example" or parsed.hosts or parsed.username is not None:
                raise InvalidURL(f"example URLs look like example:///path/to/dir, not {parsed}")
            if parsed.path not in ("", "/"):
                given["directory"] = parsed.path[1:]
            given.update(parsed.query)
        given.update(options)
        opts = coerce_options(given, _OPTIONS, adapter="example")
        if not opts.get("directory"):
            raise ConfigError("the example adapter needs a directory: example:///path/to/dir")
        return cls(opts.pop("directory"), **opts)

    def _repr_fields(self) -> Mapping[str, Any]:
        return {"directory": str(self.directory), "fsync": self.fsync}

    async def _run(self, func: Callable[..., _T], *args: Any) -> _T:
        """Run blocking file I/O in a thread; OS errors become StorageUnavailable."""
        self.check_open()  # a closed adapter refuses every operation
        try:
            return await asyncio.to_thread(func, *args)
        except OSError as err:
            raise StorageUnavailable(
                f"example storage at {str(self.directory)!r} failed: {err.strerror or err}"
            ) from err

    # -- the contract -----------------------------------------------------
    async def get(self, key: str) -> bytes | None:
        entry = await self._run(self._read_live, self._path(key), time.time(), False)
        return None if entry is None else entry[2]

    async def get_expiry(self, key: str) -> float | None:
        entry = await self._run(self._read_live, self._path(key), time.time(), True)
        return None if entry is None else entry[1]

    async def set(self, key: str, value: bytes, *, expires_at: float | None = None) -> None:
        await self._run(self._write, {key: value}, expires_at)

    async def set_many(
        self, items: Mapping[str, bytes], *, expires_at: float | None = None
    ) -> None:
        await self._run(self._write, dict(items), expires_at)

    async def delete(self, key: str) -> bool:
        return await self._run(self._remove, [key], time.time()) == 1

    async def delete_many(self, keys: Sequence[str]) -> int:
        return await self._run(self._remove, list(dict.fromkeys(keys)), time.time())

    async def scan(self, prefix: str = "") -> AsyncIterator[str]:
        # A snapshot: callers may write or delete while iterating.
        for key in await self._run(self._list, prefix, time.time()):
            yield key

    # -- file I/O (runs in a worker thread) -------------------------------
    def _path(self, key: str) -> Path:
        return self.directory / hashlib.sha256(key.encode("utf-8")).hexdigest()

    def _read_live(self, path: Path, now: float, header_only: bool) -> _Entry | None:
        try:
            with open(path, "rb") as file:
                header = file.readline()
                value = b"" if header_only else file.read()
        except FileNotFoundError:
            return None
        try:
            meta = json.loads(header)
            key, expires_at = str(meta["key"]), meta["expires_at"]
        except (ValueError, KeyError, TypeError) as err:
            raise StorageError(f"corrupt entry file {str(path)!r}") from err
        if expires_at is not None and expires_at <= now:
            return None
        return key, expires_at, value

    def _write(self, items: Mapping[str, bytes], expires_at: float | None) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        for key, value in items.items():
            header = json.dumps({"key": key, "expires_at": expires_at}).encode("ascii")
            tmp = self.directory / f".tmp-{uuid.uuid4().hex}"
            try:
                with open(tmp, "wb") as file:
                    file.write(header + b"\n")
                    file.write(value)
                    if self.fsync:
                        file.flush()
                        os.fsync(file.fileno())
                os.replace(tmp, self._path(key))
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise

    def _remove(self, keys: list[str], now: float) -> int:
        removed = 0
        for key in keys:
            # Renaming first claims exactly the file we inspect, even if another
            # writer replaces the entry meanwhile.
            claimed = self.directory / f".del-{uuid.uuid4().hex}"
            try:
                os.rename(self._path(key), claimed)
            except FileNotFoundError:
                continue
            try:
                removed += self._read_live(claimed, now, True) is not None
            finally:
                claimed.unlink(missing_ok=True)
        return removed

    def _list(self, prefix: str, now: float) -> list[str]:
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        keys = []
        for name in names:
            if name.startswith("."):
                continue  # a write or delete in progress
            entry = self._read_live(self.directory / name, now, True)
            if entry is not None and entry[0].startswith(prefix):
                keys.append(entry[0])
        return keys
