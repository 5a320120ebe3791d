"""Importing a PicklePersistence file written by PTB itself into a botstate storage."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from botkit import build, send
from telegram.ext import ContextTypes, MessageHandler, PicklePersistence, filters
from test_persistence import State, counter, survey

import botstate
from botstate_ptb import BotstatePersistence, UnstorableValue, import_pickle
from botstate_ptb.__main__ import main

Context = ContextTypes.DEFAULT_TYPE
WHEN = datetime(2024, 5, 1, tzinfo=timezone.utc)


async def write_pickle(path: Path, *, single_file: bool = True, bad: bool = False) -> None:
    """Run a bot on PTB's own PicklePersistence: a conversation, counters, typed values."""
    app, _ = build(PicklePersistence(path, single_file=single_file))
    app.add_handler(survey(), group=0)
    app.add_handler(MessageHandler(filters.ALL, counter), group=1)
    async with app:
        await send(app, "/start", chat_id=-10, user_id=7)
        await send(app, "hello", chat_id=-10, user_id=7)
        await send(app, "/start", chat_id=20, user_id=20)
        app.chat_data[-10]["typed"] = {1: WHEN, "pair": (1, 2), "tags": {"a"}}
        app.bot_data["since"] = WHEN
        if bad:
            app.chat_data[20]["thing"] = object()
            app.user_data[7]["other"] = [object()]
        app.mark_data_for_update_persistence(chat_ids=[-10, 20], user_ids=7)


async def check_imported(storage: botstate.Storage[Any]) -> None:
    app, _ = build(BotstatePersistence(storage))
    handler = survey()
    app.add_handler(handler, group=0)
    app.add_handler(MessageHandler(filters.ALL, counter), group=1)
    async with app:
        assert app.chat_data[-10]["count"] == 2
        assert app.chat_data[-10]["typed"] == {1: WHEN, "pair": (1, 2), "tags": {"a"}}
        assert app.user_data[7] == {"answer": "hello", "seen": app.user_data[7]["seen"]}
        assert app.bot_data["since"] == WHEN
        await send(app, "yes", chat_id=-10, user_id=7)  # CONFIRM → END, as in the old bot
        await send(app, "Zed", chat_id=20, user_id=20)  # ASK → CONFIRM
        assert app.user_data[20]["answer"] == "Zed"
    assert await storage.get("ptb:conversation:survey:[-10,7]") is None
    assert await storage.get("ptb:conversation:survey:[20,20]") == State.CONFIRM


async def test_import_single_file(tmp_path: Path, storage: botstate.Storage[Any]) -> None:
    path = tmp_path / "bot.pickle"
    await write_pickle(path)
    report = await import_pickle(path, storage)
    assert (report.users, report.chats, report.bot_data) == (2, 2, True)
    assert report.conversations == {"survey": 2}
    assert str(report).endswith(f"{report.keys} keys")
    assert await storage.get("ptb:conversation:survey:[-10,7]") == State.CONFIRM
    await check_imported(storage)


@pytest.mark.parametrize("backend", ["sqlite", "redis"])  # memory does not outlive the command
def test_import_multi_file_from_the_command_line(
    tmp_path: Path, url: str, namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    prefix = tmp_path / "bot"
    asyncio.run(write_pickle(prefix, single_file=False))
    assert main(["import-pickle", str(prefix), url, "--multi-file", "--namespace", namespace]) == 0
    assert "2 user_data, 2 chat_data" in capsys.readouterr().out

    async def check() -> None:
        storage = botstate.open_storage(url, namespace=namespace)
        try:
            await check_imported(storage)
        finally:
            await storage.close()

    asyncio.run(check())


def test_the_module_runs_as_a_command(tmp_path: Path) -> None:
    path = tmp_path / "bot.pickle"
    asyncio.run(write_pickle(path))
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    # The pickle names test_persistence.State (the conversation states): as for a real
    # bot, the command runs where the bot's modules import.
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    done = subprocess.run(
        [sys.executable, "-m", "botstate_ptb", "import-pickle", str(path), url],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("imported 2 user_data, 2 chat_data, bot_data yes")
    again = subprocess.run(
        [sys.executable, "-m", "botstate_ptb", "import-pickle", str(path), url],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert again.returncode == 1 and "--replace" in again.stderr


async def test_unstorable_values_are_all_listed_and_nothing_written(
    tmp_path: Path, storage: botstate.Storage[Any]
) -> None:
    path = tmp_path / "bot.pickle"
    await write_pickle(path, bad=True)
    with pytest.raises(UnstorableValue) as caught:
        await import_pickle(path, storage)
    message = str(caught.value)
    assert "2 value(s)" in message
    assert "- user_data[7]['other'][0]" in message and "- chat_data[20]['thing']" in message
    assert [key async for key in storage.keys()] == []


async def test_existing_data_is_kept_unless_replace(
    tmp_path: Path, storage: botstate.Storage[Any]
) -> None:
    path = tmp_path / "bot.pickle"
    await write_pickle(path)
    await storage.set("ptb:chat_data:-10", {"count": 99})
    await storage.set("ptb:chat_data:555", {"kept": True})
    with pytest.raises(botstate.UsageError, match="replace"):
        await import_pickle(path, storage)
    assert await storage.get("ptb:chat_data:-10") == {"count": 99}
    await import_pickle(path, storage, replace=True)
    assert (await storage.get("ptb:chat_data:-10"))["count"] == 2
    assert await storage.get("ptb:chat_data:555") == {"kept": True}


async def test_missing_or_broken_files(tmp_path: Path, storage: botstate.Storage[Any]) -> None:
    with pytest.raises(botstate.InvalidArgument, match="no PicklePersistence file"):
        await import_pickle(tmp_path / "absent.pickle", storage)
    broken = tmp_path / "broken.pickle"
    broken.write_bytes(b"not a pickle")
    with pytest.raises(botstate.DecodeError, match=r"broken\.pickle"):
        await import_pickle(broken, storage)


def test_the_command_reports_errors_with_exit_code_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["import-pickle", str(tmp_path / "absent"), "memory://"]) == 1
    assert "no PicklePersistence file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        main(["import-pickle"])
    assert usage.value.code == 2


async def test_imported_keys_are_what_the_persistence_writes(
    tmp_path: Path, storage: botstate.Storage[Any]
) -> None:
    """The same bot on BotstatePersistence and on an import of its pickle: same keys and values."""
    path = tmp_path / "bot.pickle"
    await write_pickle(path)
    imported = storage.with_namespace(f"{storage.namespace}-imported")
    await import_pickle(path, imported)
    app, _ = build(BotstatePersistence(storage))
    app.add_handler(survey(), group=0)
    app.add_handler(MessageHandler(filters.ALL, counter), group=1)
    pickled = PicklePersistence(path)
    async with app:
        for kind in ("user_data", "chat_data"):
            for ident, data in (await getattr(pickled, f"get_{kind}")()).items():
                getattr(app, kind)[ident].update(data)
                app.mark_data_for_update_persistence(
                    **{f"{kind.split('_')[0]}_ids": ident}  # type: ignore[arg-type]
                )
        app.bot_data.update(await pickled.get_bot_data())
        for key, state in (await pickled.get_conversations("survey")).items():
            await app.persistence.update_conversation("survey", key, state)  # type: ignore[union-attr]
    ours = {key: await storage.get(key) async for key in storage.keys("ptb:")}
    theirs = {key: await imported.get(key) async for key in imported.keys("ptb:")}
    ours.pop("ptb:callback_data", None)
    theirs.pop("ptb:callback_data", None)
    assert ours == theirs
