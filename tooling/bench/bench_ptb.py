"""python-telegram-bot: BotstatePersistence vs PTB's PicklePersistence flushing changed chats.

One PTB ``Application`` per side (not initialized: no Bot API call), 1,000
chats (250 against the default PicklePersistence, see below) whose
``chat_data`` changed since the last flush (a counter, a list, an ``int`` key
and a datetime, as bots keep them), then what PTB runs every
``update_interval`` seconds and at shutdown: ``Application.update_persistence()``
followed by ``persistence.flush()``. ratio = ours / pickle throughput (chats
written per second); target ≥ 1.0× on every case (issue 14: botstate at least
as fast as the peer a user would pick instead).

- ``PicklePersistence(path)`` (PTB's default, ``on_flush=False``) rewrites its
  whole file on every ``update_chat_data`` call, so a flush of n chats writes
  the file n times.
- ``PicklePersistence(path, on_flush=True)`` writes the file once, at
  ``flush()``: PTB calls that at shutdown only, so in a running bot a crash
  loses every change since start. These rows compare different durability:
  ours has each changed chat in SQLite/Redis after ``update_persistence()``.
- ``BotstatePersistence(storage)`` (``shared=True``, several processes may
  share the storage) writes each changed chat under its own key with one atomic
  read-merge-write each, concurrently, as PTB gathers them; durable after
  ``update_persistence()``, its ``flush()`` writes nothing more but forgets
  what it saw (it is PTB's shutdown), so each round of the ``vs pickle`` rows
  is the first write after a start: a versioned read and a write per chat.
- ``BotstatePersistence(storage, shared=False)`` (one process, like a pickle
  file) writes the changed chats whole, in ``set_many`` batches of 500.

Rows closer to like-for-like:

- ``<backend> running vs pickle on_flush``: every round ends durable on both
  sides, as a running bot's interval would with each: ours runs
  ``update_persistence()`` only (no shutdown between rounds: a chat written
  before is written with one compare-and-set on the version it remembers),
  pickle ``update_persistence()`` + ``flush()`` (its one file write).
- ``memory vs pickle on_flush`` (informational): ours on ``memory://``,
  ``shared=False``, so botstate-ptb's own per-chat work (tagging the values,
  change detection, JSON) without any I/O; nothing of it survives a restart.

Profile (issue 14; process CPU time per chat, min of rounds, 2-core VM): both
sides pay PTB's ``deepcopy`` of each chat (≈ 12 µs) and a task per chat;
pickle on_flush adds a dict compare (0.3 µs) and its share of one
``pickle.dump`` (≈ 3 µs): ≈ 25 µs in all. Ours adds the tagged tree
(``to_stored``, 3.6 µs), change detection (≈ 1 µs), the per-key lock (1.2 µs),
JSON encode (3.6 µs) and the storage write: ≈ 41–50 µs on memory, so ≈ 0.5–0.6×
is the ceiling of any row here while each chat is JSON-encoded under its own
key (the design: several workers share the storage and ``botstate copy`` moves
it); the bench's wall time shows 0.4–0.57× on memory. On SQLite and Redis
each ``shared=True`` chat is one compare-and-set (plus a versioned read
after a start), a statement or command per chat where pickle writes one file.

The default PicklePersistence is O(n²) in the chats of one flush (a flush of
1,000 chats took 15–35 s on a 2-core VM), so those two cases flush 250 chats
and run at most 3 rounds.
"""

from __future__ import annotations

import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from telegram.ext import Application, BasePersistence, PicklePersistence

import botstate
from botstate_ptb import BotstatePersistence
from tooling.services.redis import start_redis

from . import Bench

CHATS = 1_000
PICKLE_DEFAULT_CHATS = 250
WHEN = datetime(2024, 5, 1, tzinfo=timezone.utc)
ON_FLUSH_BOUND = (
    "each chat JSON-encoded under its own key costs more than pickle's dict store, "
    "with no I/O at all: ceiling ≈0.5-0.6× (module docstring; the memory row)"
)


def application(
    persistence: BasePersistence[Any, Any, Any], chats: int
) -> Application[Any, Any, Any, Any, Any, Any]:
    app = Application.builder().token("123456:bench").persistence(persistence).build()
    for chat in range(chats):
        app.chat_data[chat].update(
            {"count": 0, "lang": "en", "history": [1, 2, 3], 7: "int key", "since": WHEN}
        )
    return app


def side(
    app: Application[Any, Any, Any, Any, Any, Any], chats: int, *, shutdown: bool = True
) -> tuple[Any, Any]:
    """``(setup, flush)``: change every chat and mark it; then flush as PTB does.

    ``shutdown=False``: ``update_persistence()`` only, as every ``update_interval``
    of a running bot, without the ``persistence.flush()`` of its shutdown.
    """
    persistence = app.persistence
    assert persistence is not None

    async def setup() -> None:
        for chat in range(chats):
            app.chat_data[chat]["count"] += 1
        app.mark_data_for_update_persistence(chat_ids=range(chats))

    async def flush() -> None:
        await app.update_persistence()
        if shutdown:
            await persistence.flush()

    return setup, flush


async def run(bench: Bench) -> None:
    with tempfile.TemporaryDirectory(prefix="botstate-bench-ptb-") as tmp:
        server = start_redis(Path(tmp) / "redis")
        try:
            await _run(bench, Path(tmp), server.url)
        finally:
            server.stop()


async def _run(bench: Bench, tmp: Path, redis_url: str) -> None:
    storages = {
        "sqlite": botstate.open_storage(f"sqlite:///{tmp / 'ptb.db'}", namespace="bench"),
        "redis": botstate.open_storage(redis_url, namespace="bench"),
    }
    slow = bench.capped(3)
    try:
        for name, storage in storages.items():
            await _case(
                slow,
                f"{name} vs pickle ({PICKLE_DEFAULT_CHATS} chats)",
                BotstatePersistence(storage, prefix="shared"),
                PicklePersistence(tmp / f"{name}-default.pickle"),
                "PicklePersistence() rewrites its whole file per changed chat",
                chats=PICKLE_DEFAULT_CHATS,
            )
        on_flush = (
            "pickle on_flush=True writes its file at flush() only, which PTB calls at shutdown "
            "(a crash loses every change since start); ours: each chat durable in {} after "
            "update_persistence(), and flush() is a shutdown here (see 'running')"
        )
        for name, storage in storages.items():
            await _case(
                bench,
                f"{name} vs pickle on_flush",
                BotstatePersistence(storage, prefix="shared"),
                PicklePersistence(tmp / f"{name}-on-flush.pickle", on_flush=True),
                on_flush.format(name),
                bound=ON_FLUSH_BOUND,
            )
            await _case(
                bench,
                f"{name} shared=False vs pickle on_flush",
                BotstatePersistence(storage, prefix="one", shared=False),
                PicklePersistence(tmp / f"{name}-on-flush-2.pickle", on_flush=True),
                "one process: set_many batches of 500; durability differs as above",
                bound=ON_FLUSH_BOUND,
            )
            await _case(
                bench,
                f"{name} running vs pickle on_flush",
                BotstatePersistence(storage, prefix="running"),
                PicklePersistence(tmp / f"{name}-on-flush-3.pickle", on_flush=True),
                "both durable after each round: ours update_persistence() (a running bot's "
                "interval), pickle update_persistence() + flush()",
                ours_shutdown=False,
                bound=ON_FLUSH_BOUND,
            )
        memory = botstate.open_storage("memory://", namespace="bench")
        try:
            await _case(
                bench,
                "memory vs pickle on_flush",
                BotstatePersistence(memory, shared=False),
                PicklePersistence(tmp / "memory-on-flush.pickle", on_flush=True),
                "ours on memory:// (no I/O, nothing survives a restart): botstate-ptb's own "
                "per-chat work; pickle writes its file at flush()",
                target=None,
            )
        finally:
            await memory.close()
    finally:
        for storage in storages.values():
            await storage.close()


async def _case(
    bench: Bench,
    case: str,
    ours: BasePersistence[Any, Any, Any],
    pickle: BasePersistence[Any, Any, Any],
    note: str,
    chats: int = CHATS,
    *,
    ours_shutdown: bool = True,
    target: float | None = 1.0,
    bound: str = "",
) -> None:
    ours_setup, ours_flush = side(application(ours, chats), chats, shutdown=ours_shutdown)
    pickle_setup, pickle_flush = side(application(pickle, chats), chats)

    async def setup() -> None:
        await ours_setup()
        await pickle_setup()

    await bench.compare(
        "ptb",
        case,
        ours=ours_flush,
        raw=pickle_flush,
        ops=chats,
        target=target,
        bound=bound,
        setup=setup,
        note=note,
    )
