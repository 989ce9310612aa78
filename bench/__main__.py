"""`make bench`: every benchmark, one table each.

python -m bench [--quick]              # all (--quick: each at a tenth of its size)
python -m bench loader [--rows N]      # the warehouse loader on a CSV file
python -m bench recsys [--rows N]      # load_candidates_train on generated candidates
python -m bench dag_parse              # DAG files' parse times
python -m bench ranker [--data DIR]    # ranking quality: ours, als_score order, the original CatBoost
"""

from __future__ import annotations

import sys

from bench import dag_parse, loader, page_views, ranker, song_plays

BENCHMARKS = {
    "dag_parse": dag_parse.main,
    "loader": lambda: loader.main("loader"),
    "recsys": lambda: loader.main("recsys"),
    "song_plays": song_plays.main,
    "page_views": page_views.main,
    "ranker": ranker.main,
}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in BENCHMARKS:
        BENCHMARKS[sys.argv.pop(1)]()
        return
    for benchmark in BENCHMARKS.values():
        benchmark()


if __name__ == "__main__":
    main()
