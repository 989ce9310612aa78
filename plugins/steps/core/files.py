"""Luigi's promises for files: a step is done when its outputs exist, and an output only exists
once it is completely written (temp name in the same folder, fsync, rename)."""

from __future__ import annotations

import glob
import logging
import os
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)


def utf8_text(data: bytes, source: str, error: type[Exception] = ValueError) -> str:
    """`data` decoded as UTF-8, or `error` naming `source` and the line of the first bad byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise error(f"{source}: line {line}: not UTF-8 (byte 0x{data[err.start]:02x})") from None


def already_complete(outputs: Iterable[Path], step: str) -> bool:
    """True, and says so in the log, when every output of `step` exists.

    Steps return early on True instead of raising a skip: a skipped task would cascade and skip
    the downstream steps that still have work to do.
    """
    outputs = [Path(p) for p in outputs]
    missing = [p for p in outputs if not p.exists()]
    if missing:
        log.info("%s: to do, missing %s", step, ", ".join(str(p) for p in missing))
        return False
    log.info("%s: already complete, outputs exist: %s", step, ", ".join(str(p) for p in outputs))
    return True


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success it becomes `target` in one rename.

    On any error the temporary file is removed, so a crash never leaves a half-written `target`;
    an OSError without a path (a full disk, a quota) is raised again naming `target`.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f"{glob.escape(target.name)}.tmp-*"):
        stale.unlink(missing_ok=True)  # what a killed attempt was writing: never done
    tmp = target.with_name(f"{target.name}.tmp-{secrets.token_hex(4)}")
    try:
        yield tmp
        with open(tmp, "rb") as written:
            os.fsync(written.fileno())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except OSError as err:
        if err.filename is not None or type(err) is not OSError:
            raise
        raise OSError(err.errno, f"{err.strerror} while writing {target}; nothing was kept") from err
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(target: Path, text: str) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(target)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
