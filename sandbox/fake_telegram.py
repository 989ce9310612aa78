"""A fake Telegram Bot API server: the real HTTP protocol on a local socket, so python-telegram-bot
is what gets tested. It accepts one bot token, answers getMe and sendMessage like the real API
(401 for any other token), and keeps the messages it received.

    python -m sandbox.fake_telegram --port 8081 --token 123:abc --messages-file msgs.jsonl

Point a bot at it with `Bot(token, base_url="http://127.0.0.1:8081/bot")`.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs


class FakeTelegram:
    def __init__(self, token: str, port: int = 0, messages_file: Path | None = None, host: str = "127.0.0.1"):
        self.token = token
        self.messages: list[dict] = []
        self.messages_file = messages_file
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    def start(self) -> FakeTelegram:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _record(self, chat_id: str, text: str) -> dict:
        with self._lock:
            message = {
                "message_id": len(self.messages) + 1,
                "date": int(time.time()),
                "chat": {"id": _chat_id(chat_id), "type": "private"},
                "text": text,
            }
            self.messages.append(message)
            if self.messages_file:
                with open(self.messages_file, "a", encoding="utf-8") as out:
                    out.write(json.dumps(message) + "\n")
        return message

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                self._answer()

            def do_GET(self) -> None:  # noqa: N802
                self._answer()

            def _answer(self) -> None:
                prefix = f"/bot{fake.token}/"
                if not self.path.startswith("/bot"):
                    return self._reply(404, {"ok": False, "error_code": 404, "description": "Not Found"})
                if not self.path.startswith(prefix):
                    return self._reply(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
                method = self.path[len(prefix) :].split("?")[0]
                params = self._params()
                if method == "getMe":
                    return self._reply(
                        200,
                        {
                            "ok": True,
                            "result": {
                                "id": 1,
                                "is_bot": True,
                                "first_name": "pipelines",
                                "username": "pipelines_bot",
                            },
                        },
                    )
                if method == "sendMessage":
                    if not params.get("chat_id") or not params.get("text"):
                        return self._reply(
                            400,
                            {
                                "ok": False,
                                "error_code": 400,
                                "description": "Bad Request: message text is empty",
                            },
                        )
                    message = fake._record(str(params["chat_id"]), str(params["text"]))
                    return self._reply(200, {"ok": True, "result": message})
                return self._reply(404, {"ok": False, "error_code": 404, "description": "Not Found"})

            def _params(self) -> dict:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                kind = self.headers.get("Content-Type", "")
                if "json" in kind:
                    return json.loads(body or b"{}")
                return {k: v[0] for k, v in parse_qs(body.decode()).items()}

            def _reply(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:  # request lines carry the token: keep them out
                pass

        return Handler


def _chat_id(value: str) -> int | str:
    try:
        return int(value)
    except ValueError:
        return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (0.0.0.0 in a container)")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", required=True)
    parser.add_argument("--messages-file", type=Path, help="append each received message here (JSON lines)")
    args = parser.parse_args()
    fake = FakeTelegram(args.token, args.port, args.messages_file, host=args.host)
    print(f"fake Telegram Bot API on {args.host}:{fake.port}", flush=True)
    try:
        fake._server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
