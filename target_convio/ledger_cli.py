"""`target-convio-ledger`: look at a sync ledger and manage it."""

from __future__ import annotations

import argparse
import json
import os
import sys

from target_convio.ledger import Ledger
from target_convio.ledger_schema import LedgerError
from target_convio.settings import DEFAULT_LEDGER_URL

ENV = "TARGET_CONVIO_LEDGER_URL"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="target-convio-ledger",
        description="Look at target-convio's sync ledger: what Convio last did with each record.",
    )
    parser.add_argument(
        "--ledger-url",
        default=os.environ.get(ENV, DEFAULT_LEDGER_URL),
        help=f"the ledger (default: ${ENV}, else {DEFAULT_LEDGER_URL})",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("counts", help="entries by site, stream and last outcome")
    queue = commands.add_parser("replays", help="records that failed and will be sent again")
    queue.add_argument("--stream", help="only this stream")
    forget = commands.add_parser("forget", help="forget a stream: its next run sends everything")
    forget.add_argument("stream")
    forget.add_argument("--site", help="only this site's entries (its api_url)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        ledger = Ledger.open(args.ledger_url, site="")
    except LedgerError as exc:
        print(f"target-convio-ledger: {exc}", file=sys.stderr)
        return 1
    try:
        if args.command == "counts":
            rows = ledger.counts()
            print(f"{'site':<50} {'stream':<20} {'last outcome':<12} {'records':>9}")
            for site, stream, state, count in rows:
                print(f"{site:<50} {stream:<20} {state:<12} {count:>9,}")
            if not rows:
                print("(the ledger is empty)")
        elif args.command == "replays":
            for item in ledger.queue(args.stream):
                since = f"{item['since']:%Y-%m-%d %H:%M}" if item["since"] else ""
                key = json.dumps(item["key"], default=str)
                print(
                    f"{item['stream']}  key {key}  failed in {item['replays'] + 1} run(s), "
                    f"last {since}: {item['message'] or ''}"
                )
        else:
            removed = ledger.forget(args.stream, args.site)
            print(f"forgot {removed:,} records of stream {args.stream!r}")
    finally:
        ledger.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
