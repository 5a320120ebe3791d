"""How botstate sessions plug into aiogram, python-telegram-bot and discord.py handlers.

No network and no framework needed: the updates below have the same shape as
each framework's objects (only the fields used), and a scripted stream feeds
them to handlers written the way each framework wants them.

    python examples/frameworks.py
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import botstate
from botstate import Sessions, chat_key, user_in_chat_key


# -- python-telegram-bot: handlers take (update, context) ---------------------
@dataclass
class PTBChat:
    id: int


@dataclass
class PTBUser:
    id: int


@dataclass
class PTBMessage:
    text: str


@dataclass
class PTBUpdate:
    effective_chat: PTBChat
    effective_user: PTBUser
    effective_message: PTBMessage


# -- aiogram: handlers take (message, **data) --------------------------------
@dataclass
class AiogramMessage:
    chat: PTBChat
    from_user: PTBUser
    text: str


# -- discord.py: commands take (ctx) -----------------------------------------
@dataclass
class DiscordChannel:
    id: int


@dataclass
class DiscordCtx:
    channel: DiscordChannel
    author: PTBUser


async def main() -> None:
    storage = botstate.open_storage("memory://", namespace="frameworks")
    sessions = Sessions(storage, initial=lambda: {"messages": 0})
    replies: list[str] = []

    # python-telegram-bot style: key from update.effective_chat / effective_user
    @sessions.handler(
        lambda update, context: user_in_chat_key(update.effective_chat.id, update.effective_user.id)
    )
    async def ptb_echo(update: PTBUpdate, context: Any, session: Any) -> None:
        session.data["messages"] += 1
        replies.append(f"[ptb] {update.effective_message.text!r} (#{session.data['messages']})")

    # aiogram style: the session arrives as a keyword, like aiogram's injected data
    @sessions.handler(lambda message: user_in_chat_key(message.chat.id, message.from_user.id))
    async def aiogram_echo(message: AiogramMessage, session: Any) -> None:
        session.data["messages"] += 1
        replies.append(f"[aiogram] {message.text!r} (#{session.data['messages']})")

    # discord.py style: one shared session per channel, so isolation matters
    channel_sessions = Sessions(storage, initial=lambda: {"count": 0}, isolation="process")

    @channel_sessions.handler(lambda ctx: chat_key(ctx.channel.id))
    async def discord_count(ctx: DiscordCtx, session: Any) -> None:
        session.data["count"] += 1

    alice, bob = PTBUser(1), PTBUser(2)
    await ptb_echo(PTBUpdate(PTBChat(10), alice, PTBMessage("hi")), None)
    await ptb_echo(PTBUpdate(PTBChat(10), alice, PTBMessage("again")), None)
    await aiogram_echo(AiogramMessage(PTBChat(10), bob, "hello"))
    await asyncio.gather(*(discord_count(DiscordCtx(DiscordChannel(99), alice)) for _ in range(25)))
    for line in replies:
        print(line)
    async with channel_sessions.open(chat_key(99)) as session:
        print(f"[discord] channel 99 counted {session.data['count']} concurrent commands")
    await storage.close()


if __name__ == "__main__":
    asyncio.run(main())
