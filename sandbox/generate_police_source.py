"""Fill the source schema the project's police staging populate scripts read, seeded:

    python -m sandbox.generate_police_source --dsn postgresql://user@host/warehouse [--officers 40]

Schema `police_source` (the "etl" schema of the original project): officers, shifts, arrests,
charges, complaints and force_reports, written as a records system would export them: times as
'MM/DD/YYYY HH24:MI' text (some blank), codes spelled in varying case and spacing ("  SERGEANT",
"Police-Officer"), a few values no lookup knows, names as "LAST, First M." or "First M. Last".
A schema that already holds officers is left as it is (delete it to generate again).
"""

from __future__ import annotations

import argparse
import datetime as dt
import random

SCHEMA = "police_source"
TABLES = {
    "officers": "badge_no TEXT PRIMARY KEY, full_name TEXT, rank TEXT, race TEXT, gender TEXT, "
    "birth_date TEXT",
    "shifts": "badge_no TEXT, shift_start TEXT, shift_end TEXT",
    "arrests": "arrest_no TEXT PRIMARY KEY, badge_no TEXT, arrest_time TEXT, arrest_type TEXT, "
    "suspect_age INT, felony TEXT",
    "charges": "arrest_no TEXT, charge_code TEXT, description TEXT",
    "complaints": "complaint_no TEXT PRIMARY KEY, badge_no TEXT, received_time TEXT, origin TEXT, "
    "sustained TEXT",
    "force_reports": "report_no TEXT PRIMARY KEY, badge_no TEXT, incident_time TEXT, force_type TEXT, "
    "officer_injured TEXT",
}
FIRST = ["John", "Mary", "Luis", "Aisha", "Wei", "Patrick", "Olga", "Kwame", "Sarah", "Diego", "Mei"]
LAST = ["Smith", "O'Brien", "Garcia", "Nguyen", "Mcdonald-Jones", "Okafor", "Ivanova", "Brown", "Khan"]
RANKS = ["Police Officer", "police officer", "  POLICE-OFFICER", "Detective", "SERGEANT ", "Lieutenant",
         "Captain", "Cadet"]  # fmt: skip  # Cadet: no lookup row, becomes unknown
RACES = ["Black", "WHITE", "asian", "Hispanic", "other", ""]
GENDERS = ["female", "FEMALE", "male", "X"]
ARREST_TYPES = ["On Sight", "on-sight", "WARRANT", "Summons", "citizen hold"]
ORIGINS = ["Citizen", "internal", "ANONYMOUS", "web form"]
FORCE_TYPES = ["Hands", "TASER", "baton", "Firearm Drawn", "k9"]
CHARGES = [("13-3-1", "Theft"), ("13-4-2", "Assault"), ("18-2-9", "Trespass"), ("42-1-1", "DUI")]


def _stamp(moment: dt.datetime, rng: random.Random) -> str:
    return "" if rng.random() < 0.03 else moment.strftime("%m/%d/%Y %H:%M")


def _name(first: str, last: str, rng: random.Random) -> str:
    middle = rng.choice(["", " A.", " J", " M."])
    if rng.random() < 0.5:
        return (
            f"{last.upper()} , {first.lower()}{middle}"
            if rng.random() < 0.3
            else f"{last.upper()}, {first}{middle}"
        )
    return f" {first}{middle}  {last} "


def rows(officers: int, seed: int) -> dict[str, list[tuple]]:
    rng = random.Random(seed)
    start = dt.datetime(2026, 1, 5, 6, 0)
    data: dict[str, list[tuple]] = {name: [] for name in TABLES}
    for n in range(1, officers + 1):
        badge = f"B{n:04d}"
        born = dt.date(1965, 1, 1) + dt.timedelta(days=rng.randrange(0, 12_000))
        name = _name(rng.choice(FIRST), rng.choice(LAST), rng)
        data["officers"].append((badge, name, rng.choice(RANKS), rng.choice(RACES), rng.choice(GENDERS),
                                 born.strftime("%m/%d/%Y")))  # fmt: skip
        for day in rng.sample(range(60), 10):
            begin = start + dt.timedelta(days=day, hours=rng.choice([0, 8, 16]))
            data["shifts"].append((badge, begin.strftime("%m/%d/%Y %H:%M"),
                                   (begin + dt.timedelta(hours=8)).strftime("%m/%d/%Y %H:%M")))  # fmt: skip
        for _ in range(rng.randrange(0, 8)):
            number = f"A{len(data['arrests']) + 1:06d}"
            moment = start + dt.timedelta(minutes=rng.randrange(0, 60 * 24 * 60))
            data["arrests"].append((number, badge, _stamp(moment, rng), rng.choice(ARREST_TYPES),
                                    rng.randrange(16, 70), rng.choice(["Y", "N", "n "])))  # fmt: skip
            for code, description in rng.sample(CHARGES, rng.randrange(0, 3)):
                data["charges"].append((number, f" {code}", description))
        for _ in range(rng.randrange(0, 3)):
            moment = start + dt.timedelta(minutes=rng.randrange(0, 60 * 24 * 60))
            data["complaints"].append((f"C{len(data['complaints']) + 1:05d}", badge, _stamp(moment, rng),
                                       rng.choice(ORIGINS), rng.choice(["Y", "N"])))  # fmt: skip
        for _ in range(rng.randrange(0, 3)):
            moment = start + dt.timedelta(minutes=rng.randrange(0, 60 * 24 * 60))
            number = f"F{len(data['force_reports']) + 1:05d}"
            data["force_reports"].append((number, badge, _stamp(moment, rng), rng.choice(FORCE_TYPES),
                                          rng.choice(["Y", "N"])))  # fmt: skip
    return data


def generate(conn, officers: int = 40, seed: int = 7) -> dict[str, int]:
    """Create and fill `police_source` unless it holds officers; returns the row count per table."""
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    for table, columns in TABLES.items():
        conn.execute(f"CREATE TABLE IF NOT EXISTS {SCHEMA}.{table} ({columns})")
    if not conn.execute(f"SELECT EXISTS (SELECT 1 FROM {SCHEMA}.officers)").fetchone()[0]:
        for table, values in rows(officers, seed).items():
            if values:
                marks = ", ".join(["%s"] * len(values[0]))
                with conn.cursor() as cursor:
                    cursor.executemany(f"INSERT INTO {SCHEMA}.{table} VALUES ({marks})", values)
    conn.commit()
    return {t: conn.execute(f"SELECT count(*) FROM {SCHEMA}.{t}").fetchone()[0] for t in TABLES}


def main() -> None:
    import psycopg

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--dsn", required=True, help="the warehouse, e.g. postgresql://user@127.0.0.1:5433/warehouse"
    )
    parser.add_argument("--officers", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with psycopg.connect(args.dsn) as conn:
        for table, count in generate(conn, args.officers, args.seed).items():
            print(f"{SCHEMA}.{table}: {count} rows")


if __name__ == "__main__":
    main()
