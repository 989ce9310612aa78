"""hello_world (PIPELINES.md 2a): the Luigi tutorial's first pipeline.

    MakeDirectory(results/{id}) -> HelloTask + WorldTask -> HelloWorldTask

Each step returns early when its output exists, so a known `run_id_param` is a no-op and a new one
gives a fresh folder.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from steps.core.files import already_complete, write_text_atomic

log = logging.getLogger(__name__)


_FOLDER_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def results_dir(data_dir: Path, result_id: str) -> Path:
    # The id becomes a folder name: only plain names, so `../x` or `/etc` cannot escape results/.
    if not _FOLDER_NAME.fullmatch(result_id):
        raise ValueError(f"hello_world id {result_id!r} is not a plain folder name")
    return Path(data_dir) / "results" / result_id


def make_directory(data_dir: Path, result_id: str) -> str:
    folder = results_dir(data_dir, result_id)
    if not already_complete([folder], "make_directory"):
        folder.mkdir(parents=True, exist_ok=True)
    return str(folder)


def write_word(folder: Path, word: str) -> str:
    """HelloTask / WorldTask: `<folder>/<word>.txt` holding the word."""
    target = Path(folder) / f"{word.lower()}.txt"
    if not already_complete([target], f"write {word}"):
        write_text_atomic(target, word)
    return str(target)


def join_words(word_files: list[str], folder: Path) -> str:
    """HelloWorldTask: the words, in order, joined by a space into hello_world.txt."""
    target = Path(folder) / "hello_world.txt"
    if not already_complete([target], "hello_world"):
        words = [Path(f).read_text(encoding="utf-8").strip() for f in word_files]
        write_text_atomic(target, " ".join(words))
    log.info("%s reads %r", target, target.read_text(encoding="utf-8"))
    return str(target)
