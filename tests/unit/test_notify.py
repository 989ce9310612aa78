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
