"""`weed server -s3` for the stand-in: moto's S3 on -s3.port, with /healthz, the access keys of
-s3.config, and every bucket mirrored to -dir/buckets after each change (and loaded back at start).
Signatures are not verified; only the access key is checked."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import threading
from pathlib import Path

from moto.core import DEFAULT_ACCOUNT_ID
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.s3.models import s3_backends
from werkzeug.serving import run_simple


def options(argv: list[str]) -> dict[str, str]:
    found = {}
    for arg in argv:
        match = re.fullmatch(r"-+([\w.]+)(?:=(.*))?", arg)
        if match:
            found[match[1]] = match[2] if match[2] is not None else "true"
    return found


class Mirror:
    """Keeps -dir/buckets/<bucket>/<key> equal to moto's buckets."""

    def __init__(self, root: Path):
        self.root = root / "buckets"
        self.root.mkdir(parents=True, exist_ok=True)
        self.backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
        self.lock = threading.Lock()

    def load(self) -> None:
        for bucket_dir in sorted(p for p in self.root.iterdir() if p.is_dir()):
            self.backend.create_bucket(bucket_dir.name, "us-east-1")
            for path in sorted(p for p in bucket_dir.rglob("*") if p.is_file()):
                self.backend.put_object(bucket_dir.name, path.relative_to(bucket_dir).as_posix(), path.read_bytes())

    def sync(self) -> None:
        with self.lock:
            buckets = dict(self.backend.buckets)
            for bucket_dir in [p for p in self.root.iterdir() if p.is_dir()]:
                if bucket_dir.name not in buckets:
                    shutil.rmtree(bucket_dir)
            for name, bucket in buckets.items():
                bucket_dir = self.root / name
                bucket_dir.mkdir(exist_ok=True)
                keys = {key: bucket.keys[key] for key in bucket.keys if not key.endswith("/") and ".." not in key.split("/")}
                for key, fake in keys.items():
                    path = bucket_dir / key
                    value = fake.value
                    if not path.is_file() or path.stat().st_size != len(value) or path.read_bytes() != value:
                        path.parent.mkdir(parents=True, exist_ok=True)
                        tmp = path.with_name(path.name + ".tmp-mirror")
                        tmp.write_bytes(value)
                        os.replace(tmp, path)
                for path in [p for p in bucket_dir.rglob("*") if p.is_file()]:
                    if path.relative_to(bucket_dir).as_posix() not in keys:
                        path.unlink()


def application(s3_app, mirror: Mirror, access_keys: set[str]):
    def app(environ, start_response):
        if environ.get("PATH_INFO") in ("/healthz", "/status") and environ["REQUEST_METHOD"] in ("GET", "HEAD"):
            start_response("200 OK", [("Content-Length", "0")])
            return [b""]
        credential = re.search(r"Credential=([^/]+)/", environ.get("HTTP_AUTHORIZATION", ""))
        credential = credential or re.search(r"X-Amz-Credential=([^%/&]+)", environ.get("QUERY_STRING", ""))
        if access_keys and (not credential or credential[1] not in access_keys):
            body = b"<Error><Code>InvalidAccessKeyId</Code><Message>unknown access key</Message></Error>"
            start_response("403 Forbidden", [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
            return [body]
        result = list(s3_app(environ, start_response))
        if environ["REQUEST_METHOD"] not in ("GET", "HEAD", "OPTIONS"):
            mirror.sync()
        return result

    return app


def main(argv: list[str]) -> None:
    if not argv or argv[0] != "server":
        sys.exit("this stand-in of weed only runs `server ... -s3`")
    opts = options(argv[1:])
    access_keys = set()
    if "s3.config" in opts:
        config = json.loads(Path(opts["s3.config"]).read_text())
        access_keys = {c["accessKey"] for i in config.get("identities", []) for c in i.get("credentials", [])}
    mirror = Mirror(Path(opts.get("dir", "/data")))
    mirror.load()
    s3_app = DomainDispatcherApplication(create_backend_app)
    port = int(opts.get("s3.port", "8333"))
    print(f"S3 API (moto stand-in of SeaweedFS) on :{port}, data in {mirror.root}", flush=True)
    run_simple(opts.get("ip.bind", "0.0.0.0"), port, application(s3_app, mirror, access_keys), threaded=True)


if __name__ == "__main__":
    main(sys.argv[1:])
