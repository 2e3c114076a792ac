"""Charts as inline SVG, drawn on the server: nothing is fetched when a page is viewed (many
installs are air-gapped), and the figures stay readable without JavaScript.

    bars(title, labels, series, ...)     bars per label, stacked or side by side, an optional limit line
    lines(title, labels, series, ...)    lines with a dot per value (gaps where a value is None)
    share(title, parts)                  one horizontal bar split into parts (a whole and its shares)

Every chart is an ``<svg role="img">`` with a ``<title>`` and a ``<desc>`` for screen readers,
and every bar and dot carries its own ``<title>`` (the figure on hover). Pages still print the
numbers as text beside each chart: a chart is a picture of the table, not its replacement.
All text is escaped here, so the result is safe to insert as Markup.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Callable, Sequence

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 52, 12, 12, 28  # room for the y labels on the left, the x labels below
MAX_X_LABELS = 10
_ids = itertools.count(1)


@dataclass(frozen=True)
class Series:
    """One named row of values, one per label; None where there is no value."""

    name: str
    values: tuple[float | None, ...]
    color: str  # a CSS colour, e.g. "#1f7a3f"
    dashed: bool = False  # drawn dashed (a line), so that a line under it still shows


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2 or 5 × 10^k at or above ``value`` (1 for nothing to show)."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power + 1e-12:
            return step * power
    return 10 * power  # pragma: no cover - the loop always returns


# tops for a seconds axis whose quarters read as round durations (5s, 15s, 1m, 2m, 15m, 1h ...)
DURATION_TOPS = (20, 60, 120, 240, 480, 600, 1200, 2400, 3600, 7200, 14400, 28800, 86400, 172800, 604800)


def integer_ceiling(value: float) -> float:
    """A top for counts: a multiple of 4, so that the four gridlines fall on whole numbers."""
    return float(max(4, math.ceil(value / 4) * 4)) if value > 4 else 4.0


def _plain(value: float) -> str:
    return f"{value:g}"


def _open(title: str, desc: str) -> tuple[str, list[str]]:
    n = next(_ids)
    head = [f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" '
            f'preserveAspectRatio="xMinYMin meet" aria-labelledby="chart{n}-t chart{n}-d" '
            'xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif" font-size="11">',
            f'<title id="chart{n}-t">{escape(title)}</title><desc id="chart{n}-d">{escape(desc)}</desc>']
    return f"chart{n}", head


def _axes(parts: list[str], labels: Sequence[str], top: float, fmt: Callable[[float], str]) -> None:
    """Gridlines with y labels at quarters of ``top``, and at most MAX_X_LABELS x labels."""
    inner_h = HEIGHT - TOP - BOTTOM
    for i in range(5):
        y = TOP + inner_h * (1 - i / 4)
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#dfe3ea"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#5d6878">'
                     f'{escape(fmt(top * i / 4))}</text>')
    step = max(1, math.ceil(len(labels) / MAX_X_LABELS))
    slot = (WIDTH - LEFT - RIGHT) / max(1, len(labels))
    for i in range(0, len(labels), step):
        x = LEFT + slot * (i + 0.5)
        parts.append(f'<text x="{x:.1f}" y="{HEIGHT - 8}" text-anchor="middle" fill="#5d6878">'
                     f'{escape(labels[i])}</text>')


def _y(value: float, top: float) -> float:
    return TOP + (HEIGHT - TOP - BOTTOM) * (1 - value / top)


def bars(title: str, labels: Sequence[str], series: Sequence[Series], *, stacked: bool = True,
         fmt: Callable[[float], str] = _plain, limit: float | None = None, limit_label: str = "",
         desc: str = "", counts: bool = False) -> Markup:
    """Bars per label: the series stacked (or side by side); a dashed line at ``limit``;
    ``counts`` puts the gridlines on whole numbers."""
    _, parts = _open(title, desc or title)
    totals = [sum(s.values[i] or 0 for s in series) if stacked else max([s.values[i] or 0 for s in series] or [0])
              for i in range(len(labels))]
    highest = max(totals + [limit or 0])
    top = integer_ceiling(highest) if counts else nice_ceiling(highest)
    _axes(parts, labels, top, fmt)
    slot = (WIDTH - LEFT - RIGHT) / max(1, len(labels))
    width = slot * 0.72 / (1 if stacked else max(1, len(series)))
    for i, label in enumerate(labels):
        base = 0.0
        for k, s in enumerate(series):
            value = s.values[i]
            if not value:
                continue
            x = LEFT + slot * i + slot * 0.14 + (0 if stacked else k * width)
            y0, y1 = _y(base + value if stacked else value, top), _y(base if stacked else 0, top)
            parts.append(f'<rect x="{x:.1f}" y="{y0:.1f}" width="{width:.1f}" height="{max(0.5, y1 - y0):.1f}" '
                         f'fill="{escape(s.color)}"><title>{escape(label)} · {escape(s.name)}: '
                         f'{escape(fmt(value))}</title></rect>')
            base += value if stacked else 0
    if limit is not None:
        y = _y(limit, top)
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#b42318" '
                     f'stroke-dasharray="6 4"><title>{escape(limit_label)}</title></line>')
        parts.append(f'<text x="{WIDTH - RIGHT}" y="{y - 4:.1f}" text-anchor="end" fill="#b42318">'
                     f'{escape(limit_label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def lines(title: str, labels: Sequence[str], series: Sequence[Series], *, fmt: Callable[[float], str] = _plain,
          desc: str = "", tops: Sequence[float] = ()) -> Markup:
    """A line per series through its values, broken where a value is None; a dot on each value.
    ``tops``: the axis tops to choose from (the first at or above the highest value), e.g. DURATION_TOPS."""
    _, parts = _open(title, desc or title)
    present = [v for s in series for v in s.values if v is not None]
    highest = max(present or [0])
    top = next((t for t in tops if t >= highest), None) or nice_ceiling(highest)
    _axes(parts, labels, top, fmt)
    slot = (WIDTH - LEFT - RIGHT) / max(1, len(labels))
    for s in series:
        points = [(LEFT + slot * (i + 0.5), _y(v, top), labels[i], v) for i, v in enumerate(s.values) if v is not None]
        runs, current = [], []
        for i, v in enumerate(s.values):
            if v is None:
                runs, current = (runs + [current] if current else runs), []
                continue
            current.append((LEFT + slot * (i + 0.5), _y(v, top)))
        if current:
            runs.append(current)
        for run in runs:
            if len(run) > 1:
                path = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
                dash = ' stroke-dasharray="5 3"' if s.dashed else ""
                parts.append(f'<polyline points="{path}" fill="none" stroke="{escape(s.color)}" '
                             f'stroke-width="2"{dash}/>')
        for x, y, label, v in points:
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{escape(s.color)}"><title>{escape(label)} · '
                         f'{escape(s.name)}: {escape(fmt(v))}</title></circle>')
    parts.append("</svg>")
    return Markup("".join(parts))


def share(title: str, parts_: Sequence[tuple[str, float, str]], *, desc: str = "") -> Markup:
    """One horizontal bar split into (name, value, colour) parts, each labelled with its value."""
    n = next(_ids)
    height = 36
    total = sum(v for _, v, _ in parts_)
    out = [f'<svg class="chart share" role="img" viewBox="0 0 {WIDTH} {height}" width="100%" '
           f'aria-labelledby="share{n}-t share{n}-d" xmlns="http://www.w3.org/2000/svg" '
           'font-family="system-ui, sans-serif" font-size="12">',
           f'<title id="share{n}-t">{escape(title)}</title><desc id="share{n}-d">{escape(desc or title)}</desc>']
    if not total:
        out.append(f'<rect x="0" y="4" width="{WIDTH}" height="26" fill="#eef0f3"/>'
                   f'<text x="{WIDTH / 2}" y="21" text-anchor="middle" fill="#5d6878">none</text>')
    x = 0.0
    for name, value, color in parts_:
        if not value:
            continue
        w = WIDTH * value / total
        out.append(f'<rect x="{x:.1f}" y="4" width="{w:.1f}" height="26" fill="{escape(color)}">'
                   f'<title>{escape(name)}: {escape(_plain(value))} of {escape(_plain(total))}</title></rect>')
        if w > 60:
            out.append(f'<text x="{x + w / 2:.1f}" y="21" text-anchor="middle" fill="#fff">'
                       f'{escape(name)} {escape(_plain(value))}</text>')
        x += w
    out.append("</svg>")
    return Markup("".join(out))
