"""`make bench`: every benchmark, one table each.

python -m bench [--quick]              # all (--quick: each at a tenth of its size)
python -m bench loader [--rows N]      # the warehouse loader on a CSV file
python -m bench recsys [--rows N]      # load_candidates_train on generated candidates
python -m bench dag_parse              # DAG files' parse times
python -m bench ranker [--data DIR]    # ranking quality: ours, als_score order, the original CatBoost
"""

from __future__ import annotations

import subprocess
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
    # Each in a process of its own: a benchmark's peak memory is read from its own process, which
    # otherwise still held what the ones before it had kept (page views' day 1 read 1.2 GB after
    # song plays' in-process pandas, 0.5 GB alone).
    for name in BENCHMARKS:
        subprocess.run([sys.executable, "-m", "bench", name, *sys.argv[1:]], check=True)


if __name__ == "__main__":
    main()
