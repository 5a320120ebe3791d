"""Offline green-api bots: a GREEN-API recorder on 127.0.0.1 and notification builders.

The bot's own HTTP client (``whatsapp_api_client_python.GreenAPI`` over
requests) is pointed at :class:`GreenApiRecorder` with ``host=``/``media=``.
It serves queued notifications to ``receiveNotification`` as GREEN-API does,
records ``sendMessage`` calls, and once its queue is empty answers 500 so that
``bot.run_forever()`` (with ``raise_errors=True``) ends: a polling run over a
fixed script of incoming messages.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ID_INSTANCE = "1101000001"
API_TOKEN = "d75b3a66374942c5b3c019c698abc2067e151558acbd412345"


class GreenApiRecorder:
    """Records GREEN-API calls; ``sent`` holds ``(chatId, message)`` of sendMessage."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.queue: deque[dict[str, Any]] = deque()
        self._lock = threading.Lock()
        self._receipts = itertools.count(1)
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                self._answer()

            def do_DELETE(self) -> None:
                self._answer()

            def _answer(self) -> None:
                # /waInstance<id>/<method>/<token>[/<receiptId>]
                parts = self.path.split("?")[0].strip("/").split("/")
                method = parts[1] if len(parts) > 1 else ""
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null") if length else None
                status, result = recorder.answer(method, body or {})
                data = json.dumps(result).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, method: str, body: dict[str, Any]) -> tuple[int, Any]:
        with self._lock:
            self.calls.append((method, body))
            if method == "receiveNotification":
                if not self.queue:
                    return 500, {"message": "script finished"}  # ends run_forever
                return 200, {"receiptId": next(self._receipts), "body": self.queue.popleft()}
            if method == "sendMessage":
                return 200, {"idMessage": f"BAE5{len(self.calls):08d}"}
            if method == "getSettings":
                no = "no"
                return 200, {
                    "incomingWebhook": "yes",
                    "outgoingMessageWebhook": no,
                    "outgoingAPIMessageWebhook": no,
                }
            return 200, {"result": True}

    def enqueue(self, *bodies: dict[str, Any]) -> None:
        with self._lock:
            self.queue.extend(bodies)

    @property
    def sent(self) -> list[tuple[str, str]]:
        with self._lock:
            return [(b["chatId"], b["message"]) for m, b in self.calls if m == "sendMessage"]

    def texts(self, chat_id: str) -> list[str]:
        return [text for chat, text in self.sent if chat == chat_id]

    def wait_for(self, count: int, timeout: float = 30.0) -> list[tuple[str, str]]:
        deadline = time.monotonic() + timeout
        while len(self.sent) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.sent

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


_ids = itertools.count(1)


def incoming_text(sender: str, text: str, *, chat: str | None = None) -> dict[str, Any]:
    """The body of an ``incomingMessageReceived`` notification with a text message."""
    return {
        "typeWebhook": "incomingMessageReceived",
        "instanceData": {"idInstance": int(ID_INSTANCE), "wid": "79990000000@c.us"},
        "timestamp": int(time.time()),
        "idMessage": f"MSG{next(_ids):08d}",
        "senderData": {"chatId": chat or sender, "sender": sender, "senderName": "User"},
        "messageData": {"typeMessage": "textMessage", "textMessageData": {"textMessage": text}},
    }
