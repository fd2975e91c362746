"""Response-time charts as inline SVG, drawn on the server: no charting framework to ship,
no script needed to read them (each bucket's values are in its ``<title>``, the hover text)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from markupsafe import Markup, escape

WIDTH, HEIGHT, PAD_L, PAD_R, PAD_B, PAD_T = 720, 200, 52, 8, 22, 16


def _nice_max(v: float) -> float:
    for step in (10, 20, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000, 20000, 60000):
        if v <= step:
            return float(step)
    return v


def _span_label(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    if hours < 1:
        return f"{span.total_seconds() / 60:.0f} min"
    return f"{hours:.0f} h" if hours < 48 else f"{hours / 24:.0f} days"


def _clock(at: datetime, span: timedelta) -> str:
    fmt = "%H:%M" if span <= timedelta(days=1) else "%d %b %H:%M"
    return at.astimezone(UTC).strftime(fmt + " UTC")


def response_chart(
    points: list[dict[str, Any]],
    end: datetime,
    span: timedelta,
    p50: float | None = None,
    p95: float | None = None,
) -> Markup:
    """``points``: buckets with ``at``, ``avg_ms``/``max_ms`` (successful results only),
    ``failed`` and ``n`` (from queries.series).

    The line joins the averages of successful checks; a bucket with failures is a red band
    (a refused connection has no response time worth drawing); dashed lines mark p50 and
    p95 over the window. Each bucket has a hover zone with its figures.
    """
    w, h = WIDTH - PAD_L - PAD_R, HEIGHT - PAD_B - PAD_T
    start = end - span
    top = _nice_max(max((p["max_ms"] or 0 for p in points), default=0) or 10)
    step = w / max(1, len(points)) if points else w
    bucket = min(step, w / 60)

    def x(at: datetime) -> float:
        return PAD_L + max(0.0, min(1.0, (at - start) / span)) * w

    def y(ms: float) -> float:
        return PAD_T + h - min(ms / top, 1.0) * h

    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'xmlns="http://www.w3.org/2000/svg" aria-label="Response time over the last '
        f'{escape(_span_label(span))}">',
    ]
    for frac in (0, 0.5, 1):
        yy = y(top * frac)
        parts.append(
            f'<line class="gridline" x1="{PAD_L}" x2="{WIDTH - PAD_R}" y1="{yy:.1f}" '
            f'y2="{yy:.1f}"/><text class="axis" x="{PAD_L - 4}" y="{yy + 4:.1f}" '
            f'text-anchor="end">{top * frac:.0f} ms</text>'
        )
    parts.append(
        f'<text class="axis" x="{PAD_L}" y="{HEIGHT - 6}" text-anchor="start">'
        f"{escape(_clock(start, span))}</text>"
        f'<text class="axis" x="{WIDTH - PAD_R}" y="{HEIGHT - 6}" text-anchor="end">now</text>'
    )
    for p in points:
        if p["failed"]:
            parts.append(
                f'<rect class="fail" x="{x(p["at"]):.1f}" y="{PAD_T}" '
                f'width="{max(bucket, 2):.1f}" height="{h}"/>'
            )
    for name, value in (("p50", p50), ("p95", p95)):
        if value is not None:
            yy = y(value)
            parts.append(
                f'<line class="{name}" x1="{PAD_L}" x2="{WIDTH - PAD_R}" y1="{yy:.1f}" '
                f'y2="{yy:.1f}"><title>{name} {value:.0f} ms</title></line>'
            )
    line = [f"{x(p['at']):.1f},{y(p['avg_ms']):.1f}" for p in points if p["avg_ms"] is not None]
    if len(line) == 1:
        parts.append(
            f'<circle class="dot" cx="{line[0].split(",")[0]}" '
            f'cy="{line[0].split(",")[1]}" r="2.5"/>'
        )
    elif line:
        parts.append(f'<polyline class="line" points="{" ".join(line)}"/>')
    for p in points:
        figures = [_clock(p["at"], span)]
        if p["avg_ms"] is not None:
            figures.append(f"avg {p['avg_ms']:.0f} ms, max {p['max_ms']:.0f} ms")
        figures.append(f"{p['n'] - p['failed']} ok, {p['failed']} failed")
        parts.append(
            f'<rect class="hit" x="{x(p["at"]):.1f}" y="{PAD_T}" width="{max(bucket, 2):.1f}" '
            f'height="{h}"><title>{escape(" · ".join(figures))}</title></rect>'
        )
    if not points:
        parts.append(
            f'<text class="axis" x="{WIDTH / 2}" y="{HEIGHT / 2}" '
            'text-anchor="middle">no result in this period</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


#: One letter per severity in a heartbeat strip's markup (the stylesheet colours them).
BEAT_CLASS = {"ok": "o", "warning": "w", "critical": "c", "unknown": "u", "pending": "p"}


def heartbeat_strip(beats: list[dict[str, Any]]) -> Markup:
    """A task's last results, oldest first, as one small element each: ``<i class=c>``.

    A dashboard shows 100 strips of 30 results, so each result costs a few bytes: its hover
    text (time, status, response time) is spelled out by the page script from ``data-beats``
    (seconds after the first result, milliseconds, and for a failure its HTTP status and
    ``f`` or ``e``) only when the
    pointer is on it. Built here rather than in Jinja: 3,000 template loops per refresh
    would cost more than the queries.
    """
    if not beats:
        return Markup('<span class="beats empty">no result yet</span>')
    t0 = beats[0]["checked_at"].timestamp()
    cells, data = [], []
    ok = 0
    for b in beats:
        cells.append(f"<i class={BEAT_CLASS.get(b['severity'], 'p')}></i>")
        ms = "" if b["response_ms"] is None else f"{b['response_ms']:.0f}"
        item = f"{b['checked_at'].timestamp() - t0:.0f},{ms}"
        if b["status"] != "success":  # the usual case stays short: "300,119"
            item += f",{b['http_status'] or ''},{b['status'][0]}"
        data.append(item)
        ok += b["status"] == "success"
    return Markup(
        f'<span class="beats" role="img" aria-label="last {len(beats)} results: {ok} succeeded" '
        f'data-t0="{t0:.0f}" data-beats="{" ".join(data)}">{"".join(cells)}</span>'
    )


def sparkline(beats: list[dict[str, Any]], width: int = 90, height: int = 22) -> Markup:
    """Response times of a task's recent results; failures are red ticks at the bottom."""
    if not beats:
        return Markup("")
    times = [b["response_ms"] for b in beats if b["status"] == "success" and b["response_ms"]]
    top = max(times, default=0) or 1.0
    n = len(beats)

    def x(i: int) -> float:
        return 1 + (width - 2) * (i / (n - 1) if n > 1 else 0.5)

    points = [
        f"{x(i):.0f},{height - 2 - (b['response_ms'] / top) * (height - 5):.0f}"
        for i, b in enumerate(beats)
        if b["status"] == "success" and b["response_ms"] is not None
    ]
    parts = [
        f'<svg class="spark" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="response time, last {n} results, up to {top:.0f} ms">'
    ]
    if len(points) > 1:
        parts.append(f'<polyline points="{" ".join(points)}"/>')
    for i, b in enumerate(beats):
        if b["status"] != "success":
            parts.append(
                f'<rect class="fail" x="{x(i) - 1:.0f}" y="{height - 3}" width="2" height="3"/>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def favicon_svg(critical: int = 0) -> str:
    """Tocsin's bell; with a red disc and the number when tasks are critical."""
    bell = (
        '<path fill="#0969da" d="M16 3a2 2 0 0 1 2 2v1.2c4 .9 6.5 4.3 6.5 8.8v6l2.5 3v1.5H5V24'
        'l2.5-3v-6c0-4.5 2.5-7.9 6.5-8.8V5a2 2 0 0 1 2-2z"/>'
        '<circle fill="#0969da" cx="16" cy="28" r="3"/>'
    )
    badge = ""
    if critical:
        badge = (
            '<circle cx="23" cy="9" r="9" fill="#cf222e"/><text x="23" y="13.5" '
            'font-family="sans-serif" font-size="12" font-weight="700" fill="#fff" '
            f'text-anchor="middle">{min(critical, 99)}</text>'
        )
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">'
        f"<title>Tocsin</title>{bell}{badge}</svg>"
    )


SPANS = {
    "1h": timedelta(hours=1),
    "24h": timedelta(days=1),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
