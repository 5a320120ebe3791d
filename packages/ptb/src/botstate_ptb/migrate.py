"""One-off import of a ``PicklePersistence`` file into a botstate storage.

::

    python -m botstate_ptb import-pickle bot.pickle sqlite:///bot.db
    python -m botstate_ptb import-pickle bot_data_prefix redis://localhost:6379/0 --multi-file

The file is read by PTB's own ``PicklePersistence`` (so unpickling runs code, as
it does when the bot starts: import only your own files). Every value is
converted first; if any cannot be stored, every offending place is listed and
nothing is written. Then user data, chat data, bot data, callback data and
conversation states are written under the keys :class:`BotstatePersistence`
reads (see :mod:`botstate_ptb.layout`). A storage that already holds keys under
the prefix is refused unless ``replace=True`` (``--replace``): imported keys
then overwrite the stored ones and other keys stay.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from telegram.ext import PicklePersistence

from botstate.errors import DecodeError, InvalidArgument, UsageError
from botstate.opening import open_storage
from botstate.storage import Storage

from .layout import Layout
from .persistence import plain_state
from .values import UnstorableValue, to_stored

__all__ = ["ImportReport", "import_pickle"]

_BATCH = 500


@dataclass
class ImportReport:
    """What :func:`import_pickle` wrote."""

    users: int = 0
    chats: int = 0
    bot_data: bool = False
    callback_data: bool = False
    conversations: dict[str, int] = field(default_factory=dict)
    """States written per conversation name."""

    @property
    def keys(self) -> int:
        """Storage keys written."""
        return (
            self.users
            + self.chats
            + self.bot_data
            + self.callback_data
            + sum(self.conversations.values())
        )

    def __str__(self) -> str:
        conversations = ", ".join(f"{name}: {n}" for name, n in sorted(self.conversations.items()))
        return (
            f"{self.users} user_data, {self.chats} chat_data, "
            f"bot_data {'yes' if self.bot_data else 'no'}, "
            f"callback_data {'yes' if self.callback_data else 'no'}, "
            f"conversation states {{{conversations}}}: {self.keys} keys"
        )


async def import_pickle(
    filepath: str | Path,
    storage: Storage[Any] | str | Mapping[str, Any],
    *,
    single_file: bool = True,
    prefix: str = "ptb",
    replace: bool = False,
) -> ImportReport:
    """Copy a ``PicklePersistence`` file's data into ``storage``; return what was written.

    ``filepath`` and ``single_file`` are what the bot passed to
    ``PicklePersistence`` (with ``single_file=False`` it is the prefix of its five
    files). ``storage`` is a :class:`botstate.Storage`, URL or config mapping (a
    storage opened here is closed again). Raises :class:`UnstorableValue` listing
    every value that cannot be stored (nothing written), :class:`UsageError` if
    the storage already has data under ``prefix`` and ``replace`` is false.
    """
    items, report = await _read(Path(filepath), single_file, Layout(prefix))
    owned = not isinstance(storage, Storage)
    target: Storage[Any] = storage if isinstance(storage, Storage) else open_storage(storage)
    try:
        if not replace:
            async for key in target.keys(prefix + ":"):
                raise UsageError(
                    f"the storage already holds botstate-ptb data (e.g. {key!r}); pass "
                    "replace=True (--replace) to overwrite the imported keys"
                )
        keys = list(items)
        for start in range(0, len(keys), _BATCH):
            await target.set_many({key: items[key] for key in keys[start : start + _BATCH]})
    finally:
        if owned:
            await target.close()
    return report


async def _read(
    path: Path, single_file: bool, layout: Layout
) -> tuple[dict[str, Any], ImportReport]:
    files = [path] if single_file else [Path(f"{path}_{part}") for part in _PARTS]
    if not any(file.is_file() for file in files):
        shown = path if single_file else f"{path}_*"
        raise InvalidArgument(f"no PicklePersistence file at {shown}")
    source: PicklePersistence[Any, Any, Any] = PicklePersistence(path, single_file=single_file)
    try:
        users = await source.get_user_data()
        chats = await source.get_chat_data()
        bot_data = await source.get_bot_data()
        callback_data = await source.get_callback_data()
        await source.get_conversations("")
    except TypeError as err:  # PicklePersistence's way of saying the file is unreadable
        cause = f" ({type(err.__cause__).__name__}: {err.__cause__})" if err.__cause__ else ""
        raise DecodeError(
            f"cannot read {path}: {err}{cause}; classes the bot kept in its data must be "
            "importable here (run the command where the bot's own modules import)"
        ) from err
    conversations: dict[str, dict[tuple[Any, ...], object]] = source.conversations or {}

    items: dict[str, Any] = {}
    problems: list[UnstorableValue] = []
    report = ImportReport()

    def put(key: str, value: Any, where: str) -> bool:
        try:
            items[key] = to_stored(value, key=key, where=where)
        except UnstorableValue as err:
            problems.append(err)
            return False
        return True

    for kind, data in (("user_data", users), ("chat_data", chats)):
        for ident, value in data.items():
            if value and put(layout.data(kind, ident), value, f"{kind}[{ident}]"):
                if kind == "user_data":
                    report.users += 1
                else:
                    report.chats += 1
    if bot_data:
        report.bot_data = put(layout.bot_data, bot_data, "bot_data")
    if callback_data is not None:
        report.callback_data = put(layout.callback_data, callback_data, "callback_data")
    for name, states in conversations.items():
        written = 0
        for key, state in states.items():
            if state is not None:
                full = layout.conversation(name, key)
                written += put(
                    full, plain_state(state), f"the state of conversation {name!r} {key}"
                )
        if written:
            report.conversations[name] = written
    if problems:
        listed = "\n".join(f"- {err.path}" for err in problems)
        raise UnstorableValue(
            f"{len(problems)} value(s) in {path} cannot be stored; nothing was written:\n{listed}\n"
            f"first: {problems[0]}",
            problems[0].key,
            problems[0].path,
        )
    return items, report


_PARTS = ("user_data", "chat_data", "bot_data", "callback_data", "conversations")
