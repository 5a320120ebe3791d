"""Offline pyTelegramBotAPI bots: a Bot API recorder on 127.0.0.1 and update builders.

The bots make real HTTP requests (requests for ``TeleBot``, aiohttp for
``AsyncTeleBot``) to ``apihelper.API_URL`` / ``asyncio_helper.API_URL``,
which the ``bot_api`` fixture points at :class:`BotApiRecorder`: it records
every call and answers like the Bot API would, with a minimal valid result.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

TOKEN = "123456:" + "A" * 35
BOT_ID = 123456


class BotApiRecorder:
    """Records Bot API calls made to it; ``sent`` holds ``(chat_id, text)`` of sendMessage."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, str]]] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1000)
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                self._answer()

            def _answer(self) -> None:
                url = urlsplit(self.path)
                method = url.path.rsplit("/", 1)[-1]
                params = dict(parse_qsl(url.query))
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                if body and "urlencoded" in self.headers.get("Content-Type", ""):
                    params.update(parse_qsl(body))
                payload = json.dumps({"ok": True, "result": recorder.record(method, params)})
                data = payload.encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def api_url(self) -> str:
        """The value for ``apihelper.API_URL`` (``{0}`` token, ``{1}`` method)."""
        return f"http://127.0.0.1:{self.port}/bot{{0}}/{{1}}"

    def record(self, method: str, params: dict[str, str]) -> Any:
        with self._lock:
            self.calls.append((method, params))
            if method == "getMe":
                return {"id": BOT_ID, "is_bot": True, "first_name": "Test", "username": "test_bot"}
            if method == "sendMessage":
                return {
                    "message_id": next(self._ids),
                    "date": int(time.time()),
                    "chat": {"id": int(params["chat_id"]), "type": "private"},
                    "text": params.get("text", ""),
                }
            return True

    @property
    def sent(self) -> list[tuple[int, str]]:
        with self._lock:
            return [(int(p["chat_id"]), p["text"]) for m, p in self.calls if m == "sendMessage"]

    def texts(self, chat_id: int) -> list[str]:
        return [text for chat, text in self.sent if chat == chat_id]

    def wait_for(self, count: int, timeout: float = 60.0) -> list[tuple[int, str]]:
        """Wait until ``count`` messages were sent (handlers on worker threads)."""
        deadline = time.monotonic() + timeout
        while len(self.sent) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        sent = self.sent
        assert len(sent) >= count, f"only {len(sent)} of {count} messages were sent"
        return sent

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


_update_ids = itertools.count(1)


def message_update(
    chat_id: int,
    text: str,
    *,
    user_id: int | None = None,
    thread_id: int | None = None,
    chat_type: str = "private",
) -> dict[str, Any]:
    """A ``message`` update as the Bot API sends it (JSON-ready)."""
    update_id = next(_update_ids)
    message: dict[str, Any] = {
        "message_id": update_id,
        "date": int(time.time()),
        "chat": {"id": chat_id, "type": chat_type},
        "from": {"id": user_id or chat_id, "is_bot": False, "first_name": "User"},
        "text": text,
    }
    if text.startswith("/"):
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text)}]
    if thread_id is not None:
        message["message_thread_id"] = thread_id
        message["is_topic_message"] = True
        message["chat"]["is_forum"] = True
    return {"update_id": update_id, "message": message}
