"""examples/ptb_bot.py runs as written, offline, and keeps its state across a restart."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
from botkit import TOKEN, Recorder, message

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ptb_bot.py"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ptb_bot_example", EXAMPLE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("workers", [False, True])
async def test_example_bot_orders_survive_a_restart(tmp_path: Path, workers: bool) -> None:
    example = load()
    url = f"sqlite:///{tmp_path / 'ptb_bot.db'}"
    texts = ["/order", "large"]
    recorder = Recorder()
    app = example.make_application(TOKEN, url, workers=workers, request=recorder)
    async with app:
        for text in texts:
            await app.process_update(message(text, chat_id=5, user_id=5, bot=app.bot))
    assert recorder.texts() == ["Which size: small, medium or large?", "How many?"]

    recorder = Recorder()
    app = example.make_application(TOKEN, url, workers=workers, request=recorder)
    async with app:
        for text in ["two", "2", "/stats"]:
            await app.process_update(message(text, chat_id=5, user_id=5, bot=app.bot))
        assert app.chat_data[5]["orders"] == [("large", 2)]
    assert recorder.texts() == [
        "A number, please.",
        "2 large pizza(s) ordered.",
        "4 messages, 1 orders here.",  # counted after the reply (group 1)
    ]
