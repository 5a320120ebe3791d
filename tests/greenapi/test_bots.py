"""Scripted green-api bots on botstate, polled from a local GREEN-API recorder (no network).

The bot is green-api's README states example (username, then password) plus
a counter kept in a botstate session (``SyncSessions``). ``bot.run_forever()``
polls the recorder as it would poll GREEN-API, until the recorder's script
runs out. A "restart" is a new bot with a new manager on the same backend.
Concurrent updates: 8 bots sharing one manager route events on 8 threads at
once (green-api's ``Router`` keeps the current event on the observer, so one
router must not be shared by threads; several bots sharing a storage is what
several workers do).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from greenapi_kit import API_TOKEN, ID_INSTANCE, GreenApiRecorder, incoming_text
from whatsapp_chatbot_python import BaseStates, GreenAPIBot, Notification
from whatsapp_chatbot_python.bot import GreenAPIBotError

from botstate.sync import SyncSessions
from botstate_greenapi import BotstateStateManager


class States(BaseStates):
    USERNAME = "username"
    PASSWORD = "password"


def make_bot(
    green_api: GreenApiRecorder,
    manager: BotstateStateManager,
    counters: SyncSessions[dict[str, int]] | None = None,
) -> GreenAPIBot:
    bot = GreenAPIBot(
        ID_INSTANCE,
        API_TOKEN,
        host=green_api.url,
        media=green_api.url,
        raise_errors=True,
        delete_notifications_at_startup=False,
    )
    manager.attach(bot)
    if counters is None:
        counters = SyncSessions(manager.sync_storage, initial=lambda: {"n": 0})

    @bot.router.message(command="count")
    @counters.handler(lambda notification: f"counter:{notification.chat}")
    def count(notification: Notification, session: Any) -> None:
        session.data["n"] += 1
        notification.answer(f"count {session.data['n']}")

    @bot.router.message(command="cancel")
    def cancel(notification: Notification) -> None:
        notification.state_manager.delete_state(notification.sender)
        notification.answer("Bye")

    @bot.router.message(state=None)
    def start(notification: Notification) -> None:
        notification.state_manager.set_state(notification.sender, States.USERNAME.value)
        notification.answer("Tell me your username.")

    @bot.router.message(state=States.USERNAME.value)
    def username(notification: Notification) -> None:
        name = notification.message_text or ""
        if not 3 <= len(name) <= 20:
            notification.answer("Invalid username.")
            return
        notification.state_manager.update_state(notification.sender, States.PASSWORD.value)
        notification.state_manager.set_state_data(notification.sender, {"username": name})
        notification.answer("Tell me your password.")

    @bot.router.message(state=States.PASSWORD.value)
    def password(notification: Notification) -> None:
        data = notification.state_manager.get_state_data(notification.sender)
        notification.answer(f"Created {data['username']}.")
        notification.state_manager.delete_state(notification.sender)

    return bot


def poll(bot: GreenAPIBot, green_api: GreenApiRecorder, *bodies: dict[str, Any]) -> None:
    """Let the bot's own polling loop receive ``bodies``, then stop it."""
    green_api.enqueue(*bodies)
    with pytest.raises(GreenAPIBotError, match="script finished"):
        bot.run_forever()


@pytest.fixture
def open_manager(namespace: str) -> Iterator[Any]:
    opened: list[BotstateStateManager] = []

    def open_(url: str) -> BotstateStateManager:
        manager = BotstateStateManager(url, namespace=namespace)
        opened.append(manager)
        return manager

    yield open_
    for manager in opened:
        manager.sync_storage.close()


ANN = "79001234567@c.us"


def test_dialog_and_counter_survive_a_restart(
    persistent_url: str, green_api: GreenApiRecorder, open_manager: Any
) -> None:
    first = open_manager(persistent_url)
    bot = make_bot(green_api, first)
    poll(bot, green_api, incoming_text(ANN, "hi"), incoming_text(ANN, "ab"))
    poll(bot, green_api, incoming_text(ANN, "annie"), incoming_text(ANN, "/count"))
    assert green_api.texts(ANN) == [
        "Tell me your username.",
        "Invalid username.",
        "Tell me your password.",
        "count 1",
    ]
    first.close()

    second = open_manager(persistent_url)
    restarted = make_bot(green_api, second)
    poll(restarted, green_api, incoming_text(ANN, "/count"), incoming_text(ANN, "secret123"))
    assert green_api.texts(ANN)[4:] == ["count 2", "Created annie."]
    assert second.get_state(ANN) is None
    assert sorted(second.sync_storage.keys()) == [f"counter:{ANN}"]


def test_group_members_have_their_own_state(
    persistent_url: str, green_api: GreenApiRecorder, open_manager: Any
) -> None:
    manager = open_manager(persistent_url)
    bot = make_bot(green_api, manager)
    group, bob = "120363000000000000@g.us", "79007654321@c.us"
    poll(
        bot,
        green_api,
        incoming_text(ANN, "hi", chat=group),
        incoming_text(bob, "hi", chat=group),
        incoming_text(ANN, "annie", chat=group),
    )
    assert manager.get_state(ANN).name == "password"
    assert manager.get_state(bob).name == "username"
    assert green_api.texts(group)[-1] == "Tell me your password."


def test_concurrent_events_from_threads(
    persistent_url: str, green_api: GreenApiRecorder, open_manager: Any
) -> None:
    """8 bots on one manager route events at once: a shared counter and 40 senders' dialogs."""
    manager = open_manager(persistent_url)
    # One SyncSessions for all: its per-key locks are what serialises the counter.
    counters = SyncSessions(manager.sync_storage, initial=lambda: {"n": 0})
    bots = [make_bot(green_api, manager, counters) for _ in range(8)]
    senders = [f"7900000{n:04d}@c.us" for n in range(40)]
    group = "120363000000000001@g.us"
    events = [incoming_text(senders[i % 40], "/count", chat=group) for i in range(200)]
    for step in ("hi", "name{}", "pw"):
        events += [incoming_text(s, step.format(n)) for n, s in enumerate(senders)]
    errors: list[BaseException] = []

    def worker(bot: GreenAPIBot, mine: list[dict[str, Any]]) -> None:
        try:
            for event in mine:
                bot.router.route_event(event)
        except BaseException as err:
            errors.append(err)

    # Each sender's own steps stay in order (one thread per sender), as a webhook
    # server sees one user's messages; the counter is hit from every thread.
    by_thread: list[list[dict[str, Any]]] = [[] for _ in range(8)]
    for event in events:
        sender = event["senderData"]["sender"]
        by_thread[senders.index(sender) % 8].append(event)
    threads = [
        threading.Thread(target=worker, args=(bot, mine))
        for bot, mine in zip(bots, by_thread, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors[:3]
    counts = sorted(int(text.split()[1]) for text in green_api.texts(group))
    assert counts == list(range(1, 201))
    for n, sender in enumerate(senders):
        assert green_api.texts(sender) == [
            "Tell me your username.",
            "Tell me your password.",
            f"Created name{n}.",
        ]
