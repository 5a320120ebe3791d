"""Keeping the secrets botstate was handed out of every log record, drivers' included.

Drivers log at DEBUG what they send: botocore prints the session token and the
access key id of every signed request. An adapter registers its secrets with
:func:`hide_in_logs` when it opens and calls the returned function when it
closes; while any are registered, every log record created in the process
(whatever the logger) has them replaced by ``***`` in its message and its
formatted traceback.

>>> forget = hide_in_logs([config.password])
>>> ...                      # the adapter's life
>>> forget()
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from .urls import REDACTED, quote

__all__ = ["hide_in_logs"]

_lock = threading.Lock()
_registered: dict[int, tuple[str, ...]] = {}
_hidden: tuple[str, ...] = ()  # every registered secret and its percent-encoded form, longest first
_next_handle = 0
_installed = False


def hide_in_logs(secrets: Iterable[str | None]) -> Callable[[], None]:
    """Hide ``secrets`` (empty and ``None`` ones are ignored) in log records until undone.

    Returns a function that unregisters them; calling it twice is harmless.
    """
    global _next_handle
    wanted = tuple(s for s in secrets if s)
    if not wanted:
        return lambda: None
    with _lock:
        _install()
        handle = _next_handle = _next_handle + 1
        _registered[handle] = wanted
        _rebuild()

    def forget() -> None:
        with _lock:
            if _registered.pop(handle, None) is not None:
                _rebuild()

    return forget


def _rebuild() -> None:
    global _hidden
    forms = {form for group in _registered.values() for s in group for form in (s, quote(s, ""))}
    _hidden = tuple(sorted(forms, key=len, reverse=True))


def _scrub(text: str, hidden: tuple[str, ...]) -> str:
    for secret in hidden:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def _install() -> None:
    """Wrap the log record factory once per process (records are only made when enabled)."""
    global _installed
    if _installed:
        return
    make = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        hidden = _hidden
        if hidden:
            _redact(record, hidden)
        return record

    logging.setLogRecordFactory(factory)
    _installed = True


def _redact(record: logging.LogRecord, hidden: tuple[str, ...]) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a bad format string is the logging caller's bug; leave it to logging
        return
    clean = _scrub(message, hidden)
    if clean != message:
        record.msg, record.args = clean, ()
    if record.exc_info and record.exc_info[1] is not None:
        text = logging.Formatter().formatException(record.exc_info)
        record.exc_text = _scrub(text, hidden)
