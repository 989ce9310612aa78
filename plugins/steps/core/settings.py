"""Settings of the active profile (PIPELINES.md 2b): one environment variable picks the profile,
a YAML file in config/profiles/ holds its values, a few environment variables override them.

    PIPELINES_PROFILE      local (default) | staging | production
    PIPELINES_DATA_DIR     root of file outputs
    POSTGRES_DATA_DIR      input files the load DAGs read
    PAGE_VIEWS_BUCKET      the S3 bucket of the page-views logs
    POLICE_SCRIPTS_DIR     the police staging script set (relative paths of its DAG's params start here)
    PIPELINES_CONFIG_DIR   where profiles/ lives (default: config/ beside plugins/)
    PIPELINES_TASK_RETRIES         retries of a failed task (default 2; 0 shows a failure at once)
    PIPELINES_RETRY_DELAY_SECONDS  the first retry's delay, doubling after it (default 60)
    TRIP_TIME_SCHEDULE     uber_trip_time's schedule (default @hourly)
    TRIP_NODES_FILE        the trip-time node file (default: config/samples/sample_city_nodes.csv)

This module is the only reader of the environment in dags/ and plugins/.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

# plugins/steps/core/settings.py -> the project root (/opt/airflow in the image).
PROJECT_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_PROFILE = "local"


class ProfileError(ValueError):
    pass


@dataclass(frozen=True)
class Settings:
    profile: str
    data_dir: Path
    postgres_data_dir: Path
    sensor_timeout_seconds: int
    task_timeout_minutes: int
    page_views_bucket: str
    police_scripts_dir: Path
    task_retries: int = 2
    retry_delay_seconds: int = 60
    trip_time_schedule: str = "@hourly"
    trip_nodes_file: Path = PROJECT_ROOT / "config" / "samples" / "sample_city_nodes.csv"


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    import yaml

    env = os.environ if environ is None else environ
    profile = env.get("PIPELINES_PROFILE") or DEFAULT_PROFILE
    config_dir = Path(env.get("PIPELINES_CONFIG_DIR") or PROJECT_ROOT / "config")
    profile_file = config_dir / "profiles" / f"{profile}.yaml"
    if not profile_file.is_file():
        known = sorted(p.stem for p in (config_dir / "profiles").glob("*.yaml"))
        raise ProfileError(f"PIPELINES_PROFILE={profile!r}: no {profile_file} (profiles: {known})")
    values = yaml.safe_load(profile_file.read_text()) or {}
    try:
        return Settings(
            profile=profile,
            data_dir=_path(env.get("PIPELINES_DATA_DIR") or values["data_dir"]),
            postgres_data_dir=_path(env.get("POSTGRES_DATA_DIR") or values["postgres_data_dir"]),
            sensor_timeout_seconds=int(values["sensor_timeout_seconds"]),
            task_timeout_minutes=int(values["task_timeout_minutes"]),
            page_views_bucket=env.get("PAGE_VIEWS_BUCKET") or values["page_views_bucket"],
            police_scripts_dir=_path(env.get("POLICE_SCRIPTS_DIR") or values["police_scripts_dir"]),
            **{name: kind(value) for name, (variable, kind) in _OVERRIDES.items()
               if (value := env.get(variable) or values.get(name)) not in (None, "")},
        )
    except KeyError as missing:
        raise ProfileError(f"{profile_file}: missing setting {missing}") from None


# Settings with a default, which a profile may set and an environment variable overrides.
_OVERRIDES = {
    "task_retries": ("PIPELINES_TASK_RETRIES", int),
    "retry_delay_seconds": ("PIPELINES_RETRY_DELAY_SECONDS", int),
    "trip_time_schedule": ("TRIP_TIME_SCHEDULE", str),
    "trip_nodes_file": ("TRIP_NODES_FILE", lambda value: _path(value)),
}


def _path(value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else PROJECT_ROOT / path
