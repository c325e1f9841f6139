"""Small inline SVG charts: stacked bars over runs, readable without a script.

Each bar segment is a `<rect>` carrying `data-column`, `data-key` and `data-value`, and a
`<title>` a browser shows on hover; every text is escaped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 12, 36
PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)


def stacked_bars(
    columns: Sequence[str],
    values: Sequence[Mapping[str, float]],
    keys: Sequence[str],
    *,
    colors: Mapping[str, str] | None = None,
    title: str,
    unit: str = "",
) -> str:
    """One bar per column (a run), stacked by `keys` in order, with a legend below."""
    colors = colors or {key: PALETTE[i % len(PALETTE)] for i, key in enumerate(keys)}
    top = max([sum(v.get(key, 0) for key in keys) for v in values] + [0])
    scale = _scale(top)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(1, len(columns))
    bar = max(1.0, step * 0.8)
    parts = [_open(title), *_axis(scale, plot_h, unit)]
    for index, (column, counts) in enumerate(zip(columns, values, strict=True)):
        x = LEFT + index * step + (step - bar) / 2
        y = float(TOP + plot_h)
        for key in keys:
            value = counts.get(key, 0)
            if not value:
                continue
            height = plot_h * value / scale
            y -= height
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{height:.1f}" '
                f'fill="{colors.get(key, "#999")}" data-column="{escape(column)}" '
                f'data-key="{escape(key)}" data-value="{value:g}">'
                f"<title>{escape(column)}: {escape(key)} {value:,g}{escape(unit)}</title></rect>"
            )
    if columns:
        parts.append(_label(LEFT, HEIGHT - BOTTOM + 14, columns[0], "start"))
        parts.append(_label(WIDTH - RIGHT, HEIGHT - BOTTOM + 14, columns[-1], "end"))
    parts.append(_legend(keys, colors))
    parts.append("</svg>")
    return "".join(parts)


def bars(
    columns: Sequence[str], values: Sequence[float], *, title: str, unit: str = "", color: str
) -> str:
    """One plain bar per column."""
    return stacked_bars(
        columns,
        [{title: value} for value in values],
        [title],
        colors={title: color},
        title=title,
        unit=unit,
    )


def _scale(top: float) -> float:
    """A round number at or above `top`, so the axis reads well."""
    if top <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(top))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= top:
            return float(step * magnitude)
    return float(10 * magnitude)


def _open(title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT + 24}" '
        f'width="{WIDTH}" height="{HEIGHT + 24}" role="img" aria-label="{escape(title)}" '
        'font-family="sans-serif" font-size="11">'
        f"<title>{escape(title)}</title>"
    )


def _axis(scale: float, plot_h: float, unit: str) -> list[str]:
    parts = []
    for fraction in (0, 0.5, 1):
        y = TOP + plot_h * (1 - fraction)
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
        )
        parts.append(_label(LEFT - 4, y + 4, f"{scale * fraction:,g}{unit}", "end"))
    return parts


def _legend(keys: Sequence[str], colors: Mapping[str, str]) -> str:
    parts, x = [], LEFT
    y = HEIGHT + 12
    for key in keys:
        parts.append(f'<rect x="{x}" y="{y - 9}" width="10" height="10" fill="{colors[key]}"/>')
        parts.append(_label(x + 14, y, key, "start"))
        x += 24 + 7 * len(key)
    return "".join(parts)


def _label(x: float, y: float, text: str, anchor: str) -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}">{escape(text)}</text>'
