"""Write demo/data/donors.jsonl: about 1,000 donor rows, the same every time (fixed seed).

About 3% of the rows are bad in ways real exports are: malformed emails, names longer than the
site allows, an unknown gender, duplicate emails, missing emails, impossible dates and stray
control characters. Usage:
python demo/make_donors.py [--rows N] [--out PATH]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
from pathlib import Path

FIRST = [
    "Ada",
    "Grace",
    "Alan",
    "Katherine",
    "Dorothy",
    "Edsger",
    "Barbara",
    "Donald",
    "Frances",
    "John",
    "Margaret",
    "Radia",
    "Tim",
    "Shafi",
    "Leslie",
    "Hedy",
    "Claude",
    "Mary",
    "Niklaus",
    "Sophie",
    "José",
    "Zoë",
    "Ngozi",
    "Wei",
    "Priya",
    "Mateo",
    "Aisha",
    "Liam",
    "Olga",
    "Kenji",
]
LAST = [
    "Lovelace",
    "Hopper",
    "Turing",
    "Johnson",
    "Vaughan",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Allen",
    "McCarthy",
    "Hamilton",
    "Perlman",
    "Berners-Lee",
    "Goldwasser",
    "Lamport",
    "Lamarr",
    "Shannon",
    "Jackson",
    "Wirth",
    "Wilson",
    "Núñez",
    "O'Brien",
    "Okafor",
    "Zhang",
    "Patel",
    "García",
    "Rahman",
    "Murphy",
    "Ivanova",
    "Tanaka",
]
PLACES = [
    ("Austin", "TX", "787"),
    ("Portland", "OR", "972"),
    ("Chicago", "IL", "606"),
    ("Boston", "MA", "021"),
    ("Denver", "CO", "802"),
    ("Atlanta", "GA", "303"),
    ("Seattle", "WA", "981"),
    ("Madison", "WI", "537"),
]
STREETS = ["Main St", "Oak Ave", "Maple Dr", "Cedar Ln", "Elm St", "Park Blvd", "River Rd"]
COLORS = ["teal", "crimson", "ochre", "indigo", "sage", None]
GENDERS = ["FEMALE", "MALE", "UNDEFINED", "female", "male", None]
BAD_KINDS = [
    "malformed_email",
    "long_name",
    "unknown_gender",
    "duplicate_email",
    "missing_email",
    "bad_date",
    "control_character",
]


def donor(rng: random.Random, i: int) -> dict:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    city, state, zip_prefix = rng.choice(PLACES)
    born = dt.date(1940, 1, 1) + dt.timedelta(days=rng.randrange(0, 365 * 65))
    since = dt.date(2005, 1, 1) + dt.timedelta(days=rng.randrange(0, 365 * 20))
    local = f"{first}.{last}".lower().replace("'", "").replace(" ", "")
    return {
        "id": i,
        "email": f"{local}.{i}@example.org",
        "first_name": first,
        "last_name": last,
        "gender": rng.choice(GENDERS),
        "birth_date": born.isoformat(),
        "street": f"{rng.randrange(1, 9999)} {rng.choice(STREETS)}",
        "city": city,
        "state": state,
        "zip": f"{zip_prefix}{rng.randrange(0, 100):02d}",
        "phone": f"555-{rng.randrange(100, 1000)}-{rng.randrange(1000, 10000)}",
        "donor_since": since.isoformat(),
        "volunteer": rng.random() < 0.2,
        "favorite_color": rng.choice(COLORS),
        "updated_at": f"2026-11-{rng.randrange(1, 21):02d}T{rng.randrange(0, 24):02d}:00:00Z",
    }


def spoil(rng: random.Random, row: dict, kind: str, earlier: list[dict]) -> None:
    if kind == "malformed_email":
        row["email"] = rng.choice(
            [row["email"].replace("@", " at "), row["email"][:-4], row["email"].replace("@", "@@")]
        )
    elif kind == "long_name":
        row["first_name"] = (row["first_name"] + "-") * 12  # over the site's 50 characters
    elif kind == "unknown_gender":
        row["gender"] = rng.choice(["robot", "N/A", "f/m"])
    elif kind == "duplicate_email":
        row["email"] = rng.choice(earlier)["email"]
    elif kind == "missing_email":
        row["email"] = None
    elif kind == "bad_date":
        row["birth_date"] = rng.choice(["1980-02-30", "31/12/1975", "someday"])
    elif kind == "control_character":
        row["street"] = row["street"].replace(" ", "\x0b", 1)  # a legacy system's vertical tab


def rows(count: int, seed: int = 2026) -> list[dict]:
    rng = random.Random(seed)  # noqa: S311 - sample data, not secrets
    made: list[dict] = []
    spoiled = 0
    for i in range(1, count + 1):
        row = donor(rng, i)
        if i > 10 and rng.random() < 0.035:
            spoil(rng, row, BAD_KINDS[spoiled % len(BAD_KINDS)], made)
            spoiled += 1
        made.append(row)
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--out", default=str(Path(__file__).parent / "data" / "donors.jsonl"))
    args = parser.parse_args()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows(args.rows)),
        encoding="utf-8",
    )
    print(f"wrote {args.rows} donor rows to {out}")


if __name__ == "__main__":
    main()
