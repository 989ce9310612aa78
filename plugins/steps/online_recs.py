"""Online recommendations: items similar to one the user is looking at."""

from steps.core.warehouse import Column, TableSpec
from steps.recsys import RecsFile

ONLINE_RECS = RecsFile(
    "similar.parquet",
    TableSpec(
        "online_recs",
        (
            Column("id", "bigint"),
            Column("rec_id", "bigint", nullable=False),
            Column("itemid_1", "bigint", nullable=False),
            Column("itemid_2", "bigint", nullable=False),
            Column("score", "double precision"),
        ),
        key=("rec_id",),
    ),
)
