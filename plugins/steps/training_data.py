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

# The interactions the candidates were made from (RetailRocket events: view, addtocart,
# transaction). The ranker learns from what users did after a point in time and measures itself
# on what they did later (steps/ranked_data.py). The file is the whole log each week, and may hold
# identical lines, so it replaces the table instead of upserting on a key.
EVENTS = RecsFile(
    "events.parquet",
    TableSpec(
        "events",
        (
            Column("timestamp", "bigint", nullable=False),  # milliseconds since the epoch, as in the file
            Column("user_id", "bigint", nullable=False),
            Column("item_id", "bigint", nullable=False),
            Column("event", "text", nullable=False),
        ),
    ),
    mode="replace",
)
