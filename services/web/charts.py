"""Response-time chart as inline SVG, drawn on the server: no charting framework to ship."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from markupsafe import Markup, escape

WIDTH, HEIGHT, PAD_L, PAD_B, PAD_T = 720, 180, 48, 22, 8


def _nice_max(v: float) -> float:
    for step in (10, 20, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000, 20000, 60000):
        if v <= step:
            return float(step)
    return v


def response_chart(points: list[dict[str, Any]], end: datetime, span: timedelta) -> Markup:
    """``points``: rows with ``at``, ``avg_ms``, ``max_ms``, ``failed`` (from queries.series).

    Averages form the line; buckets with failures get a red mark on the time axis.
    """
    w, h = WIDTH - PAD_L, HEIGHT - PAD_B - PAD_T
    start = end - span
    top = _nice_max(max((p["avg_ms"] or 0 for p in points), default=0) or 10)

    def x(at: datetime) -> float:
        return PAD_L + max(0.0, min(1.0, (at - start) / span)) * w

    def y(ms: float) -> float:
        return PAD_T + h - min(ms / top, 1.0) * h

    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'xmlns="http://www.w3.org/2000/svg" aria-label="response time">',
        "<title>Response time (ms)</title>",
    ]
    for frac in (0, 0.5, 1):
        yy = y(top * frac)
        parts.append(
            f'<line class="grid" x1="{PAD_L}" x2="{WIDTH}" y1="{yy:.1f}" '
            f'y2="{yy:.1f}"/><text class="axis" x="{PAD_L - 4}" y="{yy + 4:.1f}" '
            f'text-anchor="end">{top * frac:.0f} ms</text>'
        )
    for label, at in (("-" + _span_label(span), start), ("now", end)):
        anchor = "start" if at == start else "end"
        parts.append(
            f'<text class="axis" x="{x(at):.1f}" y="{HEIGHT - 6}" '
            f'text-anchor="{anchor}">{escape(label)}</text>'
        )
    line = [f"{x(p['at']):.1f},{y(p['avg_ms']):.1f}" for p in points if p["avg_ms"] is not None]
    if line:
        parts.append(f'<polyline class="line" fill="none" points="{" ".join(line)}"/>')
    for p in points:
        if p["failed"]:
            parts.append(
                f'<rect class="fail" x="{x(p["at"]) - 1:.1f}" y="{PAD_T + h:.1f}" '
                f'width="3" height="5"><title>{p["failed"]} failed</title></rect>'
            )
    if not points:
        parts.append(
            f'<text class="axis" x="{WIDTH / 2}" y="{HEIGHT / 2}" '
            'text-anchor="middle">no result in this period</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _span_label(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    return f"{hours:.0f}h" if hours < 48 else f"{hours / 24:.0f}d"


SPANS = {
    "1h": timedelta(hours=1),
    "24h": timedelta(days=1),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
