"""Inference candidates: the candidates to rank for each user (no target yet)."""

from steps.core.warehouse import TableSpec
from steps.recsys import RecsFile
from steps.training_data import CANDIDATE_COLUMNS

CANDIDATES_INFERENCE = RecsFile(
    "candidates_inference.parquet",
    TableSpec("candidates_inference", CANDIDATE_COLUMNS, key=("rec_id",)),
)
