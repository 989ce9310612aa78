"""Telegram messages about DAG runs, as the original recommender project sent them.

The connection `telegram_default` holds the bot: password = bot token, host = chat id, and an
optional extra `base_url` for another Bot API server (tests point it at a local fake one).
Without the connection a message is only logged. A notification never fails a run, and the token
never reaches a log line: Bot API URLs carry it, so HTTP client logging is kept quiet and errors
are retold with the token blanked out.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from urllib.parse import quote

from airflow.sdk import BaseNotifier

log = logging.getLogger(__name__)

CONN_ID = "telegram_default"
OUTCOME_TEXT = {"success": "finished successfully", "failed": "failed"}


@dataclass(frozen=True)
class TelegramTarget:
    token: str
    chat_id: str
    base_url: str | None = None  # e.g. http://127.0.0.1:8081/bot ; None = api.telegram.org


def run_message(dag_id: str, run_id: str, outcome: str, ui_base_url: str | None) -> str:
    """`DAG <id> with run_id=<run> failed.` plus a link to the run in the web UI."""
    text = f"DAG {dag_id} with run_id={run_id} {OUTCOME_TEXT[outcome]}."
    if ui_base_url:
        text += f"\n{ui_base_url.rstrip('/')}/dags/{quote(dag_id)}/runs/{quote(run_id, safe='')}"
    return text


def send_telegram(text: str, target: TelegramTarget) -> bool:
    """Send `text`; True on success. Failures are logged (without the token) and swallowed."""
    from telegram import Bot
    from telegram.request import HTTPXRequest

    for noisy in ("httpx", "httpcore", "telegram"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    async def send() -> None:
        bot_kwargs = {"base_url": target.base_url} if target.base_url else {}
        request = HTTPXRequest(connect_timeout=10, read_timeout=10)
        async with Bot(target.token, request=request, **bot_kwargs) as bot:
            await bot.send_message(chat_id=target.chat_id, text=text)

    try:
        asyncio.run(send())
    except Exception as err:  # a notification must never fail the run it reports on
        reason = f"{type(err).__name__}: {err}".replace(target.token, "***")
        log.warning("Telegram message not sent (%s); the message was: %s", reason, text)
        return False
    log.info("Telegram message sent to chat %s: %s", target.chat_id, text)
    return True


def telegram_target(conn_id: str = CONN_ID) -> TelegramTarget | None:
    """The bot of connection `conn_id`, or None when the connection is not defined."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None
    if not conn.password or not conn.host:
        log.warning("connection %s needs password = bot token and host = chat id", conn_id)
        return None
    return TelegramTarget(token=conn.password, chat_id=conn.host, base_url=conn.extra_dejson.get("base_url"))


def ui_base_url() -> str | None:
    from airflow.sdk.configuration import conf

    return conf.get("api", "base_url", fallback=None)


ERROR_XCOM_KEY = "error"


def remember_error(context) -> None:
    """Task `on_failure_callback`: keep the error's first line, for the run's failure message
    (the DAG callback runs elsewhere, in the dag-processor, and never sees the exception)."""
    error = context.get("exception")
    if error is None:
        return
    first_line = next(iter(str(error).strip().splitlines()), "")
    from airflow.sdk.exceptions import AirflowTaskTimeout

    if isinstance(error, AirflowTaskTimeout):  # Airflow's own text says only "Timeout, PID: n"
        first_line = f"ran longer than its execution_timeout ({context['task'].execution_timeout}), stopped"
    context["ti"].xcom_push(key=ERROR_XCOM_KEY, value=f"{type(error).__name__}: {first_line}"[:300])


def failure_lines(context) -> list[str]:
    """`task <id>: <first line of its error>` for each failed task of the run, or why the run
    failed when no task did (e.g. its dagrun_timeout)."""
    reason = context.get("reason") or ""
    ti = context.get("ti")
    lines = []
    if ti is not None:
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

        run_id = context["dag_run"].run_id
        states = RuntimeTaskInstance.get_task_states(dag_id=context["dag"].dag_id, run_ids=[run_id])
        for task_id, state in sorted(states.get(run_id, {}).items()):
            if state == "failed":
                error = ti.xcom_pull(task_ids=task_id, key=ERROR_XCOM_KEY)
                lines.append(f"task {task_id}: {error or 'failed (no error recorded)'}")
    if reason == "timed_out":
        timeout = getattr(context["dag"], "dagrun_timeout", None)
        lines.append(f"the run took longer than its dagrun_timeout ({timeout}) and was stopped")
    elif not lines and reason:
        lines.append(f"reason: {reason}")
    return lines


class TelegramRunNotifier(BaseNotifier):
    """DAG-level `on_success_callback` / `on_failure_callback` that reports the run: a failure
    names the failed tasks and their errors; `details(context)` adds lines to a success."""

    def __init__(self, outcome: str, conn_id: str = CONN_ID, details=None):
        super().__init__()
        if outcome not in OUTCOME_TEXT:
            raise ValueError(f"outcome must be one of {sorted(OUTCOME_TEXT)}, not {outcome!r}")
        self.outcome = outcome
        self.conn_id = conn_id
        self.details = details

    def notify(self, context) -> None:
        dag_run = context.get("dag_run")
        dag_id = context["dag"].dag_id
        run_id = dag_run.run_id if dag_run is not None else context.get("run_id", "?")
        text = run_message(dag_id, run_id, self.outcome, ui_base_url())
        try:
            extra = failure_lines(context) if self.outcome == "failed" else self._details(context)
        except Exception as err:  # the message goes out even when its details cannot be read
            log.warning("details of run %s not read: %s", run_id, err)
            extra = []
        if extra:
            first, _, link = text.partition("\n")
            text = "\n".join([first, *extra, link]).rstrip("\n")
        target = telegram_target(self.conn_id)
        if target is None:
            log.info("no %s connection: Telegram message only logged: %s", self.conn_id, text)
            return
        send_telegram(text, target)

    def _details(self, context) -> list[str]:
        return list(self.details(context)) if self.details else []


def run_notifications(on_success: bool = True, success_details=None) -> dict:
    """DAG keyword arguments that report failures, and successes when `on_success` (with the
    lines `success_details(context)` returns)."""
    callbacks = {"on_failure_callback": TelegramRunNotifier("failed")}
    if on_success:
        callbacks["on_success_callback"] = TelegramRunNotifier("success", details=success_details)
    return callbacks
