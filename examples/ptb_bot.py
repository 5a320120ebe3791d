"""A python-telegram-bot bot whose state lives in botstate: a pizza-order conversation
and a per-chat message counter, surviving restarts, shareable by several processes.

    pip install botstate-ptb botstate-storage-sqlite
    TELEGRAM_TOKEN=123:abc python examples/ptb_bot.py                    # sqlite:///ptb_bot.db
    TELEGRAM_TOKEN=123:abc python examples/ptb_bot.py redis://localhost:6379/0 --workers

The only botstate lines are the persistence (and, for several processes, the
application class); the rest is an ordinary PTB bot. tests/ptb/test_example.py
runs it offline.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from telegram import Update
from telegram.ext import (
    Application,
    CommandHandler,
    ContextTypes,
    ConversationHandler,
    MessageHandler,
    filters,
)
from telegram.request import BaseRequest

from botstate_ptb import BotstateApplication, BotstatePersistence

Context = ContextTypes.DEFAULT_TYPE
SIZE, AMOUNT = range(2)


async def order(update: Update, context: Context) -> int:
    assert update.message
    await update.message.reply_text("Which size: small, medium or large?")
    return SIZE


async def size(update: Update, context: Context) -> int:
    assert update.message and context.user_data is not None
    context.user_data["size"] = update.message.text
    await update.message.reply_text("How many?")
    return AMOUNT


async def amount(update: Update, context: Context) -> int:
    assert update.message and update.message.text
    assert context.user_data is not None and context.chat_data is not None
    if not update.message.text.isdigit():
        await update.message.reply_text("A number, please.")
        return AMOUNT
    pizzas = (context.user_data["size"], int(update.message.text))
    context.chat_data.setdefault("orders", []).append(pizzas)  # a tuple: kept as a tuple
    await update.message.reply_text(f"{pizzas[1]} {pizzas[0]} pizza(s) ordered.")
    return ConversationHandler.END


async def stats(update: Update, context: Context) -> None:
    assert update.message and context.chat_data is not None
    orders = context.chat_data.get("orders", [])
    await update.message.reply_text(
        f"{context.chat_data.get('messages', 0)} messages, {len(orders)} orders here."
    )


async def count(update: Update, context: Context) -> None:
    assert context.chat_data is not None
    context.chat_data["messages"] = context.chat_data.get("messages", 0) + 1


def make_application(
    token: str,
    storage: str = "sqlite:///ptb_bot.db",
    *,
    workers: bool = False,
    request: BaseRequest | None = None,
) -> Application[Any, Any, Any, Any, Any, Any]:
    """The bot. ``workers=True``: several processes serve it (BotstateApplication)."""
    builder = Application.builder().token(token).persistence(BotstatePersistence(storage))
    if workers:
        builder = builder.application_class(BotstateApplication)
    if request is not None:  # tests answer the Bot API locally
        builder = builder.request(request).get_updates_request(request)
    application = builder.build()
    text = filters.TEXT & ~filters.COMMAND
    application.add_handler(
        ConversationHandler(
            entry_points=[CommandHandler("order", order)],
            states={SIZE: [MessageHandler(text, size)], AMOUNT: [MessageHandler(text, amount)]},
            fallbacks=[],
            name="order",
            persistent=True,
        )
    )
    application.add_handler(CommandHandler("stats", stats))
    application.add_handler(MessageHandler(filters.ALL, count), group=1)
    return application


if __name__ == "__main__":
    token = os.environ.get("TELEGRAM_TOKEN")
    if not token:
        sys.exit("set TELEGRAM_TOKEN to your bot's token (from @BotFather)")
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    make_application(
        token, *(args[:1] or ["sqlite:///ptb_bot.db"]), workers="--workers" in sys.argv
    ).run_polling()
