"""`target-convio-ledger report`: one self-contained HTML page of the latest runs.

Charts are inline SVG (charts.py) and the style is inline: the page needs no script and no
network, so it can be mailed or published as it is.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from html import escape

from target_convio.charts import bars, stacked_bars
from target_convio.history import Run
from target_convio.outcomes import Outcome

OUTCOME_COLORS = {
    "created": "#59a14f",
    "updated": "#4e79a7",
    "unchanged": "#bab0ac",
    "invalid": "#f28e2b",
    "rejected": "#e15759",
    "failed": "#9c1d26",
    "skipped": "#b07aa1",
}
MOST = 8  # codes and fields shown by name in a chart; the rest are "other"
STYLE = """
body{font-family:sans-serif;margin:2em auto;max-width:760px;color:#222}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:2em}
.fresh,.stale{padding:.6em 1em;border-radius:4px}
.fresh{background:#e8f4e8}.stale{background:#fbe3e4;color:#9c1d26;font-weight:bold}
table{border-collapse:collapse;font-size:.85em}td,th{padding:2px 8px;text-align:right}
td:first-child,th:first-child{text-align:left;white-space:normal}td,th{white-space:nowrap}
tr:nth-child(even){background:#f5f5f5}
"""


def render_report(runs: Sequence[Run], now: dt.datetime, stale_hours: float) -> str:
    """The page for `runs` (newest first), as of `now`."""
    ordered = list(reversed(runs))  # oldest first, left to right
    columns = [f"{run.started_at:%Y-%m-%d %H:%M}" for run in ordered]
    sites = sorted({run.site for run in runs})
    sections = [
        f"<h1>target-convio: {len(runs)} latest run(s)</h1>",
        f"<p>{escape(', '.join(sites) or 'no site yet')}</p>",
        _freshness(runs, now, stale_hours),
    ]
    if runs:
        sections += [
            "<h2>Outcomes per run</h2>",
            stacked_bars(
                columns,
                [run.counts for run in ordered],
                [o.value for o in Outcome],
                colors=OUTCOME_COLORS,
                title="records by outcome",
            ),
            "<h2>Refusals by Convio code</h2>",
            _by_most(columns, [run.by_code for run in ordered], "refused records by code"),
            "<h2>Refusals by field</h2>",
            _by_most(columns, [run.by_field for run in ordered], "refused records by field"),
            "<h2>The commonest refusals</h2>",
            _reasons(ordered),
            "<h2>Replay queue</h2>",
            bars(
                columns,
                [run.replay_queue or 0 for run in ordered],
                title="records waiting to be replayed",
                color="#9c1d26",
            ),
            "<h2>Calls and duration</h2>",
            bars(
                columns,
                [sum(run.calls.values()) for run in ordered],
                title="API calls",
                color="#4e79a7",
            ),
            bars(
                columns,
                [round(run.seconds or 0, 1) for run in ordered],
                title="seconds",
                unit=" s",
                color="#76b7b2",
            ),
            "<h2>Runs</h2>",
            _runs_table(runs),
        ]
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>target-convio runs</title><style>{STYLE}</style></head><body>"
        + "\n".join(sections)
        + f"<p><small>Made {now:%Y-%m-%d %H:%M} UTC by target-convio-ledger report.</small></p>"
        + "</body></html>\n"
    )


def _freshness(runs: Sequence[Run], now: dt.datetime, stale_hours: float) -> str:
    complete = [run for run in runs if run.ended == "finished" and run.ended_at is not None]
    if not complete:
        return '<p class="stale">No run has finished yet.</p>'
    last = max(run.ended_at for run in complete if run.ended_at is not None)
    hours = (now - last).total_seconds() / 3600
    state = "stale" if hours > stale_hours else "fresh"
    return (
        f'<p class="{state}" data-hours="{hours:.1f}">The last complete run ended '
        f"{_ago(hours)} ({last:%Y-%m-%d %H:%M} UTC)"
        + (f": more than {stale_hours:g} hours ago." if state == "stale" else ".")
        + "</p>"
    )


def _ago(hours: float) -> str:
    if hours < 1:
        return f"{round(hours * 60)} minutes ago"
    if hours < 48:
        return f"{hours:.1f} hours ago"
    return f"{hours / 24:.1f} days ago"


def _by_most(columns: list[str], counts: list[dict[str, int]], title: str) -> str:
    """Stacked by the MOST commonest keys over every run; the rest summed as "other"."""
    total: Counter[str] = Counter()
    for each in counts:
        total.update(each)
    named = [key for key, _ in total.most_common(MOST)]
    folded = []
    for each in counts:
        kept = {key: value for key, value in each.items() if key in named}
        other = sum(value for key, value in each.items() if key not in named)
        folded.append({**kept, **({"other": other} if other else {})})
    keys = named + (["other"] if len(total) > MOST else [])
    return stacked_bars(columns, folded, keys, title=title)


def _reasons(ordered: list[Run]) -> str:
    total: Counter[str] = Counter()
    last_seen: dict[str, str] = {}
    for run in ordered:
        total.update(run.reasons)
        for reason in run.reasons:
            last_seen[reason] = f"{run.started_at:%Y-%m-%d}"
    if not total:
        return "<p>No refusal in these runs.</p>"
    rows = "".join(
        f"<tr><td>{escape(reason)}</td><td>{count:,}</td><td>{last_seen[reason]}</td></tr>"
        for reason, count in total.most_common(10)
    )
    return f"<table><tr><th>reason</th><th>records</th><th>last seen</th></tr>{rows}</table>"


def _runs_table(runs: Sequence[Run]) -> str:
    outcomes = [o.value for o in Outcome]
    head = "".join(f"<th>{name}</th>" for name in ["started (UTC)", "ended", "seconds", *outcomes])
    rows = []
    for run in runs:
        seconds = f"{run.seconds:,.1f}" if run.seconds is not None else "-"
        cells = "".join(f"<td>{run.counts.get(o, 0):,}</td>" for o in outcomes)
        rows.append(
            f"<tr><td>{run.started_at:%Y-%m-%d %H:%M}</td><td>{escape(run.ended)}</td>"
            f"<td>{seconds}</td>{cells}</tr>"
        )
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"
