"""What the fault tests share: the song-plays source, served over HTTP, that can misbehave."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sandbox.generate_song_plays import generate

DAY = dt.date(2019, 2, 8)


class MisbehavingSource:
    """An HTTP server that answers as `answer(method, path, headers, body) -> (status, headers,
    body)` says, except for the requests `misbehaves(method, path)` picks, which go as `mode`
    says: "ok", "500", "cut" (Content-Length of the whole body, a third of it sent, connection
    closed) or "hang" (a third sent, then nothing for 30 s). `folder` given: it serves the folder's
    files, as the song-plays source does."""

    def __init__(self, folder: Path | None = None, answer=None, misbehaves=lambda method, path: method == "GET"):
        self.folder, self.mode, self.requests = folder, "ok", 0
        answer = answer or self._file
        source = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, headers, data = answer(self.command, self.path, dict(self.headers), body)
                odd = source.mode != "ok" and misbehaves(self.command, self.path)
                source.requests += odd
                if odd and source.mode == "500":
                    status, headers, data = 500, {"Content-Type": "text/plain"}, b"Internal Server Error"
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection", "date", "server"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command == "HEAD":
                    return
                if not odd or source.mode == "500":
                    self.wfile.write(data)
                    return
                self.wfile.write(data[: len(data) // 3])
                self.wfile.flush()
                if source.mode == "hang":
                    time.sleep(30)
                self.close_connection = True

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _handle  # noqa: N815 - the http.server API

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def _file(self, method: str, path: str, headers: dict, body: bytes) -> tuple[int, dict, bytes]:
        return 200, {}, (self.folder / path.lstrip("/")).read_bytes()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def proxy_to(url: str):
    """An `answer` forwarding each request to the server at `url` (moto, for S3)."""
    import requests

    def answer(method: str, path: str, headers: dict, body: bytes) -> tuple[int, dict, bytes]:
        response = requests.request(method, url + path, headers=headers, data=body, timeout=30)
        return response.status_code, dict(response.headers), response.content

    return answer


@pytest.fixture
def song_source(tmp_path, monkeypatch):
    """A day of generated song-plays files, served as the source; the connection points at it."""
    generate(tmp_path / "source", DAY, DAY)
    server = MisbehavingSource(tmp_path / "source")
    monkeypatch.setenv("AIRFLOW_CONN_SONG_PLAYS_HTTP", json.dumps({"conn_type": "http", "host": server.url}))
    yield server
    server.stop()
