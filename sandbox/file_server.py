"""A local HTTP file server: serves one folder read-only (GET and HEAD), as the workshop's
Dropbox did. Absent files answer 404, which the HTTP sensor reads as "not ready yet".

    python -m sandbox.file_server --dir ../shared/data/song_plays --port 8090
"""

from __future__ import annotations

import argparse
import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


class FileServer:
    def __init__(self, folder: Path, port: int = 0):
        handler = functools.partial(_QuietHandler, directory=str(folder))
        self.folder = Path(folder)
        self._server = ThreadingHTTPServer(("127.0.0.1", port), handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    def start(self) -> FileServer:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--port", type=int, default=8090)
    args = parser.parse_args()
    server = FileServer(args.dir, args.port)
    print(f"serving {args.dir} at {server.url}", flush=True)
    try:
        server._server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
