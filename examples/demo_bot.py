"""The botstate demo: a scripted bot conversation on an SQLite file.

    hatch run demo            # or: python examples/demo_bot.py [path/to/bot.db]

Several simulated users talk to a bot whose per-user state lives in
botstate sessions on SQLite (the embedded default). The script shows:

1. counters that survive a restart of the bot (the file is reopened);
2. the v2 bot migrating sessions written by v1;
3. a quiz session expiring, with the "session timed out" callback.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botstate
from botstate import Sessions, Storage, user_in_chat_key

QUIZ_SECONDS = 1.5


@dataclass
class Message:
    """What a chat framework would hand the handler (only the fields used)."""

    chat_id: int
    user_id: int
    name: str
    text: str


def say(who: str, text: str) -> None:
    print(f"  {who:>11} │ {text}")


def session_key(message: Message) -> str:
    return user_in_chat_key(message.chat_id, message.user_id)


# -- bot version 1: sessions hold the full name and a message counter ---------
def bot_v1(storage: Storage[Any]) -> Sessions[dict[str, Any]]:
    return Sessions(
        storage,
        key=session_key,
        initial=lambda: {"name": None, "messages": 0},
        version=1,
        isolation="process",
    )


async def handle_v1(sessions: Sessions[dict[str, Any]], message: Message) -> None:
    say(message.name, message.text)
    async with sessions.open(message) as session:
        data = session.data
        data["name"] = data["name"] or message.name
        data["messages"] += 1
        say("bot", f"Hi {data['name']}! That is message #{data['messages']} from you.")


# -- bot version 2: first/last name and a language, migrated from v1 ----------
def migrate_to_v2(old: dict[str, Any]) -> dict[str, Any]:
    first, _, last = (old.get("name") or "").partition(" ")
    return {"first_name": first, "last_name": last, "lang": "en", "messages": old["messages"]}


def bot_v2(storage: Storage[Any]) -> Sessions[dict[str, Any]]:
    return Sessions(
        storage,
        key=session_key,
        initial=lambda: {"first_name": "", "last_name": "", "lang": "en", "messages": 0},
        version=2,
        migrations={2: migrate_to_v2},
        isolation="process",
    )


async def handle_v2(sessions: Sessions[dict[str, Any]], message: Message) -> None:
    say(message.name, message.text)
    async with sessions.open(message) as session:
        data = session.data
        if not data["first_name"]:
            data["first_name"], _, data["last_name"] = message.name.partition(" ")
        if message.text.startswith("/lang "):
            data["lang"] = message.text.split()[1]
            say("bot", f"Language set to {data['lang']!r}, {data['first_name']}.")
            return
        data["messages"] += 1
        greeting = {"en": "Welcome back", "de": "Willkommen zurück"}.get(data["lang"], "Hello")
        say(
            "bot",
            f"{greeting}, {data['first_name']}! Message #{data['messages']} (lang={data['lang']}).",
        )


# -- a quiz with a short, fixed lifetime and a timeout message ----------------
def quiz_sessions(storage: Storage[Any]) -> Sessions[dict[str, Any]]:
    def timed_out(key: str, data: dict[str, Any]) -> None:
        say(
            "bot",
            f"⏰ {data['player']}, your quiz timed out on question {data['question']} ({key})",
        )

    return Sessions(
        storage.with_namespace("quiz"),
        key=session_key,
        initial=lambda: {"player": "", "question": 0},
        ttl=QUIZ_SECONDS,
        sliding=False,
        on_expire=timed_out,
    )


async def main(db_path: Path) -> None:
    url = f"sqlite:///{db_path}?purge_interval=0.25"
    print(f"botstate demo: sessions in {db_path}\n")
    alice = (100, 1, "Alice Smith")
    bob = (100, 2, "Bob Jones")
    carol = (200, 3, "Carol White")

    def msg(user: tuple[int, int, str], text: str) -> Message:
        return Message(user[0], user[1], user[2], text)

    print("── bot v1 starts " + "─" * 50)
    storage = botstate.open_storage(url, namespace="demo")
    sessions = bot_v1(storage)
    for user, text in [
        (alice, "/start"),
        (bob, "hello"),
        (alice, "how are you?"),
        (carol, "hi there"),
        (alice, "still here"),
    ]:
        await handle_v1(sessions, msg(user, text))
    await storage.close()

    print("\n── the bot restarts as v2: its state is only in the SQLite file " + "─" * 3)
    storage = botstate.open_storage(url, namespace="demo")
    raw = await storage.get(session_key(msg(alice, "")))
    print(f"  stored for Alice before migration: {raw}")
    sessions = bot_v2(storage)
    for user, text in [
        (alice, "back again"),
        (bob, "/lang de"),
        (bob, "guten Tag"),
        (carol, "hello v2"),
    ]:
        await handle_v2(sessions, msg(user, text))
    raw = await storage.get(session_key(msg(alice, "")))
    print(f"  stored for Alice after migration:  {raw}")

    print("\n── a quiz session that times out " + "─" * 34)
    quiz = quiz_sessions(storage)
    dave = (300, 4, "Dave Brown")
    say(dave[2], "/quiz")
    async with quiz.open(msg(dave, "/quiz")) as session:
        session.data.update(player="Dave", question=1)
    say("bot", f"Question 1: what is 6 × 7? (answer within {QUIZ_SECONDS} s)")
    say(dave[2], "… (says nothing)")
    started = time.monotonic()
    await asyncio.sleep(QUIZ_SECONDS + 1.0)  # the SQLite purge reports the expired session
    print(f"  ({time.monotonic() - started:.1f} s later)")
    async with quiz.open(msg(dave, "42")) as session:
        say(dave[2], "42")
        late = "too late: the quiz is gone" if session.data["question"] == 0 else "in time"
        say("bot", f"{late}.")
    await quiz.close()

    print("\n── what is stored now " + "─" * 45)
    async for key in storage.keys():
        data = (await storage.get(key))["_d"]
        print(f"  {key:<22} messages={data['messages']:<3} lang={data['lang']}")
    await storage.close()


if __name__ == "__main__":
    if len(sys.argv) > 1:
        path = Path(sys.argv[1])
        path.unlink(missing_ok=True)
        asyncio.run(main(path))
    else:
        with tempfile.TemporaryDirectory(prefix="botstate-demo-") as tmp:
            asyncio.run(main(Path(tmp) / "bot.db"))
