"""Where a memory session block's time goes, and the least it could cost (issue 14).

``python -m tooling.bench.session_floor`` (in the bench environment) times, per
call, the two session cases of ``bench_memory`` on one key: the raw side
exactly as :func:`tooling.bench._cases.session_cases` runs it, botstate's
``Sessions`` block, and a *floor*: one hand-inlined block that keeps every
guarantee a session gives and has no structure at all (no objects beyond
one, no layers, no calls it could inline):

- the key checked (``validate_key``) and namespaced;
- a per-key lock taken and released (a dict insert and delete);
- a versioned read (``get_versioned``: ATOMIC adapters save compare-and-set);
- the envelope decoded and checked (schema version, no migration to run);
- exact change detection: a ``marshal`` image of the data on load, compared
  on exit (a nested mutation is a change; ``1``, ``1.0`` and ``True`` differ);
- on a change: the envelope encoded, compared with the stored bytes, written
  with ``set_if`` on the version read and a sliding expiry.

The floor's ratio to raw is the best any session code can reach against that
raw side without dropping a guarantee; botstate's block minus the floor is
what its structure costs (the objects of one open, coroutine layers, calls).
Times are CPU time (``time.process_time``, so other processes' load counts
less), min and median of 11 repeats, the rows interleaved within each repeat;
the summary lines use the mins (the least disturbed runs). Trust ratios, not
absolute numbers.
"""

from __future__ import annotations

import json
import marshal
import time
import timeit
from collections.abc import Callable, Coroutine
from typing import Any

from botstate import Sessions, Storage
from botstate.adapter import validate_key
from botstate_storage_memory import MemoryAdapter

from ._cases import SESSION_TTL, dumps, initial
from .bench_memory import AsyncDictStore

KEY = "chat:5"
RAW_KEY = "raw:" + KEY
NUMBER = 10_000
REPEAT = 11


def drive(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never suspends (the memory adapter's never do)."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    raise RuntimeError("the coroutine suspended")


class Floor:
    """A session block with every guarantee and nothing else, all inlined."""

    __slots__ = ("data", "full", "image", "key", "locks", "raw", "storage", "version")

    def __init__(self, storage: Storage[Any], locks: dict[str, list[Any]], key: str) -> None:
        self.storage = storage
        self.locks = locks
        self.key = key
        self.full = "bench:" + validate_key(key)

    async def __aenter__(self) -> Floor:
        if self.key in self.locks:
            raise RuntimeError("held")
        self.locks[self.key] = []
        got = await self.storage.adapter.get_versioned(self.full)
        if got is None:
            raise RuntimeError("absent")
        self.raw, self.version = got
        stored = self.storage.codec.decode(self.raw)
        if not (type(stored) is dict and stored.get("_v") == 1 and len(stored) == 2):
            raise RuntimeError("not a current envelope")
        self.data = stored["_d"]
        self.image = marshal.dumps(self.data, 2)
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            if marshal.dumps(self.data, 2) != self.image:
                body = self.storage.codec.encode({"_v": 1, "_d": self.data})
                if body != self.raw:
                    expires_at = time.time() + SESSION_TTL
                    adapter = self.storage.adapter
                    written = await adapter.set_if(
                        self.full, body, version=self.version, expires_at=expires_at
                    )
                    if written is None:
                        raise RuntimeError("conflict")
        finally:
            del self.locks[self.key]


def rows() -> tuple[list[tuple[str, Callable[[], object]]], Callable[[], None]]:
    """The timed rows and a reset that restores the stored values before each row."""
    adapter = MemoryAdapter(sweep_interval=0)
    storage: Storage[Any] = Storage(adapter, namespace="bench")
    sessions: Sessions[dict[str, Any]] = Sessions(
        storage, initial=initial, ttl=SESSION_TTL, isolation="process"
    )
    raw = AsyncDictStore()
    data = {"counter": 5, "name": "user 5", "lang": "en", "step": "menu", "cart": [1, 2, 3]}
    envelope = {"_v": 1, "_d": data}
    stored = storage.encode(KEY, envelope)
    raw_stored = dumps(data)
    locks: dict[str, list[Any]] = {}

    def reset() -> None:
        expires_at = time.time() + SESSION_TTL
        drive(raw.set(RAW_KEY, raw_stored, expires_at=expires_at))
        drive(adapter.set("bench:" + KEY, stored, expires_at=expires_at))

    async def raw_read() -> None:
        got = await raw.get(RAW_KEY)
        value = initial() if got is None else json.loads(got)
        value["counter"]

    async def raw_save() -> None:
        got = await raw.get(RAW_KEY)
        value = initial() if got is None else json.loads(got)
        value["counter"] += 1
        await raw.set(RAW_KEY, dumps(value), expires_at=time.time() + SESSION_TTL)

    async def ours_read() -> None:
        async with sessions.open(KEY) as session:
            session.data["counter"]

    async def ours_save() -> None:
        async with sessions.open(KEY) as session:
            session.data["counter"] += 1

    async def floor_read() -> None:
        async with Floor(storage, locks, KEY) as block:
            block.data["counter"]

    async def floor_save() -> None:
        async with Floor(storage, locks, KEY) as block:
            block.data["counter"] += 1

    async def empty() -> None:
        return None

    def take_and_release() -> None:
        locks[KEY] = []
        del locks[KEY]

    def versioned_read() -> object:
        return drive(adapter.get_versioned("bench:" + KEY))

    def versioned_write() -> object:
        got = drive(adapter.get_versioned("bench:" + KEY))
        return drive(adapter.set_if("bench:" + KEY, stored, version=got[1], expires_at=1e10))

    def call(fn: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], object]:
        return lambda: drive(fn())

    table: list[tuple[str, Callable[[], object]]] = [
        ("RAW read block: get + json.loads", call(raw_read)),
        ("  raw.get", lambda: drive(raw.get(RAW_KEY))),
        ("  json.loads(stored bytes)", lambda: json.loads(raw_stored)),
        ("OURS read block: Sessions open, unchanged", call(ours_read)),
        ("FLOOR read block", call(floor_read)),
        ("  validate_key", lambda: validate_key(KEY)),
        ("  per-key lock: dict insert + delete", take_and_release),
        ("  adapter.get_versioned", versioned_read),
        ("  codec.decode(envelope)", lambda: storage.codec.decode(stored)),
        ("  marshal.dumps(data, 2) (x2: on load, on exit)", lambda: marshal.dumps(data, 2)),
        ("  an async def awaited (x2: __aenter__, __aexit__)", call(empty)),
        ("RAW save block: get + loads + dumps + set", call(raw_save)),
        ("  json.dumps(data) (raw, a new encoder per call)", lambda: dumps(data)),
        ("OURS save block: Sessions open/save, one field", call(ours_save)),
        ("FLOOR save block", call(floor_save)),
        ("  codec.encode(envelope)", lambda: storage.codec.encode(envelope)),
        ("  adapter.get_versioned + set_if", versioned_write),
    ]
    return table, reset


def main() -> None:
    table, reset = rows()
    # Repeats outermost: every row is sampled across the same stretch of machine load.
    times: dict[str, list[float]] = {name: [] for name, _ in table}
    for _ in range(REPEAT):
        for name, fn in table:
            reset()
            times[name].append(timeit.timeit(fn, number=NUMBER, timer=time.process_time) / NUMBER)
    lows: dict[str, float] = {}
    print(f"{'per call, CPU time':<52} {'min µs':>7} {'med µs':>7}")
    for name, _ in table:
        ordered = sorted(times[name])
        low, mid = ordered[0] * 1e6, ordered[REPEAT // 2] * 1e6
        lows[name.split(":")[0]] = low
        print(f"{name:<52} {low:>7.2f} {mid:>7.2f}")
    for case in ("read", "save"):
        raw, ours, floor = (lows[f"{side} {case} block"] for side in ("RAW", "OURS", "FLOOR"))
        print(
            f"{case}: raw/ours {raw / ours:.2f}×, raw/floor {raw / floor:.2f}× (the best any "
            f"session code reaches), structure {ours - floor:.2f} µs of {ours:.2f}"
        )


if __name__ == "__main__":
    main()
