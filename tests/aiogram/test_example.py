"""examples/aiogram_bot.py, fed updates locally on SQLite, restarted in the middle."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from aiogram import Bot

from botstate_aiogram import BotstateStorage
from tests.aiogram.recorder import RecordingSession, message_update

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "aiogram_bot.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("aiogram_bot_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def run(url: str, *texts: str) -> list[str]:
    example = load_example()
    storage = BotstateStorage.from_url(url, namespace="example-bot")
    dp = example.build_dispatcher(storage)
    recorder = RecordingSession()
    bot = Bot("42:TEST", session=recorder)
    try:
        for text in texts:
            await dp.feed_update(bot, message_update(-5, 8, text))
    finally:
        await storage.close()
    return recorder.texts(-5)


async def test_example_bot_across_restarts(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    assert await run(url, "/signup", "Ann") == ["What is your name?", "How old are you?"]
    assert await run(url, "lots", "33", "/count", "/count", "/seen") == [
        "Please send your age as a number.",
        "Welcome, Ann (33)!",
        "You counted 1 times.",
        "You counted 2 times.",
        "/seen was sent 1 times in this chat.",
    ]
    assert await run(url, "/count", "/seen", "/signup", "/cancel") == [
        "You counted 3 times.",
        "/seen was sent 2 times in this chat.",
        "What is your name?",
        "Cancelled.",
    ]
