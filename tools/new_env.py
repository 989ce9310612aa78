"""Write a .env for docker compose from .env.example, with a fresh secret for every REQUIRED value
left empty there (passwords, tokens, the Fernet key, the JWT and API secret keys).

    python3 tools/new_env.py            # writes ./.env; refuses to overwrite one
    python3 tools/new_env.py --out PATH --force

Needs only the standard library. Values already filled in .env.example are copied as they are.
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import secrets
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def fresh_secret(name: str) -> str:
    if name == "AIRFLOW_FERNET_KEY":  # what cryptography.fernet.Fernet.generate_key() makes
        return base64.urlsafe_b64encode(os.urandom(32)).decode()
    return secrets.token_urlsafe(32)


def filled(example: str) -> tuple[str, list[str]]:
    """The text of .env.example with every empty REQUIRED variable given a secret, and their names."""
    lines, generated, required = [], [], False
    for line in example.splitlines():
        assignment = re.fullmatch(r"(\w+)=", line)
        if assignment and required:
            line += fresh_secret(assignment[1])
            generated.append(assignment[1])
        # A "REQUIRED" comment applies to the first assignment after it.
        required = (required or "REQUIRED" in line) if line.startswith("#") else False
        lines.append(line)
    return "\n".join(lines) + "\n", generated


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--example", type=Path, default=ROOT / ".env.example")
    parser.add_argument("--out", type=Path, default=ROOT / ".env")
    parser.add_argument("--force", action="store_true", help="overwrite an existing file")
    args = parser.parse_args(argv)
    if args.out.exists() and not args.force:
        sys.exit(f"{args.out} exists; keep it, or pass --force to replace it (its secrets are lost)")
    text, generated = filled(args.example.read_text())
    args.out.write_text(text)
    args.out.chmod(0o600)
    print(f"wrote {args.out} with fresh {', '.join(generated)}")


if __name__ == "__main__":
    main()
