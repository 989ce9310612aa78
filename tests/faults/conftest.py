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
    """Serves a folder over HTTP, as the song-plays source does, except as `mode` says:
    "ok", "500", "cut" (Content-Length of the whole file, a third of it sent, connection closed)
    or "hang" (a third sent, then nothing for 30 s)."""

    def __init__(self, folder: Path):
        self.folder, self.mode, self.requests = folder, "ok", 0
        source = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                source.requests += 1
                if source.mode == "500":
                    self.send_error(500, "Internal Server Error")
                    return
                data = (source.folder / self.path.lstrip("/")).read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if source.mode == "ok":
                    self.wfile.write(data)
                    return
                self.wfile.write(data[: len(data) // 3])
                self.wfile.flush()
                if source.mode == "hang":
                    time.sleep(30)
                self.close_connection = True

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def song_source(tmp_path, monkeypatch):
    """A day of generated song-plays files, served as the source; the connection points at it."""
    generate(tmp_path / "source", DAY, DAY)
    server = MisbehavingSource(tmp_path / "source")
    monkeypatch.setenv("AIRFLOW_CONN_SONG_PLAYS_HTTP", json.dumps({"conn_type": "http", "host": server.url}))
    yield server
    server.server.shutdown()
    server.server.server_close()
