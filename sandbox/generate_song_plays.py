"""Generate the song-plays workshop's source files, seeded, for any dates and size.

    python -m sandbox.generate_song_plays --out DIR --start 2019-02-01 --end 2019-02-08 [--spins 5000]

Writes `listeners.snappy.parquet` and one `spins-YYYY-MM-DD.snappy.parquet` per day, with the
real files' columns and types. Some spins last 30 seconds or less and some repeat exactly, and a
few name listeners that are not in the listeners file, so the job's filter, de-duplication and
inner join all have something to do.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

SUBSCRIPTIONS = ["Ad-supported", "Plus", "Premium", "Family"]
AGES = ["18-24", "25-39", "40-55", "55-65", "65+"]
SOURCES = ["Station", "Playlist", "Album", "Autoplay", "Collections", "All Artist Tracks", "Thumbed Up Track"]


def listeners_table(listeners: int, seed: int):
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    return pa.table({
        "fake_listener_id": pa.array(np.arange(1, listeners + 1), pa.int32()),
        "age": rng.choice(AGES, listeners),
        "gender": rng.choice(["M", "F", "Unknown"], listeners),
        "subscription_type": rng.choice(SUBSCRIPTIONS, listeners),
        "country": ["US"] * listeners,
        "fake_zipcode": pa.array(rng.integers(10_000, 99_999, listeners), pa.int32()),
    })  # fmt: skip


def spins_table(day: dt.date, spins: int, listeners: int, seed: int):
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng([seed, day.toordinal()])
    artists = rng.integers(100_000, 999_999, 50)
    artist = rng.integers(0, len(artists), spins)
    start = np.datetime64(day.isoformat(), "s")
    seconds = rng.integers(0, 86_400, spins).astype("timedelta64[s]")
    table = pa.table({
        "fake_artist_id": pa.array(artists[artist], pa.int32()),
        "artist_name": [f"Artist {a}" for a in artist],
        "fake_track_id": pa.array(rng.integers(100_000, 999_999, spins), pa.int32()),
        "track_title": [f"Track {t}" for t in rng.integers(0, 2_000, spins)],
        "date_time": pa.array(start + seconds, pa.timestamp("ns")),
        "elapsed_seconds": pa.array(rng.integers(0, 301, spins), pa.int32()),
        "play_source": rng.choice(SOURCES, spins),
        # A few listener ids beyond the listeners file: the inner join drops them.
        "fake_listener_id": pa.array(rng.integers(1, listeners + 6, spins), pa.int32()),
    })  # fmt: skip
    repeats = table.take(rng.integers(0, spins, max(1, spins // 50)))  # exact duplicate rows
    return pa.concat_tables([table, repeats])


def generate(out_dir: Path, start: dt.date, end: dt.date, spins: int = 5_000, listeners: int = 100,
             seed: int = 11) -> list[Path]:  # fmt: skip
    import pyarrow.parquet as pq

    from steps.core.files import atomic_path

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    day = start
    files = [("listeners.snappy.parquet", listeners_table(listeners, seed))]
    while day <= end:
        files.append((f"spins-{day:%Y-%m-%d}.snappy.parquet", spins_table(day, spins, listeners, seed)))
        day += dt.timedelta(days=1)
    for name, table in files:
        with atomic_path(out_dir / name) as tmp:
            # INT96 timestamps, as Spark wrote the real files (Spark cannot read nanosecond ones).
            pq.write_table(table, tmp, compression="snappy", use_deprecated_int96_timestamps=True)
        written.append(out_dir / name)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--start", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--end", type=dt.date.fromisoformat, help="last day (default: --start)")
    parser.add_argument("--spins", type=int, default=5_000, help="spins per day (default 5,000)")
    parser.add_argument("--listeners", type=int, default=100)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    for path in generate(args.out, args.start, args.end or args.start, args.spins, args.listeners, args.seed):
        print(path)


if __name__ == "__main__":
    main()
