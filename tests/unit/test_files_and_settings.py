"""Atomic writes, output checks and profiles."""

from __future__ import annotations

import pytest

from steps.core.files import already_complete, atomic_path, write_text_atomic
from steps.core.settings import PROJECT_ROOT, ProfileError, load_settings


def test_atomic_write_leaves_nothing_behind_on_error(tmp_path):
    target = tmp_path / "out" / "result.txt"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash while writing")
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_atomic_write_replaces_in_one_step(tmp_path):
    target = write_text_atomic(tmp_path / "a.txt", "one")
    write_text_atomic(target, "two")
    assert target.read_text() == "two"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_already_complete_needs_every_output(tmp_path, caplog):
    caplog.set_level("INFO")
    done, missing = tmp_path / "done", tmp_path / "missing"
    done.write_text("x")
    assert not already_complete([done, missing], "step")
    assert "missing" in caplog.text
    missing.write_text("y")
    assert already_complete([done, missing], "step")
    assert "already complete" in caplog.text


def test_default_profile_is_local_with_project_relative_paths():
    settings = load_settings({})
    assert settings.profile == "local"
    assert settings.data_dir == PROJECT_ROOT / "data"
    assert settings.postgres_data_dir == PROJECT_ROOT / "postgres_data"


def test_profile_and_overrides(tmp_path):
    settings = load_settings({"PIPELINES_PROFILE": "production", "PIPELINES_DATA_DIR": str(tmp_path)})
    assert settings.profile == "production"
    assert settings.data_dir == tmp_path
    assert (
        settings.sensor_timeout_seconds
        > load_settings({"PIPELINES_PROFILE": "staging"}).sensor_timeout_seconds - 1
    )


def test_the_settings_with_defaults_take_the_environment_and_relative_paths_start_at_the_project():
    defaults = load_settings({})
    assert (defaults.task_retries, defaults.retry_delay_seconds, defaults.trip_time_schedule) == (2, 60, "@hourly")
    assert defaults.trip_nodes_file.is_file()
    settings = load_settings({"PIPELINES_TASK_RETRIES": "0", "PIPELINES_RETRY_DELAY_SECONDS": "5",
                              "TRIP_TIME_SCHEDULE": "*/5 * * * *", "TRIP_NODES_FILE": "data/nodes.csv"})  # fmt: skip
    assert (settings.task_retries, settings.retry_delay_seconds, settings.trip_time_schedule) == (0, 5, "*/5 * * * *")
    assert settings.trip_nodes_file == PROJECT_ROOT / "data" / "nodes.csv"


def test_staging_and_production_have_the_same_settings_keys():
    import yaml

    keys = {
        name: set(yaml.safe_load((PROJECT_ROOT / "config" / "profiles" / f"{name}.yaml").read_text()))
        for name in ("local", "staging", "production")
    }
    assert keys["staging"] == keys["production"] == keys["local"]


def test_unknown_profile_is_a_clear_error():
    with pytest.raises(
        ProfileError, match=r"PIPELINES_PROFILE='prod'.*profiles: \['local', 'production', 'staging'\]"
    ):
        load_settings({"PIPELINES_PROFILE": "prod"})
