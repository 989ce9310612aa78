"""Split the source's officer names into first and last names.

The source writes names either as "LAST, First M." or as "First M. Last", in any case and with
stray spaces: "SMITH ,  john a." and "John A Smith" are the same officer. Python says this more
plainly than SQL. The build runs this after POPULATE-staging-officers_hub.sql and counts it done
once `last_name` holds a value.
"""

import re

COLUMN = "last_name"


def _capitalised(word: str) -> str:
    # O'BRIEN -> O'Brien, mcdonald-jones -> Mcdonald-Jones
    return re.sub(r"[A-Za-z]+", lambda m: m.group().capitalize(), word)


def split_name(raw: str | None) -> tuple[str | None, str | None]:
    """(first, last) of a source name; (None, None) when there is none."""
    text = " ".join((raw or "").split())
    if not text:
        return None, None
    if "," in text:
        last, _, rest = (part.strip() for part in text.partition(","))
        first = rest.split(" ")[0] if rest else None
    else:
        words = text.split(" ")
        first, last = (words[0], words[-1]) if len(words) > 1 else (None, words[0])
    return (_capitalised(first.rstrip(".")) if first else None), _capitalised(last)


def clean(conn, schema: str, table: str) -> None:
    from psycopg import sql

    target = sql.Identifier(schema, table)
    rows = conn.execute(sql.SQL("SELECT officer_id, full_name_raw FROM {}").format(target)).fetchall()
    with conn.cursor() as cursor:
        cursor.executemany(
            sql.SQL("UPDATE {} SET first_name = %s, last_name = %s WHERE officer_id = %s").format(target),
            [(*split_name(raw), officer_id) for officer_id, raw in rows],
        )
