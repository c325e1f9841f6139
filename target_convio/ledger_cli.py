"""`target-convio-ledger`: look at a sync ledger and manage it.

Looking (`counts`, `replays`, `runs`, `report`) never creates a ledger, a folder or a table,
and exits 1 when there is no ledger. Output cut short by its reader (`| head`) ends quietly
with 141, as a shell pipeline expects; names are printed with control characters escaped.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from target_convio.history import Run, latest_runs
from target_convio.ledger import Ledger
from target_convio.ledger_schema import DEFAULT_LEDGER_URL, HISTORY_VERSION, LedgerError
from target_convio.outcomes import Outcome
from target_convio.report import render_report

ENV = "TARGET_CONVIO_LEDGER_URL"
CLOSED_PIPE = 141  # 128 + SIGPIPE


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
    copy = commands.add_parser(
        "copy", help="copy every entry into another ledger (SQLite to PostgreSQL and back)"
    )
    copy.add_argument("--to", required=True, help="the other ledger's URL (made if need be)")
    runs = commands.add_parser("runs", help="the latest runs: how each ended, its outcomes")
    runs.add_argument("--last", type=_positive, default=20, help="how many (default 20)")
    runs.add_argument("--format", choices=("table", "json"), default="table")
    report = commands.add_parser("report", help="one HTML page of the latest runs, with charts")
    report.add_argument("--output", default="report.html", help="the page (default report.html)")
    report.add_argument("--last", type=_positive, default=60, help="how many runs (default 60)")
    report.add_argument(
        "--stale-hours",
        type=float,
        default=36.0,
        help="the last complete run is shown stale (red) past this many hours (default 36)",
    )
    forget = commands.add_parser("forget", help="forget a stream: its next run sends everything")
    forget.add_argument("stream")
    forget.add_argument("--site", help="only this site's entries (its api_url)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        found = Ledger.find(args.ledger_url, site="")
        if found is None:
            print("target-convio-ledger: there is no ledger at --ledger-url", file=sys.stderr)
            return 1
        ledger = found
        if args.command in ("forget", "copy"):  # brought to this version first
            ledger.close()
            ledger = Ledger.open(args.ledger_url, site="")
        if args.command == "copy":
            args.target = Ledger.open(args.to, site="")
    except LedgerError as exc:
        print(f"target-convio-ledger: {exc}", file=sys.stderr)
        return 1
    try:
        for line in _lines(ledger, args):
            print(line)
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
        return CLOSED_PIPE
    finally:
        ledger.close()
    return 0


def _lines(ledger: Ledger, args: argparse.Namespace) -> Iterator[str]:
    if args.command == "counts":
        rows = ledger.counts()
        yield f"{'site':<50} {'stream':<20} {'last outcome':<12} {'records':>9}"
        for site, stream, state, count in rows:
            yield f"{shown(site):<50} {shown(stream):<20} {state:<12} {count:>9,}"
        if not rows:
            yield "(the ledger is empty)"
    elif args.command == "replays":
        for item in ledger.queue(args.stream):
            since = f"{item['since']:%Y-%m-%d %H:%M}" if item["since"] else ""
            key = json.dumps(item["key"], default=str)
            yield (
                f"{shown(item['stream'])}  key {key}  failed in {item['replays'] + 1} run(s), "
                f"last {since}: {shown(item['message'] or '')}"
            )
    elif args.command == "copy":
        try:
            copied, claims = ledger.copy_to(args.target)
        finally:
            args.target.close()
        yield f"copied {copied:,} entries and {claims:,} claims to the ledger at --to"
    elif args.command in ("runs", "report"):
        yield from _history(ledger, args)
    else:
        removed = ledger.forget(args.stream, args.site)
        yield f"forgot {removed:,} records of stream {shown(args.stream)!r}"


def _history(ledger: Ledger, args: argparse.Namespace) -> Iterator[str]:
    if ledger.version < HISTORY_VERSION:
        yield "(no run history yet: this ledger was written by an older target-convio)"
        return
    runs = latest_runs(ledger, args.last)
    if args.command == "report":
        Path(args.output).write_text(
            render_report(runs, dt.datetime.now(dt.timezone.utc), args.stale_hours),
            encoding="utf-8",
        )
        yield f"wrote {args.output} ({len(runs)} runs)"
    elif args.format == "json":
        yield json.dumps([run.as_dict() for run in runs], ensure_ascii=False, indent=1)
    else:
        yield from runs_table(runs)


def runs_table(runs: list[Run]) -> Iterator[str]:
    """The latest runs, newest first, as `target-convio-ledger runs` prints them."""
    outcomes = [o.value for o in Outcome]
    yield (
        f"{'started (UTC)':<16}  {'ended':<13} {'seconds':>8} {'records':>8} "
        + " ".join(f"{o:>9}" for o in outcomes)
        + f" {'calls':>7}  stream(s)"
    )
    for run in runs:
        seconds = f"{run.seconds:,.1f}" if run.seconds is not None else "-"
        yield (
            f"{run.started_at:%Y-%m-%d %H:%M}  {run.ended:<13} {seconds:>8} {run.records:>8,} "
            + " ".join(f"{run.counts.get(o, 0):>9,}" for o in outcomes)
            + f" {sum(run.calls.values()):>7,}  {shown(', '.join(run.streams))}"
        )
    if not runs:
        yield "(no run yet)"


def _positive(text: str) -> int:
    number = int(text)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def shown(text: str) -> str:
    """A name or message as printed: control characters (a terminal's escapes) escaped."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


if __name__ == "__main__":
    sys.exit(main())
