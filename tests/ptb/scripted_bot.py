"""A scripted PTB bot run as its own process by test_scripted_bot.py (no network).

    python scripted_bot.py URL NAMESPACE step TEXT CHAT USER   one update; prints the replies
    python scripted_bot.py URL NAMESPACE burst N TASKS         N pings in chat 1, TASKS at once,
                                                               after printing "ready" and reading
                                                               a line from stdin
    python scripted_bot.py URL NAMESPACE report                prints the stored state

The bot: a persistent ConversationHandler "order" (/order → item → amount →
done, answers in user_data, orders in chat_data) and a counter of every
message in chat_data. It runs as BotstateApplication on BotstatePersistence,
its Bot API calls answered by botkit.Recorder.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from botkit import build, send
from telegram import Update
from telegram.ext import CommandHandler, ContextTypes, ConversationHandler, MessageHandler, filters

import botstate
from botstate_ptb import BotstateApplication, BotstatePersistence

Context = ContextTypes.DEFAULT_TYPE
ITEM, AMOUNT = range(2)


async def order(update: Update, context: Context) -> int:
    assert update.message
    await update.message.reply_text("What would you like?")
    return ITEM


async def item(update: Update, context: Context) -> int:
    assert update.message and context.user_data is not None
    context.user_data["item"] = update.message.text
    await update.message.reply_text("How many?")
    return AMOUNT


async def amount(update: Update, context: Context) -> int:
    assert update.message and update.message.text
    assert context.user_data is not None and context.chat_data is not None
    n = int(update.message.text)
    context.chat_data.setdefault("orders", []).append((context.user_data["item"], n))
    await update.message.reply_text(f"Ordered {n} x {context.user_data['item']}")
    return ConversationHandler.END


async def count(update: Update, context: Context) -> None:
    assert context.chat_data is not None
    seen = context.chat_data.get("count", 0)
    await asyncio.sleep(0.002)  # a handler doing I/O: read-modify-write across an await
    context.chat_data["count"] = seen + 1


def application(url: str, namespace: str) -> Any:
    storage = botstate.open_storage(url, namespace=namespace)
    app, recorder = build(
        BotstatePersistence(storage, update_interval=3600, lock_timeout=120),
        application_class=BotstateApplication,
    )
    text = filters.TEXT & ~filters.COMMAND
    app.add_handler(
        ConversationHandler(
            entry_points=[CommandHandler("order", order)],
            states={ITEM: [MessageHandler(text, item)], AMOUNT: [MessageHandler(text, amount)]},
            fallbacks=[],
            name="order",
            persistent=True,
        ),
        group=0,
    )
    app.add_handler(MessageHandler(filters.ALL, count), group=1)
    return app, recorder, storage


async def main(url: str, namespace: str, mode: str, *args: str) -> None:
    app, recorder, storage = application(url, namespace)
    errors: list[str] = []

    async def on_error(update: object, context: Context) -> None:
        errors.append(repr(context.error))

    app.add_error_handler(on_error)
    try:
        async with app:
            if mode == "step":
                text, chat, user = args
                await send(app, text, chat_id=int(chat), user_id=int(user))
                print(json.dumps({"replies": recorder.texts(), "errors": errors}))
            elif mode == "burst":
                n, tasks = int(args[0]), int(args[1])

                async def worker(share: range) -> None:
                    for i in share:
                        await send(app, f"ping {i}", chat_id=1, user_id=100 + i % 5)

                print("ready", flush=True)
                await asyncio.to_thread(sys.stdin.readline)  # the test starts both at once
                began = time.time()
                await asyncio.gather(*(worker(range(t, n, tasks)) for t in range(tasks)))
                print(json.dumps({"done": n, "errors": errors, "span": [began, time.time()]}))
            elif mode == "report":
                conversations = await app.persistence.get_conversations("order")
                print(
                    json.dumps(
                        {
                            "chat": app.chat_data.get(1, {}),
                            "users": {str(k): v for k, v in app.user_data.items()},
                            "conversations": {json.dumps(k): v for k, v in conversations.items()},
                        }
                    )
                )
    finally:
        await storage.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
