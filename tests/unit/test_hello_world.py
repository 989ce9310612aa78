"""hello_world's steps without a scheduler."""

from __future__ import annotations

import pytest

from steps import hello_world as steps


def run_pipeline(data_dir, result_id="test"):
    folder = steps.make_directory(data_dir, result_id)
    words = [steps.write_word(folder, "Hello"), steps.write_word(folder, "World")]
    return steps.join_words(words, folder)


def test_writes_hello_world(tmp_path):
    path = run_pipeline(tmp_path)
    assert path == str(tmp_path / "results" / "test" / "hello_world.txt")
    assert (tmp_path / "results" / "test" / "hello_world.txt").read_text() == "Hello World"


def test_rerun_changes_nothing(tmp_path, caplog):
    caplog.set_level("INFO")
    path = run_pipeline(tmp_path)
    stamps = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "results" / "test").iterdir()}
    run_pipeline(tmp_path)
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "results" / "test").iterdir()} == stamps
    assert "hello_world: already complete" in caplog.text
    assert path.endswith("hello_world.txt")


def test_new_id_gives_a_fresh_folder(tmp_path):
    run_pipeline(tmp_path, "abc")
    run_pipeline(tmp_path, "test")
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == ["abc", "test"]


@pytest.mark.parametrize("bad", ["../escape", "/etc", "a/b", ".hidden", ""])
def test_ids_that_are_not_folder_names_are_refused(tmp_path, bad):
    with pytest.raises(ValueError, match="not a plain folder name"):
        steps.make_directory(tmp_path, bad)
    assert not (tmp_path / "results").exists()
