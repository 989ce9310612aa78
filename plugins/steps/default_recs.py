"""Default recommendations: the most popular items, shown to users without history."""

from steps.core.warehouse import Column, TableSpec
from steps.recsys import RecsFile

DEFAULT_RECS = RecsFile(
    "top_popular.parquet",
    TableSpec(
        "default_recs",
        (
            Column("id", "bigint"),
            Column("rec_id", "bigint", nullable=False),
            Column("item_id", "bigint", nullable=False),
            # The original project named it items_selected; the published file says items_cnt.
            Column("items_selected", "bigint", aliases=("items_cnt",)),
            Column("item_id_encoded", "bigint"),
        ),
        key=("rec_id",),
    ),
)
