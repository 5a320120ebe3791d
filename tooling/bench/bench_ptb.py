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
  ``flush()``: that is at shutdown only, so a crash loses everything since start.
- ``BotstatePersistence(storage)`` (``shared=True``, several processes may
  share the storage) writes each changed chat under its own key with one atomic
  read-merge-write each, concurrently, as PTB gathers them; durable after
  ``update_persistence()``, its ``flush()`` writes nothing more.
- ``BotstatePersistence(storage, shared=False)`` (one process, like a pickle
  file) writes the changed chats whole, in ``set_many`` batches of 500.

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


def application(
    persistence: BasePersistence[Any, Any, Any], chats: int
) -> Application[Any, Any, Any, Any, Any, Any]:
    app = Application.builder().token("123456:bench").persistence(persistence).build()
    for chat in range(chats):
        app.chat_data[chat].update(
            {"count": 0, "lang": "en", "history": [1, 2, 3], 7: "int key", "since": WHEN}
        )
    return app


def side(app: Application[Any, Any, Any, Any, Any, Any], chats: int) -> tuple[Any, Any]:
    """``(setup, flush)``: change every chat and mark it; then flush as PTB does."""
    persistence = app.persistence
    assert persistence is not None

    async def setup() -> None:
        for chat in range(chats):
            app.chat_data[chat]["count"] += 1
        app.mark_data_for_update_persistence(chat_ids=range(chats))

    async def flush() -> None:
        await app.update_persistence()
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
        for name, storage in storages.items():
            await _case(
                bench,
                f"{name} vs pickle on_flush",
                BotstatePersistence(storage, prefix="shared"),
                PicklePersistence(tmp / f"{name}-on-flush.pickle", on_flush=True),
                "on_flush=True writes the file once, at shutdown only",
            )
            await _case(
                bench,
                f"{name} shared=False vs pickle on_flush",
                BotstatePersistence(storage, prefix="one", shared=False),
                PicklePersistence(tmp / f"{name}-on-flush-2.pickle", on_flush=True),
                "one process: set_many batches of 500",
            )
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
) -> None:
    ours_setup, ours_flush = side(application(ours, chats), chats)
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
        target=1.0,
        setup=setup,
        note=note,
    )
