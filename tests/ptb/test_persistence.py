"""BotstatePersistence inside a real PTB Application, on memory, SQLite and Redis.

These check what PTB's own test_basepersistence.py checks of a persistence
(load on initialize, update/drop/migrate round trips, flush on shutdown,
errors while persisting reaching the error handlers, conversations that end,
time out or nest, non-blocking conversations) against the data botstate
actually stored, plus what botstate-ptb adds (one key per item, refresh from
other processes, merges of bot_data, TTLs).
"""

from __future__ import annotations

import asyncio
import enum
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from botkit import build, message, send
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import (
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    ConversationHandler,
    MessageHandler,
    PersistenceInput,
    filters,
)

import botstate
from botstate_ptb import BotstatePersistence, UnstorableValue

Context = ContextTypes.DEFAULT_TYPE


class State(enum.IntEnum):
    ASK = 1
    CONFIRM = 2


def survey(
    name: str = "survey", *, timeout: float | None = None, block: bool = True
) -> ConversationHandler[Any]:
    """/start → ASK; text → CONFIRM; text → END (answers in user_data)."""

    async def start(update: Update, context: Context) -> State:
        return State.ASK

    async def ask(update: Update, context: Context) -> State:
        assert update.message and context.user_data is not None
        context.user_data["answer"] = update.message.text
        return State.CONFIRM

    async def confirm(update: Update, context: Context) -> int:
        return ConversationHandler.END

    text = filters.TEXT & ~filters.COMMAND
    return ConversationHandler(
        entry_points=[CommandHandler("start", start)],
        states={
            State.ASK: [MessageHandler(text, ask)],
            State.CONFIRM: [MessageHandler(text, confirm)],
        },
        fallbacks=[],
        name=name,
        persistent=True,
        conversation_timeout=timeout,
        block=block,
    )


async def counter(update: Update, context: Context) -> None:
    assert context.chat_data is not None and context.user_data is not None
    context.chat_data["count"] = context.chat_data.get("count", 0) + 1
    context.user_data.setdefault("seen", []).append(update.update_id)
    context.bot_data["last"] = update.update_id


async def test_data_written_on_update_persistence_and_loaded_on_initialize(
    storage: botstate.Storage[Any],
) -> None:
    app, _ = build(BotstatePersistence(storage))
    app.add_handler(MessageHandler(filters.ALL, counter))
    async with app:
        await send(app, "hi", chat_id=-100, user_id=7)
        assert await storage.get("ptb:chat_data:-100") is None  # not before the flush
        await app.update_persistence()
        assert await storage.get("ptb:chat_data:-100") == {"count": 1}
        assert await storage.get("ptb:user_data:7") == {"seen": [app.user_data[7]["seen"][0]]}
        assert await storage.get("ptb:bot_data") == {"last": app.bot_data["last"]}

    again, _ = build(BotstatePersistence(storage))
    async with again:
        assert again.chat_data[-100] == {"count": 1}
        assert again.user_data[7]["seen"] == app.user_data[7]["seen"]
        assert again.bot_data == app.bot_data


async def test_shutdown_writes_what_the_interval_did_not(storage: botstate.Storage[Any]) -> None:
    app, _ = build(BotstatePersistence(storage, update_interval=3600))
    app.add_handler(MessageHandler(filters.ALL, counter))
    async with app:
        for _ in range(3):
            await send(app, "hi", chat_id=5)
    assert await storage.get("ptb:chat_data:5") == {"count": 3}


async def test_update_interval_flushes_while_running(storage: botstate.Storage[Any]) -> None:
    persistence = BotstatePersistence(storage, update_interval=0.05)
    assert persistence.update_interval == 0.05
    app, _ = build(persistence)
    app.add_handler(MessageHandler(filters.ALL, counter))
    async with app:
        await app.start()
        await send(app, "hi", chat_id=6)
        for _ in range(100):
            if await storage.get("ptb:chat_data:6"):
                break
            await asyncio.sleep(0.02)
        assert await storage.get("ptb:chat_data:6") == {"count": 1}
        await app.stop()


async def test_one_key_per_user_chat_and_conversation(storage: botstate.Storage[Any]) -> None:
    app, _ = build(BotstatePersistence(storage))
    app.add_handler(survey(), group=0)
    app.add_handler(MessageHandler(filters.ALL, counter), group=1)
    async with app:
        for chat in (1, 2, 3):
            await send(app, "/start", chat_id=chat, user_id=10 + chat)
    keys = sorted([key async for key in storage.keys("ptb:")])
    assert keys == [
        "ptb:bot_data",
        "ptb:chat_data:1",
        "ptb:chat_data:2",
        "ptb:chat_data:3",
        "ptb:conversation:survey:[1,11]",
        "ptb:conversation:survey:[2,12]",
        "ptb:conversation:survey:[3,13]",
        "ptb:user_data:11",
        "ptb:user_data:12",
        "ptb:user_data:13",
    ]
    assert await storage.get("ptb:conversation:survey:[1,11]") == State.ASK


async def test_store_data_false_reads_and_writes_nothing(storage: botstate.Storage[Any]) -> None:
    await storage.set("ptb:chat_data:1", {"old": 1})
    await storage.set("ptb:bot_data", {"old": 1})
    nothing = PersistenceInput(
        bot_data=False, chat_data=False, user_data=False, callback_data=False
    )
    app, _ = build(BotstatePersistence(storage, store_data=nothing))
    app.add_handler(MessageHandler(filters.ALL, counter))
    async with app:
        assert not app.chat_data and not app.bot_data
        await send(app, "hi", chat_id=1, user_id=1)
    assert sorted([k async for k in storage.keys("ptb:")]) == ["ptb:bot_data", "ptb:chat_data:1"]
    assert await storage.get("ptb:chat_data:1") == {"old": 1}


async def test_drop_chat_and_user_data_delete_their_keys(storage: botstate.Storage[Any]) -> None:
    await storage.set("ptb:chat_data:1", {"key": "value"})
    await storage.set("ptb:chat_data:2", {"foo": "bar"})
    await storage.set("ptb:user_data:1", {"key": "value"})
    app, _ = build(BotstatePersistence(storage))
    async with app:
        assert app.chat_data == {1: {"key": "value"}, 2: {"foo": "bar"}}
        app.drop_chat_data(1)
        app.drop_user_data(1)
        assert await storage.get("ptb:chat_data:1") == {"key": "value"}  # until the flush
        await app.update_persistence()
        assert await storage.get("ptb:chat_data:1") is None
        assert await storage.get("ptb:user_data:1") is None
        assert await storage.get("ptb:chat_data:2") == {"foo": "bar"}


async def test_migrate_chat_data_moves_the_key(storage: botstate.Storage[Any]) -> None:
    await storage.set("ptb:chat_data:1", {"key": "value"})
    await storage.set("ptb:chat_data:2", {"foo": "bar"})
    app, _ = build(BotstatePersistence(storage))
    async with app:
        app.migrate_chat_data(old_chat_id=1, new_chat_id=2)
        await app.update_persistence()
        assert await storage.get("ptb:chat_data:1") is None
        assert await storage.get("ptb:chat_data:2") == {"key": "value"}


async def test_unstorable_value_reaches_the_error_handler_naming_the_place(
    storage: botstate.Storage[Any],
) -> None:
    class Custom:
        pass

    async def bad(update: Update, context: Context) -> None:
        assert context.chat_data is not None and update.effective_chat
        context.chat_data["count"] = 1
        if update.effective_chat.id == 66:
            context.chat_data["nested"] = {"ok": [1, Custom()]}

    errors: list[BaseException] = []

    async def on_error(update: object, context: Context) -> None:
        assert context.error is not None
        errors.append(context.error)

    app, _ = build(BotstatePersistence(storage))
    app.add_handler(MessageHandler(filters.ALL, bad))
    app.add_error_handler(on_error)
    async with app:
        await send(app, "hi", chat_id=66)
        await send(app, "hi", chat_id=67)
        await app.update_persistence()
        assert len(errors) == 1
        error = errors[0]
        assert isinstance(error, UnstorableValue) and isinstance(error, botstate.EncodeError)
        assert error.path == "chat_data[66]['nested']['ok'][1]"
        assert error.key == "ptb:chat_data:66"
        assert "Custom" in str(error) and "chat_data[66]['nested']['ok'][1]" in str(error)
        assert await storage.get("ptb:chat_data:66") is None  # nothing of that chat written
        assert await storage.get("ptb:chat_data:67") == {"count": 1}  # other chats are
        del app.chat_data[66]["nested"]
        app.mark_data_for_update_persistence(chat_ids=66)
    assert await storage.get("ptb:chat_data:66") == {"count": 1}


async def test_values_users_keep_round_trip_through_the_storage(
    storage: botstate.Storage[Any],
) -> None:
    when = datetime(2024, 5, 1, 12, 30, tzinfo=timezone.utc)
    data = {
        "visits": {1: when, 2: when.replace(tzinfo=None)},
        (1, "a"): {"tuple", "keys"},
        "frozen": frozenset({1, 2}),
        "raw": b"\x00\xff",
        "pair": (1, (2, 3)),
        "wait": timedelta(minutes=5),
        "~tagged": {"~t": [1]},
        "nan": float("inf"),
    }
    app, _ = build(BotstatePersistence(storage))
    async with app:
        app.chat_data[9].update(data)
        app.mark_data_for_update_persistence(chat_ids=9)
    again, _ = build(BotstatePersistence(storage))
    async with again:
        assert again.chat_data[9] == data
        assert type(again.chat_data[9]["pair"]) is tuple
        assert type(again.chat_data[9]["frozen"]) is frozenset


async def test_values_round_trip_with_the_msgpack_codec(url: str, namespace: str) -> None:
    """The msgpack codec alone returns tuples and sets as lists; the tagged tree keeps them."""
    storage = botstate.open_storage(url, namespace=namespace, codec="msgpack")
    data = {1: (1, 2), "tags": {"a", "b"}, "when": datetime(2024, 1, 1), "raw": b"\x00"}
    try:
        app, _ = build(BotstatePersistence(storage))
        async with app:
            app.chat_data[3].update(data)
            app.mark_data_for_update_persistence(chat_ids=3)
        again, _ = build(BotstatePersistence(storage))
        async with again:
            assert again.chat_data[3] == data
            assert type(again.chat_data[3][1]) is tuple
    finally:
        await storage.close()


async def test_refresh_brings_in_another_process_change_and_keeps_unflushed_ones(
    storage: botstate.Storage[Any],
) -> None:
    one, _ = build(BotstatePersistence(storage, update_interval=3600))
    two, _ = build(BotstatePersistence(storage, update_interval=3600))
    for app in (one, two):
        app.add_handler(MessageHandler(filters.ALL, counter))
    async with one, two:
        await send(one, "hi", chat_id=1)
        await one.update_persistence()
        one.chat_data[1]["mine"] = "not flushed"
        two.chat_data[1]["theirs"] = "flushed"
        two.mark_data_for_update_persistence(chat_ids=1)
        await two.update_persistence()  # two never saw chat 1's count: merges only its key
        await one.process_update(message("hi", chat_id=1))  # refresh before the handler
        assert one.chat_data[1] == {"count": 2, "mine": "not flushed", "theirs": "flushed"}
        await one.update_persistence()
    assert await storage.get("ptb:chat_data:1") == {
        "count": 2,
        "mine": "not flushed",
        "theirs": "flushed",
    }


async def test_refresh_drops_keys_another_process_deleted(storage: botstate.Storage[Any]) -> None:
    await storage.set("ptb:user_data:3", {"a": 1, "b": 2})
    one, _ = build(BotstatePersistence(storage))
    one.add_handler(MessageHandler(filters.ALL, counter))
    async with one:
        await storage.set("ptb:user_data:3", {"a": 1})
        await send(one, "hi", chat_id=3, user_id=3)
        assert "b" not in one.user_data[3] and one.user_data[3]["a"] == 1
        await storage.delete("ptb:user_data:3")
        await send(one, "hi", chat_id=3, user_id=3)
        assert list(one.user_data[3]) == ["seen"]  # a and b gone, the handler's own key kept


async def test_one_process_mode_reads_nothing_per_update_and_writes_in_batches(
    storage: botstate.Storage[Any],
) -> None:
    batches: list[int] = []

    class Counting(botstate.Storage[Any]):
        async def set_many(self, items: Any, *, ttl: Any = None) -> None:
            batches.append(len(items))
            await super().set_many(items, ttl=ttl)

    counting = Counting(storage.adapter, namespace=storage.namespace)
    app, _ = build(BotstatePersistence(counting, shared=False, data_ttl=600))
    app.add_handler(MessageHandler(filters.ALL, counter))
    async with app:
        await storage.set("ptb:chat_data:4", {"count": 100})
        await send(app, "hi", chat_id=4)
        assert app.chat_data[4] == {"count": 1}  # the stored 100 was not read
        for chat in range(1200):
            app.chat_data[chat]["n"] = chat
        app.mark_data_for_update_persistence(chat_ids=range(1200))
        await app.update_persistence()
        assert sorted(batches) == [201, 500, 500]  # 1200 chats and user 1
        assert await storage.get("ptb:chat_data:4") == {"count": 1, "n": 4}
        assert await storage.get("ptb:chat_data:1199") == {"n": 1199}
        ttl = await storage.ttl("ptb:chat_data:1199")
        assert ttl is not None and 590 < ttl <= 600
        await app.update_persistence()  # nothing changed: nothing written
        assert len(batches) == 3
        app.chat_data[5].clear()
        app.mark_data_for_update_persistence(chat_ids=5)
        await app.update_persistence()
        assert await storage.get("ptb:chat_data:5") is None


async def test_bot_data_merges_keys_changed_by_different_processes(
    storage: botstate.Storage[Any],
) -> None:
    one, _ = build(BotstatePersistence(storage))
    two, _ = build(BotstatePersistence(storage))
    async with one, two:
        one.bot_data["a"] = 1
        two.bot_data["b"] = 2
        await one.update_persistence()
        await two.update_persistence()
        assert await storage.get("ptb:bot_data") == {"a": 1, "b": 2}
        del one.bot_data["a"]
        await one.update_persistence()
        assert await storage.get("ptb:bot_data") == {"b": 2}


async def test_a_write_after_another_process_wrote_merges_instead_of_overwriting(
    storage: botstate.Storage[Any],
) -> None:
    # One keeps the version of its own last write; two writes in between, so one's
    # next write must not go through on that old version.
    one, _ = build(BotstatePersistence(storage, update_interval=3600))
    two, _ = build(BotstatePersistence(storage, update_interval=3600))
    async with one, two:
        for count in (1, 2):
            one.chat_data[5]["count"] = count
            one.mark_data_for_update_persistence(chat_ids=5)
            await one.update_persistence()
        two.chat_data[5]["theirs"] = "kept"
        two.mark_data_for_update_persistence(chat_ids=5)
        await two.update_persistence()
        one.chat_data[5]["count"] = 3
        one.mark_data_for_update_persistence(chat_ids=5)
        await one.update_persistence()
        assert await storage.get("ptb:chat_data:5") == {"count": 3, "theirs": "kept"}
        del one.chat_data[5]["count"]
        one.mark_data_for_update_persistence(chat_ids=5)
        await one.update_persistence()
        assert await storage.get("ptb:chat_data:5") == {"theirs": "kept"}


async def test_unchanged_data_is_not_written_again(storage: botstate.Storage[Any]) -> None:
    writes: list[str] = []

    class Counting(botstate.Storage[Any]):
        async def set(self, key: str, value: Any, *, ttl: Any = None) -> None:
            writes.append(key)
            await super().set(key, value, ttl=ttl)

        async def update(self, key: str, fn: Any, *, ttl: Any = None) -> Any:
            writes.append(key)
            return await super().update(key, fn, ttl=ttl)

        async def set_if(self, key: str, value: Any, *, version: Any, ttl: Any = None) -> Any:
            writes.append(key)
            return await super().set_if(key, value, version=version, ttl=ttl)

    counting = Counting(storage.adapter, namespace=storage.namespace)

    async def reader(update: Update, context: Context) -> None:
        assert context.chat_data is not None
        context.chat_data.get("count")

    app, _ = build(BotstatePersistence(counting))
    app.add_handler(MessageHandler(filters.ALL, reader))
    async with app:
        await send(app, "hi", chat_id=8, user_id=8)
        await app.update_persistence()
        assert writes == []  # untouched (empty) data is never written
        app.chat_data[8]["count"] = 1
        await send(app, "hi", chat_id=8, user_id=8)
        await app.update_persistence()
        await send(app, "hi", chat_id=8, user_id=8)
        await app.update_persistence()
    assert writes == ["ptb:chat_data:8"]


async def test_emptied_data_deletes_its_key(storage: botstate.Storage[Any]) -> None:
    await storage.set("ptb:chat_data:2", {"count": 1})
    app, _ = build(BotstatePersistence(storage))
    async with app:
        app.chat_data[2].clear()
        app.mark_data_for_update_persistence(chat_ids=2)
    assert await storage.get("ptb:chat_data:2") is None


async def test_data_and_conversation_ttls(storage: botstate.Storage[Any]) -> None:
    app, _ = build(BotstatePersistence(storage, data_ttl=600, conversation_ttl=60))
    app.add_handler(survey(), group=0)
    app.add_handler(MessageHandler(filters.ALL, counter), group=1)
    async with app:
        await send(app, "/start", chat_id=1, user_id=2)
    chat_ttl = await storage.ttl("ptb:chat_data:1")
    conversation_ttl = await storage.ttl("ptb:conversation:survey:[1,2]")
    assert chat_ttl is not None and 590 < chat_ttl <= 600
    assert conversation_ttl is not None and 50 < conversation_ttl <= 60
    bot_ttl = await storage.ttl("ptb:bot_data")
    assert bot_ttl is None or bot_ttl == botstate.FOREVER


async def test_callback_data_cache_round_trips(storage: botstate.Storage[Any]) -> None:
    app, recorder = build(BotstatePersistence(storage))

    async def offer(update: Update, context: Context) -> None:
        assert update.message
        markup = InlineKeyboardMarkup.from_button(
            InlineKeyboardButton("pick", callback_data=("pick", 42, {"x": (1, 2)}))
        )
        await update.message.reply_text("choose", reply_markup=markup)

    app.add_handler(CommandHandler("offer", offer))
    async with app:
        await send(app, "/offer", chat_id=1)
        cached = app.bot.callback_data_cache.persistence_data
        assert cached[0]
    assert recorder.texts() == ["choose"]
    again, _ = build(BotstatePersistence(storage))
    got: list[Any] = []

    async def picked(update: Update, context: Context) -> None:
        assert update.callback_query
        got.append(update.callback_query.data)

    again.add_handler(CallbackQueryHandler(picked))
    async with again:
        assert again.bot.callback_data_cache.persistence_data == cached
        button_id = next(iter(cached[0][0][2]))
        uuid_ = cached[0][0][0]
        query = Update.de_json(
            {
                "update_id": 99,
                "callback_query": {
                    "id": "q1",
                    "chat_instance": "c",
                    "from": {"id": 1, "is_bot": False, "first_name": "u"},
                    "data": uuid_ + button_id,
                    "message": {
                        "message_id": 5,
                        "date": 0,
                        "chat": {"id": 1, "type": "private"},
                        "text": "choose",
                    },
                },
            },
            again.bot,
        )
        again.bot.insert_callback_data(query)
        await again.process_update(query)
    assert got == [("pick", 42, {"x": (1, 2)})]


async def test_conversation_end_deletes_its_key(storage: botstate.Storage[Any]) -> None:
    app, _ = build(BotstatePersistence(storage))
    app.add_handler(survey())
    async with app:
        await send(app, "/start", chat_id=1, user_id=1)
        await app.update_persistence()
        assert await storage.get("ptb:conversation:survey:[1,1]") == State.ASK
        await send(app, "Ann", chat_id=1, user_id=1)
        await app.update_persistence()
        assert await storage.get("ptb:conversation:survey:[1,1]") == State.CONFIRM
        await send(app, "yes", chat_id=1, user_id=1)
        await app.update_persistence()
        assert await storage.get("ptb:conversation:survey:[1,1]") is None
        assert app.user_data[1] == {"answer": "Ann"}


async def test_conversation_survives_a_restart(storage: botstate.Storage[Any]) -> None:
    first, _ = build(BotstatePersistence(storage))
    first.add_handler(survey())
    async with first:
        await send(first, "/start", chat_id=1, user_id=1)
    second, _ = build(BotstatePersistence(storage))
    handler = survey()
    second.add_handler(handler)
    async with second:
        assert handler.check_update(
            message("Bob", chat_id=1, user_id=1, bot=second.bot)
        )  # in state ASK
        assert not handler.check_update(message("Bob", chat_id=2, user_id=1, bot=second.bot))
        await send(second, "Bob", chat_id=1, user_id=1)
    assert await storage.get("ptb:user_data:1") == {"answer": "Bob"}
    assert await storage.get("ptb:conversation:survey:[1,1]") == State.CONFIRM


@pytest.mark.filterwarnings("ignore:.*(not running|after `Application.initialize`).*")
async def test_conversation_added_after_initialize_loads_its_states(
    storage: botstate.Storage[Any],
) -> None:
    await storage.set("ptb:conversation:late:[4,4]", 1)
    app, _ = build(BotstatePersistence(storage))
    async with app:
        handler = survey("late")
        app.add_handler(handler)
        await asyncio.sleep(0.05)  # PTB loads it in a task
        assert handler.check_update(message("text", chat_id=4, user_id=4, bot=app.bot))


async def test_conversation_timeout_ends_the_stored_conversation(
    storage: botstate.Storage[Any],
) -> None:
    app, _ = build(BotstatePersistence(storage, update_interval=3600))
    handler = survey(timeout=0.3)
    app.add_handler(handler)
    async with app:
        await app.start()
        await send(app, "/start", chat_id=1, user_id=1)
        await app.update_persistence()
        assert await storage.get("ptb:conversation:survey:[1,1]") == State.ASK
        await asyncio.sleep(0.8)
        assert handler.check_update(
            message("/start", chat_id=1, user_id=1, bot=app.bot)
        )  # entry again
        await app.update_persistence()
        assert await storage.get("ptb:conversation:survey:[1,1]") is None
        await app.stop()


async def test_non_blocking_conversation_stores_the_resolved_state(
    storage: botstate.Storage[Any],
) -> None:
    event = asyncio.Event()

    async def slow_start(update: Update, context: Context) -> int:
        await event.wait()
        return ConversationHandler.END

    handler: ConversationHandler[Any] = ConversationHandler(
        entry_points=[CommandHandler("start", slow_start)],
        states={},
        fallbacks=[],
        name="slow",
        persistent=True,
        block=False,
    )
    app, _ = build(BotstatePersistence(storage, update_interval=3600))
    app.add_handler(handler)
    async with app:
        await app.start()
        await send(app, "/start", chat_id=1, user_id=1)
        await app.update_persistence()  # pending: stored as the old state (none)
        assert await storage.get("ptb:conversation:slow:[1,1]") is None
        event.set()
        await asyncio.sleep(0.05)
        await app.update_persistence()
        assert await storage.get("ptb:conversation:slow:[1,1]") == ConversationHandler.END
        await app.stop()
    again, _ = build(BotstatePersistence(storage))
    again.add_handler(handler)
    async with again:  # PTB resolves the stored END to "no conversation" on load
        assert handler.check_update(message("/start", chat_id=1, user_id=1, bot=again.bot))
    assert await storage.get("ptb:conversation:slow:[1,1]") is None


async def test_nested_conversations_each_keep_their_own_key(
    storage: botstate.Storage[Any],
) -> None:
    def step(text: str, result: object) -> MessageHandler[Any, Any]:
        async def callback(update: Update, context: Context) -> object:
            return result

        return MessageHandler(filters.Regex(f"^{text}$"), callback)

    child: ConversationHandler[Any] = ConversationHandler(
        entry_points=[step("child", 1)],
        states={1: [step("done", ConversationHandler.END)]},
        fallbacks=[],
        name="child",
        persistent=True,
        map_to_parent={ConversationHandler.END: 2},
    )
    parent: ConversationHandler[Any] = ConversationHandler(
        entry_points=[step("parent", 1)],
        states={1: [child], 2: [step("bye", ConversationHandler.END)]},
        fallbacks=[],
        name="parent",
        persistent=True,
    )
    app, _ = build(BotstatePersistence(storage))
    app.add_handler(parent)

    async def stored() -> dict[str, Any]:
        return {
            name: await storage.get(f"ptb:conversation:{name}:[1,1]")
            for name in ("parent", "child")
        }

    async with app:
        for text, expected in [
            ("parent", {"parent": 1, "child": None}),
            ("child", {"parent": 1, "child": 1}),
            ("done", {"parent": 2, "child": None}),
            ("bye", {"parent": None, "child": None}),
        ]:
            await send(app, text, chat_id=1, user_id=1)
            await app.update_persistence()
            assert await stored() == expected, text

    await storage.set("ptb:conversation:parent:[1,1]", 1)
    await storage.set("ptb:conversation:child:[1,1]", 1)
    again, _ = build(BotstatePersistence(storage))
    again.add_handler(parent)
    async with again:
        await send(again, "done", chat_id=1, user_id=1)
    assert await stored() == {"parent": 2, "child": None}


async def test_conversation_names_with_colons_do_not_mix(storage: botstate.Storage[Any]) -> None:
    persistence = BotstatePersistence(storage)
    await persistence.update_conversation("a", (1, 2), 1)
    await persistence.update_conversation("a:b", (1, 2), 2)
    await persistence.update_conversation("a", (1, "inline"), 3)
    assert await persistence.get_conversations("a") == {(1, 2): 1, (1, "inline"): 3}
    assert await persistence.get_conversations("a:b") == {(1, 2): 2}
    assert await persistence.get_conversations("missing") == {}


async def test_flush_closes_a_storage_opened_from_a_url_and_it_reopens(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'own.db'}"
    persistence = BotstatePersistence(url)
    app, _ = build(persistence)
    app.add_handler(MessageHandler(filters.ALL, counter))
    async with app:
        await send(app, "hi", chat_id=1)
    async with app:  # initialize again after shutdown: the storage is opened anew
        assert app.chat_data[1] == {"count": 1}
        await send(app, "hi", chat_id=1)
    check = botstate.open_storage(url)
    try:
        assert await check.get("ptb:chat_data:1") == {"count": 2}
    finally:
        await check.close()


async def test_handler_stop_and_prefix_option(storage: botstate.Storage[Any]) -> None:
    async def stop(update: Update, context: Context) -> None:
        assert context.chat_data is not None
        context.chat_data["stopped"] = True
        raise ApplicationHandlerStop

    app, _ = build(BotstatePersistence(storage, prefix="bot2"))
    app.add_handler(MessageHandler(filters.ALL, stop), group=0)
    app.add_handler(MessageHandler(filters.ALL, counter), group=1)
    async with app:
        await send(app, "hi", chat_id=1)
    assert await storage.get("bot2:chat_data:1") == {"stopped": True}
    assert [k async for k in storage.keys("ptb:")] == []


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(botstate.InvalidArgument, match="storage must be"):
        BotstatePersistence(42)  # type: ignore[arg-type]
    with pytest.raises(botstate.InvalidArgument, match="prefix"):
        BotstatePersistence("memory://", prefix="")
    with pytest.raises(botstate.BotstateError):
        BotstatePersistence("memory://", data_ttl=-1)
    with pytest.raises(botstate.AdapterNotFound):
        BotstatePersistence("nosuch://x")


async def test_foreign_keys_under_the_prefix_are_reported(storage: botstate.Storage[Any]) -> None:
    await storage.set("ptb:chat_data:not-a-number", {"x": 1})
    persistence = BotstatePersistence(storage)
    with pytest.raises(botstate.DecodeError, match="not-a-number"):
        await persistence.get_chat_data()
    await storage.set("ptb:chat_data:not-a-number", None)
    await storage.delete("ptb:chat_data:not-a-number")
    await storage.set("ptb:user_data:1", [1, 2])
    with pytest.raises(botstate.DecodeError, match="ptb:user_data:1"):
        await persistence.get_user_data()
