"""The Telegram notifier through python-telegram-bot against a fake Bot API over real HTTP."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace

import pytest

from sandbox.fake_telegram import FakeTelegram
from steps.core.notify import TelegramRunNotifier, TelegramTarget, run_message, send_telegram

TOKEN = "987654:secret-token-value"


@pytest.fixture
def bot_api():
    fake = FakeTelegram(TOKEN).start()
    yield fake
    fake.stop()


def context(dag_id="load_default_recs", run_id="scheduled__2024-06-01T21:05:00+00:00"):
    return {"dag": SimpleNamespace(dag_id=dag_id), "dag_run": SimpleNamespace(run_id=run_id)}


def test_message_text_matches_the_original_and_links_the_run():
    text = run_message(
        "rank_candidates", "manual__2024-06-01T00:00:00+00:00", "failed", "http://airflow:8080/"
    )
    first, link = text.splitlines()
    assert first == "DAG rank_candidates with run_id=manual__2024-06-01T00:00:00+00:00 failed."
    assert link == "http://airflow:8080/dags/rank_candidates/runs/manual__2024-06-01T00%3A00%3A00%2B00%3A00"
    assert run_message("d", "r", "success", None) == "DAG d with run_id=r finished successfully."


def test_send_reaches_the_bot_api(bot_api):
    assert send_telegram("hello", TelegramTarget(TOKEN, "1001", bot_api.base_url))
    assert [(m["chat"]["id"], m["text"]) for m in bot_api.messages] == [(1001, "hello")]


def test_rejected_token_is_logged_without_the_token_and_does_not_raise(bot_api, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "111:wrong-token-value"
    assert not send_telegram("hello", TelegramTarget(wrong, "1001", bot_api.base_url))
    assert bot_api.messages == []
    assert "not sent" in caplog.text
    assert wrong not in caplog.text


def test_unreachable_server_does_not_raise(caplog):
    assert not send_telegram("hello", TelegramTarget(TOKEN, "1", "http://127.0.0.1:9/bot"))
    assert TOKEN not in caplog.text


def test_notifier_uses_the_connection(bot_api, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    conn = {
        "conn_type": "generic",
        "host": "1001",
        "password": TOKEN,
        "extra": {"base_url": bot_api.base_url},
    }
    monkeypatch.setenv("AIRFLOW_CONN_TELEGRAM_DEFAULT", json.dumps(conn))
    TelegramRunNotifier("failed").notify(context())
    assert len(bot_api.messages) == 1
    assert bot_api.messages[0]["text"].startswith(
        "DAG load_default_recs with run_id=scheduled__2024-06-01T21:05:00+00:00 failed."
    )
    assert TOKEN not in caplog.text


def test_without_connection_the_message_is_only_logged(monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    monkeypatch.delenv("AIRFLOW_CONN_TELEGRAM_DEFAULT", raising=False)
    TelegramRunNotifier("success").notify(context())
    assert "only logged" in caplog.text
    assert "finished successfully" in caplog.text


def test_unknown_outcome_is_refused():
    with pytest.raises(ValueError, match="outcome"):
        TelegramRunNotifier("maybe")


class XComRecorder:
    """The one call remember_error makes on its task instance."""

    def __init__(self):
        self.pushed = {}

    def xcom_push(self, key, value):
        self.pushed[key] = value


def test_a_task_stopped_by_its_execution_timeout_says_which_limit_it_hit():
    import datetime as dt
    import time

    from airflow.sdk.exceptions import AirflowTaskTimeout
    from airflow.sdk.execution_time.timeout import timeout

    from steps.core.notify import ERROR_XCOM_KEY, remember_error

    # timeout(): what the task runner wraps a task that has an execution_timeout in.
    with pytest.raises(AirflowTaskTimeout) as stopped, timeout(1):
        time.sleep(30)
    ti = XComRecorder()
    task = SimpleNamespace(execution_timeout=dt.timedelta(minutes=20))
    remember_error({"exception": stopped.value, "ti": ti, "task": task})
    assert ti.pushed[ERROR_XCOM_KEY] == (
        "AirflowTaskTimeout: ran longer than its execution_timeout (0:20:00), stopped"
    )
    remember_error({"exception": ValueError("bad row 7\nmore detail"), "ti": ti, "task": task})
    assert ti.pushed[ERROR_XCOM_KEY] == "ValueError: bad row 7"
