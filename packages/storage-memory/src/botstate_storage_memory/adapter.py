"""The in-process adapter: a dict of bytes with TTL, an LRU cap and expiry events."""

from __future__ import annotations

import heapq
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, NoReturn, TypeAlias

from botstate import Capability, ConfigError, InvalidURL, StorageUnavailable
from botstate.adapter import (
    BaseAdapter,
    Clock,
    ExpiryEvent,
    Version,
    coerce_options,
    parse_url,
    system_clock,
)

if TYPE_CHECKING:
    import asyncio  # imported by _ensure_sweeper, its only use: memory:// loads no asyncio

__all__ = ["DEFAULT_MAX_ENTRIES", "DEFAULT_SWEEP_INTERVAL", "MemoryAdapter"]

DEFAULT_MAX_ENTRIES = 100_000
DEFAULT_SWEEP_INTERVAL = 1.0
_OPTIONS = {"max_entries": int, "sweep_interval": float}
_TWINS = ("get", "has", "set", "delete", "get_expiry", "get_many", "set_many", "delete_many")


# An entry is a small list (cheap to build, and a read can stamp it in place):
# value, expires_at, version (changes on writes only), last use (a tick of the
# adapter's counter, taken by every read and write; orders the LRU cap).
# Overwriting a key rewrites its list in place. A new list per write would be
# one more object for Python's cyclic garbage collector to track: long-lived
# lists pile up in its oldest generation and make full collections, which scan
# the whole heap, come more often (in a process with a framework loaded,
# set_many(100) measured 0.80x of the tuple-based baseline with the collector
# on, 1.16x with it off).
_Entry: TypeAlias = "list[Any]"
_VALUE: Final = 0
_EXPIRES: Final = 1
_VERSION: Final = 2
_USED: Final = 3


class MemoryAdapter(BaseAdapter):
    """Entries live in this process only; a restart loses them.

    >>> adapter = MemoryAdapter(max_entries=10_000, sweep_interval=5)

    - ``max_entries`` (default 100,000; ``0`` = unlimited): past it the least
      recently used entry is evicted, reported as an ``"evicted"`` event.
    - ``sweep_interval`` (seconds, default 1; ``0`` = no sweeper): how often a
      background task removes expired entries and reports ``"expired"`` events.
      Expired entries are never returned, swept or not. The sweeper starts with
      the first expiring write and stops on ``close()``.
    - ``clock``: the time source, for tests (see ``botstate.adapter.ManualClock``).

    Values are copied to immutable ``bytes``, so callers cannot mutate stored state.
    """

    capabilities = frozenset(
        {Capability.BATCH, Capability.SCAN, Capability.ATOMIC, Capability.EXPIRY_EVENTS}
    )
    # Every operation touches only this process's dicts and never waits: botstate.sync
    # may run them in the calling thread instead of hopping to its loop thread.
    runs_inline = True

    def __init__(
        self,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        sweep_interval: float = DEFAULT_SWEEP_INTERVAL,
        clock: Clock = system_clock,
    ) -> None:
        super().__init__()
        if max_entries < 0:
            raise ConfigError(f"max_entries must be >= 0, got {max_entries}")
        if sweep_interval < 0:
            raise ConfigError(f"sweep_interval must be >= 0, got {sweep_interval}")
        self.max_entries = max_entries
        self.sweep_interval = sweep_interval
        self.clock = clock
        self._data: dict[str, _Entry] = {}
        # Deadlines as hints: (expires_at, sequence, key or keys of one batch). An
        # item only says "look at these keys then"; the entry's own expires_at decides.
        self._heap: list[tuple[float, int, str | tuple[str, ...]]] = []
        # Eviction candidates (last use, key), newest first, listed from every entry
        # when the cap is passed; an item whose entry was used since is stale.
        self._lru: list[tuple[int, str]] = []
        self._tick = 0  # versions and last-use stamps: +1 per read or write
        self._sweeper: asyncio.Task[None] | None = None
        # A subclass that overrides a plain operation must not be bypassed by the twins.
        own = type(self)
        self._twins = (
            None
            if any(getattr(own, n) is not getattr(MemoryAdapter, n) for n in _TWINS)
            else _Blocking(self)
        )

    @classmethod
    def from_url(cls, url: str | None = None, **options: Any) -> MemoryAdapter:
        """Open from ``memory://?max_entries=N&sweep_interval=S`` plus keyword options."""
        given: dict[str, Any] = {}
        if url is not None:
            parsed = parse_url(url)
            if parsed.scheme != "memory" or parsed.hosts or parsed.path not in ("", "/"):
                raise InvalidURL(f"memory URLs look like memory://?max_entries=1000, not {parsed}")
            given.update(parsed.query)
        clock = options.pop("clock", system_clock)
        given.update(options)
        return cls(**coerce_options(given, _OPTIONS, adapter="memory"), clock=clock)

    def __len__(self) -> int:
        return len(self._data)

    # -- internals --------------------------------------------------------
    # The LRU cap costs a read one store: the entry's last-use stamp. (An
    # OrderedDict's move_to_end on every read cost a third of a get.) Eviction
    # finds the least recently used entry from a sorted list of stamps, see _evict.
    # get and the batches are inlined: a method call is a large share of a dict
    # operation (set calls _write: since overwrites stopped allocating it has the
    # margin, 1.05x of the baseline). get and set skip check_open(): close()
    # swaps the entries for _ClosedEntries, which refuses every access.

    def _live(self, key: str, now: float | None = None) -> _Entry | None:
        """The entry of ``key`` if it is live (an expired one is removed); not a use."""
        entry = self._data.get(key)
        if entry is None:
            return None
        expires_at = entry[_EXPIRES]
        if expires_at is not None and expires_at <= (self.clock() if now is None else now):
            self._expire(key, entry)
            return None
        return entry

    def _expire(self, key: str, entry: _Entry) -> None:
        del self._data[key]
        if self._expiry_callbacks:  # an event costs more than the removal: only if wanted
            self._emit_expiry(ExpiryEvent(key, entry[_VALUE], "expired", entry[_EXPIRES]))

    def _write(self, key: str, value: bytes, expires_at: float | None) -> int:
        """Store one entry (``set``, ``set_if`` and the ``set`` twin); return its new version."""
        self._tick = tick = self._tick + 1
        data = self._data
        entry = data.get(key)
        if entry is None:
            data[key] = [value if type(value) is bytes else bytes(value), expires_at, tick, tick]
            if len(data) > self.max_entries > 0:
                self._evict()
        else:  # in place: see _Entry
            entry[0] = value if type(value) is bytes else bytes(value)
            entry[1] = expires_at
            entry[2] = entry[3] = tick
        if expires_at is not None:
            self._track_expiry(expires_at, tick, key)
        return tick

    def _track_expiry(self, expires_at: float, seq: int, keys: str | tuple[str, ...]) -> None:
        """Leave a heap hint for ``keys``, start the sweeper, keep the heap compact."""
        heapq.heappush(self._heap, (expires_at, seq, keys))
        sweeper = self._sweeper
        if sweeper is None or sweeper.done():
            self._ensure_sweeper()
        if len(self._heap) > 2 * len(self._data) + 64:
            self._compact_heap()

    def _evict(self) -> None:
        """Remove least recently used entries until at most ``max_entries`` remain.

        Exact LRU: ``_lru`` holds (stamp, key) of every entry as of when it was
        built, in order. An item whose entry still has that stamp is older than
        anything used or written since (those stamps are newer than the whole
        list), so the oldest such item is the least recently used entry (the
        keys of one ``get_many`` share a stamp: one call is one use). Stale items
        are skipped; an empty list is rebuilt (one sort, once per n pops).
        """
        data, lru = self._data, self._lru
        while len(data) > self.max_entries:
            if not lru:
                # Newest first, so the oldest pops off the end. Dict order is write
                # order, so the stamps are mostly sorted already: the sort is cheap.
                lru = self._lru = sorted(
                    [(entry[_USED], key) for key, entry in data.items()], reverse=True
                )
            used, key = lru.pop()
            entry = data.get(key)
            if entry is not None and entry[_USED] == used:
                del data[key]
                if self._expiry_callbacks:
                    self._emit_expiry(ExpiryEvent(key, entry[_VALUE], "evicted", entry[_EXPIRES]))

    def _compact_heap(self) -> None:
        """Drop heap items of overwritten entries (sliding expiry leaves many behind)."""
        self._heap = [
            (e[_EXPIRES], e[_VERSION], k) for k, e in self._data.items() if e[_EXPIRES] is not None
        ]
        heapq.heapify(self._heap)

    def _ensure_sweeper(self) -> None:
        if self._closed or not self.sweep_interval:
            return
        import asyncio  # runs only when no sweeper is running

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._sweeper = loop.create_task(self._sweep_forever(), name="botstate-memory-sweeper")

    async def _sweep_forever(self) -> None:
        import asyncio

        while True:
            await asyncio.sleep(self.sweep_interval)
            self.sweep()
            if not self._heap:
                return  # nothing left to expire; the next expiring write restarts us

    def sweep(self) -> int:
        """Remove every expired entry now, emitting events; return how many were removed."""
        now = self.clock()
        removed = 0
        heap, data = self._heap, self._data
        while heap and heap[0][0] <= now:
            _, _, target = heapq.heappop(heap)
            for key in (target,) if type(target) is str else target:
                entry = data.get(key)
                if entry is not None and entry[_EXPIRES] is not None and entry[_EXPIRES] <= now:
                    self._expire(key, entry)
                    removed += 1
        return removed

    # -- the contract -----------------------------------------------------
    async def get(self, key: str) -> bytes | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry[1] is not None and entry[1] <= self.clock():
            self._expire(key, entry)
            return None
        self._tick = entry[3] = self._tick + 1
        return entry[0]  # type: ignore[no-any-return]

    async def has(self, key: str) -> bool:
        return self._has(key)

    def _has(self, key: str) -> bool:
        self.check_open()
        return self._live(key) is not None

    async def set(self, key: str, value: bytes, *, expires_at: float | None = None) -> None:
        self._write(key, value, expires_at)

    async def delete(self, key: str) -> bool:
        return self._delete(key)

    def _delete(self, key: str) -> bool:
        self.check_open()
        if self._live(key) is None:
            return False
        del self._data[key]
        return True

    async def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        return self._get_many(keys)

    def _get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        self.check_open()
        get, now = self._data.get, self.clock()
        # One call is one use: its keys share a last-use stamp (ties go by key).
        self._tick = tick = self._tick + 1
        found: dict[str, bytes] = {}
        for key in keys:
            entry = get(key)
            if entry is None:
                continue
            if entry[1] is not None and entry[1] <= now:
                self._expire(key, entry)
                continue
            entry[3] = tick
            found[key] = entry[0]
        return found

    async def set_many(
        self, items: Mapping[str, bytes], *, expires_at: float | None = None
    ) -> None:
        self._set_many(items, expires_at)

    def _set_many(self, items: Mapping[str, bytes], expires_at: float | None) -> None:
        self.check_open()
        # The batch shares one deadline and one heap item.
        data, tick = self._data, self._tick
        get = data.get
        for key, value in items.items():
            tick += 1
            if type(value) is not bytes:
                value = bytes(value)
            entry = get(key)
            if entry is None:
                data[key] = [value, expires_at, tick, tick]
            else:  # in place: see _Entry
                entry[0] = value
                entry[1] = expires_at
                entry[2] = entry[3] = tick
        self._tick = tick
        if len(data) > self.max_entries > 0:
            self._evict()
        if expires_at is not None and items:
            self._track_expiry(expires_at, tick, tuple(items))  # one hint per batch

    async def delete_many(self, keys: Sequence[str]) -> int:
        return self._delete_many(keys)

    def _delete_many(self, keys: Sequence[str]) -> int:
        self.check_open()
        removed = 0
        for key in dict.fromkeys(keys):
            if self._live(key) is not None:
                del self._data[key]
                removed += 1
        return removed

    async def scan(self, prefix: str = "") -> AsyncIterator[str]:
        self.check_open()
        # Snapshot first: callers may write or delete while iterating.
        for key in [k for k in self._data if k.startswith(prefix)]:
            if self._live(key) is not None:
                yield key

    async def get_expiry(self, key: str) -> float | None:
        return self._get_expiry(key)

    def _get_expiry(self, key: str) -> float | None:
        self.check_open()
        entry = self._live(key)
        return None if entry is None else entry[_EXPIRES]

    async def get_versioned(self, key: str) -> tuple[bytes, Version] | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry[1] is not None and entry[1] <= self.clock():
            self._expire(key, entry)
            return None
        self._tick = entry[3] = self._tick + 1  # read-modify-write counts as use
        return entry[0], entry[2]

    async def set_if(
        self,
        key: str,
        value: bytes,
        *,
        version: Version | None,
        expires_at: float | None = None,
    ) -> Version | None:
        entry = self._live(key)
        current = None if entry is None else entry[_VERSION]
        if current != version:
            return None
        return self._write(key, value, expires_at)

    async def delete_if(self, key: str, *, version: Version) -> bool:
        self.check_open()
        entry = self._live(key)
        if entry is None or entry[_VERSION] != version:
            return False
        del self._data[key]
        return True

    def blocking(self) -> _Blocking | None:
        """The plain operations as plain calls, for botstate.sync (see ``runs_inline``).

        ``None`` for a subclass that overrides one of them (its own code must run).
        """
        return self._twins

    async def close(self) -> None:
        """Stop the sweeper and wait for pending event callbacks; later calls raise.

        Like every adapter, a closed memory adapter answers every operation with
        ``StorageUnavailable``; its entries are dropped.
        """
        self._closed = True
        sweeper, self._sweeper = self._sweeper, None
        await self._cancel_task(sweeper)
        await super().close()
        self._data = _ClosedEntries()
        self._data.refusal = f"{self!r} is closed"
        self._heap.clear()
        self._lru.clear()

    def _repr_fields(self) -> Mapping[str, Any]:
        return {
            "entries": len(self._data),
            "max_entries": self.max_entries,
            "sweep_interval": self.sweep_interval,
        }


class _Blocking:
    """A memory adapter's blocking twins: the same code, without a coroutine around it.

    botstate.sync calls them under its loop's lock (the adapter declares
    ``runs_inline``), so they never run beside the loop's own callbacks, but
    with no event loop running: a call that would start a task (the sweeper,
    for an expiring write; an expiry event's callbacks) answers
    ``NotImplemented`` before changing anything, and the async method runs.
    """

    __slots__ = ("_adapter",)

    def __init__(self, adapter: MemoryAdapter) -> None:
        self._adapter = adapter

    def _entry(self, key: str) -> Any:
        """The live entry of ``key``, ``None``, or ``NotImplemented`` (its expiry has listeners)."""
        adapter = self._adapter
        entry = adapter._data.get(key)
        if entry is None:
            return None
        expires_at = entry[_EXPIRES]
        if expires_at is not None and expires_at <= adapter.clock():
            if adapter._expiry_callbacks:
                return NotImplemented
            del adapter._data[key]
            return None
        return entry

    def _needs_loop(self, expires_at: float | None, count: int) -> bool:
        """Whether writing ``count`` entries could start the sweeper or emit an eviction."""
        adapter = self._adapter
        if expires_at is not None and adapter.sweep_interval and not adapter._closed:
            sweeper = adapter._sweeper
            if sweeper is None or sweeper.done():
                return True
        return bool(adapter._expiry_callbacks) and (
            len(adapter._data) + count > adapter.max_entries > 0
        )

    def get(self, key: str) -> bytes | None:
        adapter = self._adapter  # _entry() inlined: the hottest twin
        entry = adapter._data.get(key)
        if entry is None:
            return None
        if entry[_EXPIRES] is not None and entry[_EXPIRES] <= adapter.clock():
            return self._entry(key)  # type: ignore[no-any-return]
        adapter._tick = entry[_USED] = adapter._tick + 1
        return entry[_VALUE]  # type: ignore[no-any-return]

    def has(self, key: str) -> bool:
        entry = self._entry(key)
        return entry if entry is NotImplemented else entry is not None

    def set(self, key: str, value: bytes, expires_at: float | None = None) -> None:
        if self._needs_loop(expires_at, 1):
            return NotImplemented  # type: ignore[no-any-return]
        self._adapter._write(key, value, expires_at)

    def delete(self, key: str) -> bool:
        entry = self._entry(key)
        if entry is None or entry is NotImplemented:
            return False if entry is None else entry
        del self._adapter._data[key]
        return True

    def get_expiry(self, key: str) -> float | None:
        entry = self._entry(key)
        if entry is None or entry is NotImplemented:
            return entry
        return entry[_EXPIRES]  # type: ignore[no-any-return]

    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        if self._adapter._expiry_callbacks:
            return NotImplemented  # type: ignore[no-any-return]  # an entry may expire
        return self._adapter._get_many(keys)

    def set_many(self, items: Mapping[str, bytes], expires_at: float | None = None) -> None:
        if self._needs_loop(expires_at, len(items)):
            return NotImplemented  # type: ignore[no-any-return]
        self._adapter._set_many(items, expires_at)

    def delete_many(self, keys: Sequence[str]) -> int:
        if self._adapter._expiry_callbacks:
            return NotImplemented  # type: ignore[no-any-return]  # an entry may expire
        return self._adapter._delete_many(keys)


class _ClosedEntries(dict[str, _Entry]):
    """A closed adapter's entries: empty, and every lookup or write raises.

    So the hottest operations need no closed check of their own: their first
    touch of the entries raises ``StorageUnavailable``, before any change.
    """

    refusal = "the memory adapter is closed"

    def _refuse(self, *args: object, **kwargs: object) -> NoReturn:
        raise StorageUnavailable(self.refusal)

    get = __getitem__ = __setitem__ = __delitem__ = pop = setdefault = update = _refuse
