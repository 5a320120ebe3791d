"""``BotstateApplication``: one update per chat and per user at a time, across processes.

PTB keeps user/chat data and conversation states in memory and writes them
every ``update_interval`` seconds. Two processes handling the same chat would
each work on their own copy and the later write would win. This Application
subclass makes every update of a chat see, and leave behind, the stored state:

1. take the botstate lock of the update's chat and of its user
   (``Storage.lock``: a lease in the store on ATOMIC adapters such as SQLite and
   Redis, so it holds across processes and hosts);
2. load the current state of every persistent ``ConversationHandler`` for the
   update's conversation key (PTB itself has no refresh for conversations); the
   user/chat/bot data are refreshed by PTB through ``refresh_*``;
3. run the handlers (``Application.process_update``);
4. write through: ``update_persistence()`` before the locks are released.

Use it with ``ApplicationBuilder.application_class``::

    application = (
        Application.builder().token(TOKEN)
        .persistence(BotstatePersistence("redis://localhost:6379/0"))
        .application_class(BotstateApplication)
        .build()
    )

Limits: handlers run with ``block=False`` and job callbacks (conversation
timeouts included: they fire in the process that scheduled them) run outside the
locks; their changes are written at the next flush, merged by top-level key. A lock not
got within the persistence's ``lock_timeout`` (or lost while held) is handed to
the error handlers and the update is not processed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import AsyncExitStack
from typing import Any

from telegram import Update
from telegram.ext import Application, BaseHandler, ConversationHandler

# PendingState marks a state a non-blocking handler has not resolved yet; the
# Application itself imports it from this module.
from telegram.ext._handlers.conversationhandler import PendingState

from botstate.errors import BotstateError

from .persistence import BotstatePersistence
from .values import from_stored

__all__ = ["BotstateApplication"]

logger = logging.getLogger("botstate_ptb")


class BotstateApplication(Application[Any, Any, Any, Any, Any, Any]):
    """An :class:`~telegram.ext.Application` whose updates are serialised per chat and user.

    With a :class:`BotstatePersistence`, every :class:`~telegram.Update` is
    handled under the locks of its chat and user, with conversation states read
    from the storage first and everything written back before the locks are
    released: several processes (or hosts, on a shared backend) can serve one
    bot and counters in ``chat_data``/``user_data`` stay exact. With any other
    persistence, or for objects that are not updates, it behaves like
    ``Application``.
    """

    async def process_update(self, update: object) -> None:
        persistence = self.persistence
        if not isinstance(persistence, BotstatePersistence) or not isinstance(update, Update):
            await super().process_update(update)
            return
        self._check_initialized()
        layout = persistence.layout
        names = []
        if update.effective_chat is not None:
            names.append(layout.data("chat_data", update.effective_chat.id))
        if update.effective_user is not None:
            names.append(layout.data("user_data", update.effective_user.id))
        try:
            async with AsyncExitStack() as stack:
                for name in names:  # always chat before user: no lock-order cycles
                    await stack.enter_async_context(persistence.lock(name))
                await self._load_conversations(persistence, update)
                await super().process_update(update)
                await self.update_persistence()
        except BotstateError as err:
            await self.process_error(update=update, error=err)

    async def _load_conversations(self, persistence: BotstatePersistence, update: Update) -> None:
        """Put the stored state of ``update``'s conversations into the persistent handlers."""
        wanted: dict[str, tuple[ConversationHandler[Any], tuple[int | str, ...]]] = {}
        for handler in _persistent_conversations(self.handlers.values()):
            try:
                key = handler._get_key(update)
            except (RuntimeError, AttributeError):
                continue  # this handler has no conversation for such an update
            assert handler.name is not None
            wanted[persistence.layout.conversation(handler.name, key)] = (handler, key)
        if not wanted:
            return
        found = await persistence.storage.get_many(wanted)
        for full, (handler, key) in wanted.items():
            states = handler._conversations
            if isinstance(states.get(key), PendingState):
                continue  # a non-blocking handler of this process is still deciding
            if full in found:
                states.update_no_track({key: from_stored(found[full], key=full)})  # type: ignore[attr-defined]
            else:
                states.data.pop(key, None)  # type: ignore[attr-defined]


def _persistent_conversations(
    groups: Any,
) -> Iterator[ConversationHandler[Any]]:
    """Every persistent, named ConversationHandler among ``groups``, nested ones included."""
    stack: list[BaseHandler[Any, Any, Any]] = [h for group in groups for h in group]
    seen: set[int] = set()
    while stack:
        handler = stack.pop()
        if not isinstance(handler, ConversationHandler) or id(handler) in seen:
            continue
        seen.add(id(handler))
        if handler.persistent and handler.name:
            yield handler
        stack.extend(handler.entry_points)
        stack.extend(handler.fallbacks)
        for handlers in handler.states.values():
            stack.extend(handlers)
