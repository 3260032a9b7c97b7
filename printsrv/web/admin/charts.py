"""Charts as plain SVG, drawn on the server: no script, no library, nothing to download.

Each chart is an `<svg role="img">` with a `<title>` and a `<desc>` that says what it shows
in words (the largest value and where), and the page puts the same figures in a table
beside it, so a screen reader or a text browser loses nothing. Colours come as SVG
attributes, not styles, so the pages' Content-Security-Policy (no inline style) holds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal

from markupsafe import Markup, escape

__all__ = ["bar_chart", "hbar_chart", "level_meter"]

Number = int | Decimal
INK = "#1d2430"
GRID = "#d9dee6"
MUTED = "#4f5a6a"


def _nice_top(value: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten at or above `value` (an axis's top)."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1) if value >= 1 else 1.0
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return float(step * magnitude)
    return float(10 * magnitude)


def _describe(labels: Sequence[str], values: Sequence[Number], fmt: Callable[[Number], str]) -> str:
    if not values or max(values) <= 0:
        return "All values are zero."
    top = max(range(len(values)), key=lambda n: values[n])
    total = sum(values, Decimal(0)) if isinstance(values[0], Decimal) else sum(values)
    return (
        f"{len(values)} values, {fmt(total)} in total; "
        f"the largest is {fmt(values[top])} ({labels[top]})."
    )


def bar_chart(
    chart_id: str,
    title: str,
    labels: Sequence[str],
    values: Sequence[Number],
    *,
    fmt: Callable[[Number], str] = str,
    color: str = "#1f5fbf",
    tick_every: int = 7,
    width: int = 420,
    height: int = 190,
) -> Markup:
    """Vertical bars, one per label (days, say), with a labelled y axis (0, half, top) and
    every `tick_every`-th label under the x axis. `chart_id` must be unique on the page."""
    left, right, top, bottom = 48, 8, 10, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = _nice_top(float(max(values, default=0)))
    slot = plot_w / max(len(values), 1)
    bar_w = max(slot * 0.72, 1.0)
    parts = [
        f'<svg id="{escape(chart_id)}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="{escape(chart_id)}-title {escape(chart_id)}-desc" '
        f'xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif" font-size="12">',
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
        f'<desc id="{escape(chart_id)}-desc">{escape(_describe(labels, values, fmt))}</desc>',
    ]
    is_money = bool(values) and isinstance(values[0], Decimal)
    for fraction in (0.0, 0.5, 1.0):
        y = top + plot_h - plot_h * fraction
        tick = peak * fraction
        shown = fmt(Decimal(str(tick)).quantize(Decimal("0.01")) if is_money else int(tick))
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="{GRID}"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="{MUTED}">'
            f"{escape(shown)}</text>"
        )
    for n, (label, value) in enumerate(zip(labels, values, strict=True)):
        h = plot_h * float(value) / peak if peak else 0.0
        x = left + n * slot + (slot - bar_w) / 2
        parts.append(
            f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w:.1f}" '
            f'height="{h:.1f}" fill="{escape(color)}">'
            f"<title>{escape(label)}: {escape(fmt(value))}</title></rect>"
        )
        last = len(values) - 1
        if n % tick_every == 0 or (n == last and last % tick_every > tick_every // 2):
            parts.append(
                f'<text x="{left + n * slot + slot / 2:.1f}" y="{height - 8}" '
                f'text-anchor="middle" fill="{MUTED}">{escape(label)}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every text in it went through escape)


def hbar_chart(
    chart_id: str,
    title: str,
    items: Sequence[tuple[str, Number]],
    *,
    fmt: Callable[[Number], str] = str,
    color: str = "#1f5fbf",
    width: int = 420,
    row: int = 28,
) -> Markup:
    """Horizontal bars, one row per (label, value), largest first as given, the value
    written at the end of each bar."""
    label_w, value_w = 130, 64
    height = max(len(items), 1) * row + 8
    peak = max((float(v) for _, v in items), default=0.0) or 1.0
    plot_w = width - label_w - value_w
    labels = [label for label, _ in items]
    values = [value for _, value in items]
    parts = [
        f'<svg id="{escape(chart_id)}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="{escape(chart_id)}-title {escape(chart_id)}-desc" '
        f'xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif" font-size="13">',
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
        f'<desc id="{escape(chart_id)}-desc">{escape(_describe(labels, values, fmt))}</desc>',
    ]
    for n, (label, value) in enumerate(items):
        y = 4 + n * row
        w = plot_w * float(value) / peak
        short = label if len(label) <= 20 else label[:19] + "…"
        parts.append(
            f'<text x="{label_w - 8}" y="{y + row / 2 + 4:.1f}" text-anchor="end" '
            f'fill="{INK}">{escape(short)}</text>'
            f'<rect x="{label_w}" y="{y + 4}" width="{w:.1f}" height="{row - 8}" '
            f'fill="{escape(color)}"><title>{escape(label)}: {escape(fmt(value))}</title></rect>'
            f'<text x="{label_w + w + 6:.1f}" y="{y + row / 2 + 4:.1f}" fill="{INK}">'
            f"{escape(fmt(value))}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every text in it went through escape)


def level_meter(level: int, color: str, *, low: bool, label: str) -> Markup:
    """A supply's level as a small bar (0-100 %); an unknown level (negative) as a hatched
    empty bar. A low level gets a red outline besides the page's 'low' text."""
    width, height = 120, 14
    fill = width * max(min(level, 100), 0) / 100
    outline = "#8a1c1c" if low else "#8b95a5"
    return Markup(  # noqa: S704 (every text in it went through escape)
        f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
        f'<rect x="0.5" y="0.5" width="{width - 1}" height="{height - 1}" rx="3" '
        f'fill="#ffffff" stroke="{outline}" stroke-width="{2 if low else 1}"/>'
        f'<rect x="1" y="1" width="{max(fill - 2, 0):.1f}" height="{height - 2}" rx="2" '
        f'fill="{escape(color)}" stroke="#4f5a6a" stroke-width="0.5"/>'
        "</svg>"
    )
