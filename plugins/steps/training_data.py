"""Training candidates: ALS candidates per user with the observed target, for the ranker."""

from steps.core.warehouse import Column, TableSpec
from steps.recsys import RecsFile

CANDIDATE_COLUMNS = (
    Column("id", "bigint"),
    Column("rec_id", "bigint", nullable=False),
    Column("user_id", "bigint", nullable=False),
    Column("item_id", "bigint", nullable=False),
    Column("als_score", "double precision", nullable=False),
    Column("category_id", "bigint", nullable=False),
    Column("parent_id", "bigint", nullable=False),
    Column("available", "bigint", nullable=False),
)

CANDIDATES_TRAIN = RecsFile(
    "candidates_train.parquet",
    TableSpec(
        "candidates_train", (*CANDIDATE_COLUMNS, Column("target", "bigint", nullable=False)), key=("rec_id",)
    ),
)
