"""`make bench`: every benchmark, one table each.

python -m bench                    # all
python -m bench loader --rows N    # one, with its own options
"""

from __future__ import annotations

import sys

from bench import dag_parse, loader

BENCHMARKS = {"dag_parse": dag_parse, "loader": loader}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in BENCHMARKS:
        name = sys.argv.pop(1)
        BENCHMARKS[name].main()
        return
    for benchmark in BENCHMARKS.values():
        benchmark.main()


if __name__ == "__main__":
    main()
