"""BotstateApplication: updates of one chat serialised across applications, written through."""

from __future__ import annotations

import asyncio
from typing import Any

from botkit import build, message, send
from telegram import Update
from telegram.ext import ContextTypes, MessageHandler, filters
from test_persistence import State, survey

import botstate
from botstate_ptb import BotstateApplication, BotstatePersistence

Context = ContextTypes.DEFAULT_TYPE


async def slow_counter(update: Update, context: Context) -> None:
    assert context.chat_data is not None
    count = context.chat_data.get("count", 0)
    await asyncio.sleep(0.001)  # let the other application interleave if it could
    context.chat_data["count"] = count + 1


def two_apps(storage: botstate.Storage[Any]) -> list[Any]:
    apps = []
    for _ in range(2):
        app, _ = build(
            BotstatePersistence(storage, update_interval=3600),
            application_class=BotstateApplication,
        )
        app.add_handler(survey(), group=0)
        app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, slow_counter), group=1)
        apps.append(app)
    return apps


async def test_concurrent_updates_of_one_chat_in_two_applications_count_exactly(
    storage: botstate.Storage[Any],
) -> None:
    one, two = two_apps(storage)
    async with one, two:
        await asyncio.gather(
            *(
                send(app, "ping", chat_id=1, user_id=user)
                for app in (one, two)
                for user in range(20)
            )
        )
        # written through: no flush needed for the store to be exact
        assert await storage.get("ptb:chat_data:1") == {"count": 40}


async def test_conversation_continues_in_the_other_application(
    storage: botstate.Storage[Any],
) -> None:
    one, two = two_apps(storage)
    async with one, two:
        await send(one, "/start", chat_id=1, user_id=9)
        assert await storage.get("ptb:conversation:survey:[1,9]") == State.ASK
        await send(two, "Ann", chat_id=1, user_id=9)  # two never saw /start
        assert await storage.get("ptb:user_data:9") == {"answer": "Ann"}
        assert await storage.get("ptb:conversation:survey:[1,9]") == State.CONFIRM
        await send(one, "yes", chat_id=1, user_id=9)  # one's own state was stale
        assert await storage.get("ptb:conversation:survey:[1,9]") is None
        await send(two, "/start", chat_id=1, user_id=9)  # ended for two as well
        assert await storage.get("ptb:conversation:survey:[1,9]") == State.ASK


async def test_lock_timeout_reaches_the_error_handler(storage: botstate.Storage[Any]) -> None:
    persistence = BotstatePersistence(storage, lock_timeout=0.2)
    app, _ = build(persistence, application_class=BotstateApplication)
    handled: list[int] = []
    errors: list[BaseException] = []

    async def on_message(update: Update, context: Context) -> None:
        handled.append(update.update_id)

    async def on_error(update: object, context: Context) -> None:
        assert context.error is not None
        errors.append(context.error)

    app.add_handler(MessageHandler(filters.ALL, on_message))
    app.add_error_handler(on_error)
    async with app:
        async with persistence.lock("ptb:chat_data:5"):  # another holder of chat 5
            await send(app, "hi", chat_id=5, user_id=5)
        assert handled == [] and len(errors) == 1
        assert isinstance(errors[0], botstate.ConflictError)
        await send(app, "hi", chat_id=5, user_id=5)
        assert len(handled) == 1


async def test_other_persistence_and_non_updates_behave_like_application(
    storage: botstate.Storage[Any],
) -> None:
    app, _ = build(BotstatePersistence(storage), application_class=BotstateApplication)
    seen: list[object] = []

    async def anything(update: object, context: Context) -> None:
        seen.append(update)

    from telegram.ext import TypeHandler

    app.add_handler(TypeHandler(str, anything))
    async with app:
        await app.process_update("not an update")
    assert seen == ["not an update"]
    assert message("x").effective_chat is not None
