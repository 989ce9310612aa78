"""The ranker's report, written beside each run's model: a PNG (matplotlib) with the validation
NDCG@10 of every run so far (the model against the als_score order) and the distribution of this
run's model scores for the candidates users did and did not interact with later, and a one-page
HTML showing it with the run's figures and decision."""

from __future__ import annotations

import html
from pathlib import Path

from steps.core.files import atomic_path, write_text_atomic


def write_report(html_path: Path, record: dict, history: list[dict], validation) -> Path:
    """Writes `html_path` and the PNG beside it (same name, .png); returns the HTML path."""
    png_path = html_path.with_suffix(".png")
    _plot(png_path, history, validation)
    write_text_atomic(html_path, _page(record, png_path.name))
    return html_path


def _plot(path: Path, history: list[dict], validation) -> None:
    import matplotlib
    import numpy as np

    matplotlib.use("Agg")  # no screen: render to the file only
    import matplotlib.pyplot as plt

    figure, (runs, scores) = plt.subplots(1, 2, figsize=(11, 4))
    # One point per run, labelled with its date: runs are weekly, not evenly spread in time.
    at = range(len(history))
    runs.plot(at, [h["ndcg_at_10"] for h in history], "o-", label="model")
    runs.plot(at, [h["baseline_ndcg_at_10"] for h in history], "s--", label="als_score order")
    for x, h in zip(at, history, strict=True):
        if not h["accepted"] and h["ndcg_at_10"] is not None:
            runs.annotate("rejected", (x, h["ndcg_at_10"]), fontsize=8, color="firebrick")
    runs.set_xticks(list(at), [f"{h['logical_date']:%Y-%m-%d}" for h in history], rotation=30)
    runs.set_ylim(bottom=0)
    runs.set_title("Validation NDCG@10 by run")
    runs.set_ylabel("NDCG@10 (users' later interactions)")
    runs.legend()

    # Scores span orders of magnitude: compare the two groups on a log scale, with shared bins.
    log_score = np.log10(validation["model_score"].clip(lower=1e-6))
    hit = validation["label"].to_numpy() == 1
    bins = np.histogram_bin_edges(log_score, bins=30)
    scores.hist(log_score[~hit], bins=bins, density=True, alpha=0.6, label="no later interaction")
    scores.hist(log_score[hit], bins=bins, density=True, alpha=0.6, label="interacted later")
    scores.set_title("This run's model scores on the validation candidates")
    scores.set_xlabel("log10(score)")
    scores.set_ylabel("density")
    scores.legend()
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    plt.close(figure)


def _page(record: dict, png_name: str) -> str:
    def cell(value) -> str:
        return "-" if value is None else f"{value:.3f}"

    labels = {"ndcg_at_10": "NDCG@10", "precision_at_10": "precision@10", "recall_at_10": "recall@10"}
    rows = "".join(
        f"<tr><td>{label}</td><td>{cell(record[name])}</td><td>{cell(record[f'baseline_{name}'])}</td></tr>"
        for name, label in labels.items()
    )
    since = f"{record['validation_since']:%Y-%m-%d %H:%M} UTC"
    ranks_with = record["ranks_with"]
    ranked_by = f"the model of {ranks_with}" if ranks_with else "the als_score order"
    title = f"Ranker, run {record['run_id']}"
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:1150px;margin:2em auto}}
td,th{{padding:.2em 1em;text-align:right}} td:first-child,th:first-child{{text-align:left}}</style></head>
<body><h1>{html.escape(title)}</h1>
<p><b>{html.escape(record["note"])}</b>. Candidates ranked by {html.escape(ranked_by)}.</p>
<p>Validation: every inference candidate of a user ranked, the top 10 scored against what the
{record["validation_users"]} users who did something from {since} on did.</p>
<table><tr><th>metric</th><th>model</th><th>als_score order</th></tr>{rows}</table>
<p><img src="{html.escape(png_name)}" alt="validation NDCG@10 by run; score distributions" width="1100"></p>
<p>Trained on {record["train_rows"]} rows ({record["positives"]} positives, {record["train_users"]} users)
in {record["train_seconds"]:.2f} s. Model: {html.escape(record["model_path"])}</p>
</body></html>
"""
