"""PURE: server-side SVG charts for the dashboards (no Django, no JavaScript, no CDN).

Every chart is one `<svg>` string with a `<title>` (the chart's name, read by screen readers),
axis labels, and one `<title>` per mark so that hovering a bar shows its exact numbers. Marks
also carry `data-*` attributes with the unrounded figures, so tests (and curious users) can
read the values back from the markup. All text is XML-escaped here; callers pass plain strings.

Charts: `bar_chart` (vertical bars), `interval_chart` (sorted horizontal estimates with
confidence intervals, threshold lines and a share column), `line_chart` (trends),
`heatmap` (matrix of values, weak cells marked), `spread_chart` (per-emotion spread of ratings
of one image, with a model's score).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

# A calm palette (works on white and in print).
INK = "#1d2330"
MUTED = "#5b6475"
GRID = "#e3e6ec"
AXIS = "#9aa3b2"
BLUE = "#3b6fd4"
BLUE_LIGHT = "#a9c0ee"
ORANGE = "#d9822b"
GREEN = "#2e8b57"
RED = "#b3261e"
SERIES_COLORS = ("#3b6fd4", "#d9822b", "#2e8b57", "#8e44ad", "#b3261e", "#16a2b8", "#7f8c8d", "#c0a000")
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"
CHAR_WIDTH = 0.58  # average glyph width as a share of the font size (for laying out labels)

# Krippendorff (2004): alpha >= 0.8 reliable, >= 0.667 tentative conclusions; 0 = chance.
ALPHA_THRESHOLDS: tuple[tuple[float, str], ...] = ((0.0, "0 chance"), (0.667, "0.667 tentative"),
                                                   (0.8, "0.8 reliable"))


def fmt(x: float | None, digits: int = 3) -> str:
    """A number for people: fixed digits, '–' for a missing value."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    if float(x).is_integer():
        return f"{int(x):,}"
    return f"{x:.{digits}f}"


def _n(x: float) -> str:
    """A coordinate: two decimals, no trailing zeros."""
    s = f"{x:.2f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _data(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def _attrs(attrs: Mapping[str, object]) -> str:
    return "".join(f" {k.replace('_', '-')}={quoteattr(str(v))}" for k, v in attrs.items() if v is not None)


def _el(tag: str, attrs: Mapping[str, object], body: str = "") -> str:
    return f"<{tag}{_attrs(attrs)}>{body}</{tag}>" if body else f"<{tag}{_attrs(attrs)}/>"


def _text(x: float, y: float, s: str, *, size: float = 12, anchor: str = "start", fill: str = INK,
          cls: str | None = None, weight: str | None = None, rotate: float | None = None,
          baseline: str | None = None) -> str:
    attrs: dict[str, object] = {"x": _n(x), "y": _n(y), "font_size": _n(size), "text_anchor": anchor, "fill": fill}
    if cls:
        attrs["class"] = cls
    if weight:
        attrs["font_weight"] = weight
    if baseline:
        attrs["dominant_baseline"] = baseline
    if rotate is not None:
        attrs["transform"] = f"rotate({_n(rotate)} {_n(x)} {_n(y)})"
    return _el("text", attrs, escape(s))


def _title(s: str) -> str:
    return f"<title>{escape(s)}</title>"


def _slug(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-") or "chart"


def text_width(s: str, size: float) -> float:
    return len(s) * size * CHAR_WIDTH


def _svg(kind: str, width: float, height: float, title: str, body: list[str], *, chart_id: str | None,
         desc: str = "") -> str:
    cid = chart_id or _slug(title)
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-{kind}" id={quoteattr(cid)} '
            f'viewBox="0 0 {_n(width)} {_n(height)}" width="{_n(width)}" height="{_n(height)}" role="img" '
            f'aria-labelledby="{cid}-title" font-family={quoteattr(FONT)}>'
            f'<title id="{cid}-title">{escape(title)}</title>')
    if desc:
        head += f"<desc>{escape(desc)}</desc>"
    return head + "".join(body) + "</svg>"


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About `n` round tick values covering [lo, hi]."""
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks = []
    t = start
    while t <= hi + step * 1e-9:
        if t >= lo - step * 1e-9:
            ticks.append(round(t, 10))
        t += step
    return ticks


class _Scale:
    """Linear map from a data domain to a pixel range."""

    def __init__(self, lo: float, hi: float, px_lo: float, px_hi: float) -> None:
        self.lo, self.hi = lo, (hi if hi != lo else lo + 1)
        self.px_lo, self.px_hi = px_lo, px_hi

    def __call__(self, v: float) -> float:
        v = min(max(v, self.lo), self.hi)
        return self.px_lo + (v - self.lo) / (self.hi - self.lo) * (self.px_hi - self.px_lo)


# ---------------------------------------------------------------------------------------------
# Vertical bars


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    title: str = ""
    highlight: bool = False


def bar_chart(bars: Sequence[Bar], *, title: str, x_label: str, y_label: str, width: int = 640, height: int = 260,
              reference: float | None = None, reference_label: str = "", chart_id: str | None = None,
              max_x_labels: int = 16) -> str:
    """Vertical bars, one per category, in the given order. `reference` draws a dashed horizontal line."""
    left, right, top, bottom = 56.0, 16.0, 34.0, 52.0
    every = max(1, math.ceil(len(bars) / max_x_labels))
    slot = (width - left - right) / max(len(bars), 1)
    longest = max([text_width(b.label, 11) for b in bars] + [0.0])
    rotate = longest > slot * every - 4  # labels would touch: slant them
    if rotate:
        bottom += longest * 0.6
        height = int(height + longest * 0.6)
    plot_w, plot_h = width - left - right, height - top - bottom
    vmax = max([b.value for b in bars] + [reference or 0.0, 1e-9])
    ticks = nice_ticks(0.0, vmax, 4)
    y = _Scale(0.0, max(ticks[-1], vmax), top + plot_h, top)
    body = [_text(left, 20, title, size=14, weight="600", cls="chart-title")]
    for t in ticks:
        body.append(_el("line", {"x1": _n(left), "x2": _n(left + plot_w), "y1": _n(y(t)), "y2": _n(y(t)),
                                 "stroke": GRID}))
        body.append(_text(left - 6, y(t) + 4, fmt(t, 2 if t % 1 else 0), size=11, anchor="end", fill=MUTED))
    bar_w = max(min(slot * 0.72, 48.0), 1.0)
    body.append('<g class="bars">')
    for i, b in enumerate(bars):
        x = left + i * slot + (slot - bar_w) / 2
        y0 = y(b.value)
        tip = b.title or f"{b.label}: {fmt(b.value, 2)}"
        body.append(_el("rect", {"class": "bar", "x": _n(x), "y": _n(y0), "width": _n(bar_w),
                                 "height": _n(top + plot_h - y0), "fill": ORANGE if b.highlight else BLUE, "rx": "2",
                                 "data_label": b.label, "data_value": _data(b.value)}, _title(tip)))
        if i % every == 0:
            if rotate:
                body.append(_text(x + bar_w / 2 + 3, top + plot_h + 12, b.label, size=11, anchor="end", fill=MUTED,
                                  cls="tick-label", rotate=-35))
            else:
                body.append(_text(x + bar_w / 2, top + plot_h + 16, b.label, size=11, anchor="middle", fill=MUTED,
                                  cls="tick-label"))
    body.append("</g>")
    if reference is not None:
        ry = y(reference)
        body.append(_el("line", {"class": "reference", "x1": _n(left), "x2": _n(left + plot_w), "y1": _n(ry),
                                 "y2": _n(ry), "stroke": RED, "stroke_dasharray": "5 4", "data_value": _data(reference)},
                        _title(reference_label or fmt(reference))))
        if reference_label:
            body.append(_text(left + plot_w, ry - 5, reference_label, size=11, anchor="end", fill=RED))
    body.append(_el("line", {"x1": _n(left), "x2": _n(left + plot_w), "y1": _n(top + plot_h),
                             "y2": _n(top + plot_h), "stroke": AXIS}))
    body.append(_text(left + plot_w / 2, height - 8, x_label, size=12, anchor="middle", fill=MUTED, cls="axis-label"))
    body.append(_text(14, top + plot_h / 2, y_label, size=12, anchor="middle", fill=MUTED, cls="axis-label",
                      rotate=-90))
    if not bars:
        body.append(_text(left + plot_w / 2, top + plot_h / 2, "no data yet", size=13, anchor="middle", fill=MUTED))
    return _svg("bar", width, height, title, body, chart_id=chart_id)


# ---------------------------------------------------------------------------------------------
# Sorted estimates with intervals (per-emotion alpha)


@dataclass(frozen=True)
class IntervalRow:
    label: str
    value: float | None
    low: float | None = None
    high: float | None = None
    share: float | None = None  # drawn in a second column, 0..1
    note: str = ""  # shown in the hover text (a warning, a reason)
    key: str = ""  # a stable identifier for data-key (e.g. the taxonomy index)


def interval_chart(rows: Sequence[IntervalRow], *, title: str, x_label: str, y_label: str,
                   share_label: str = "non-zero share", thresholds: Sequence[tuple[float, str]] = ALPHA_THRESHOLDS,
                   domain: tuple[float, float] = (-0.2, 1.0), width: int = 760, row_height: int = 17,
                   chart_id: str | None = None, value_name: str = "alpha") -> str:
    """One row per item, sorted by value (highest first, missing values last): a bar from 0 to the
    value, the interval as a whisker, threshold lines across, and `share` as a small bar beside."""
    ordered = sorted(rows, key=lambda r: (r.value is None, -(r.value if r.value is not None else 0.0), r.label))
    lows = [v for r in ordered for v in (r.low, r.value) if v is not None]
    highs = [v for r in ordered for v in (r.high, r.value) if v is not None]
    lo = min([domain[0], *lows])
    hi = max([domain[1], *highs])
    lo = math.floor(lo * 10) / 10
    hi = math.ceil(hi * 10) / 10
    label_w = max([text_width(r.label, 11) for r in ordered] + [60.0]) + 12
    share_w = 96.0
    left, right, top, bottom = label_w, share_w + 24, 58.0, 44.0
    height = top + bottom + row_height * max(len(ordered), 1)
    plot_w = width - left - right
    x = _Scale(lo, hi, left, left + plot_w)
    share_x0 = left + plot_w + 20
    sx = _Scale(0.0, 1.0, share_x0, share_x0 + share_w - 34)
    body = [_text(8, 20, title, size=14, weight="600", cls="chart-title")]
    for t in nice_ticks(lo, hi, 6):
        body.append(_el("line", {"x1": _n(x(t)), "x2": _n(x(t)), "y1": _n(top - 4),
                                 "y2": _n(height - bottom), "stroke": GRID}))
        body.append(_text(x(t), height - bottom + 14, fmt(t, 1), size=11, anchor="middle", fill=MUTED))
    for value, name in thresholds:
        tx = x(value)
        color = INK if value == 0 else (GREEN if value >= 0.8 else ORANGE)
        body.append(_el("line", {"class": "threshold", "x1": _n(tx), "x2": _n(tx), "y1": _n(top - 14),
                                 "y2": _n(height - bottom), "stroke": color, "stroke_width": "1.2",
                                 "stroke_dasharray": None if value == 0 else "4 3", "data_value": _data(value)},
                        _title(f"threshold {name}")))
        # labels sit left of their line, except the last one (right of it), so neighbours never overlap
        last = value == max(v for v, _ in thresholds)
        anchor = "start" if last else ("middle" if value == 0 else "end")
        body.append(_text(tx + (3 if last else -3 if value else 0), top - 18, name, size=10, anchor=anchor, fill=color,
                          cls="threshold-label"))
    body.append(_text(share_x0, top - 18, share_label, size=10, fill=MUTED))
    body.append('<g class="rows">')
    for i, r in enumerate(ordered):
        cy = top + i * row_height + row_height / 2
        tip = (f"{r.label}: {value_name} {fmt(r.value)}"
               + (f", 95% CI {fmt(r.low)} to {fmt(r.high)}" if r.low is not None and r.high is not None else "")
               + (f", {share_label} {fmt(r.share, 2)}" if r.share is not None else "")
               + (f" ({r.note})" if r.note else ""))
        parts = [_title(tip), _text(left - 8, cy + 4, r.label, size=11, anchor="end", cls="row-label")]
        if i % 2 == 0:
            parts.insert(1, _el("rect", {"x": "0", "y": _n(cy - row_height / 2), "width": _n(width),
                                         "height": _n(row_height), "fill": "#f7f8fa"}))
        if r.value is not None:
            x0, x1 = x(0.0), x(r.value)
            parts.append(_el("rect", {"class": "bar", "x": _n(min(x0, x1)), "y": _n(cy - 5),
                                      "width": _n(max(abs(x1 - x0), 0.8)), "height": "10",
                                      "fill": BLUE if r.value >= 0 else ORANGE, "fill_opacity": "0.8", "rx": "1.5"}))
            if r.low is not None and r.high is not None:
                a, b = x(r.low), x(r.high)
                parts.append(_el("path", {"class": "ci", "d": f"M{_n(a)} {_n(cy)}H{_n(b)}M{_n(a)} {_n(cy - 4)}"
                                          f"V{_n(cy + 4)}M{_n(b)} {_n(cy - 4)}V{_n(cy + 4)}",
                                          "stroke": INK, "stroke_width": "1.2", "fill": "none"}))
        else:
            parts.append(_text(x(0.0) + 4, cy + 4, r.note or "not defined", size=10, fill=MUTED))
        if r.share is not None:
            parts.append(_el("rect", {"class": "share", "x": _n(share_x0), "y": _n(cy - 4),
                                      "width": _n(max(sx(r.share) - share_x0, 0.5)), "height": "8", "fill": AXIS,
                                      "rx": "1.5"}))
            parts.append(_text(sx(1.0) + 2, cy + 4, fmt(r.share, 2), size=9, fill=MUTED))
        attrs = {"class": "row", "data_label": r.label, "data_key": r.key or None, "data_value": _data(r.value),
                 "data_low": _data(r.low), "data_high": _data(r.high), "data_share": _data(r.share)}
        body.append(_el("g", attrs, "".join(parts)))
    body.append("</g>")
    body.append(_el("line", {"x1": _n(left), "x2": _n(left + plot_w), "y1": _n(height - bottom),
                             "y2": _n(height - bottom), "stroke": AXIS}))
    body.append(_text(left + plot_w / 2, height - 10, x_label, size=12, anchor="middle", fill=MUTED, cls="axis-label"))
    body.append(_text(8, 40, y_label, size=12, fill=MUTED, cls="axis-label"))
    return _svg("interval", width, height, title, body, chart_id=chart_id)


# ---------------------------------------------------------------------------------------------
# Lines over time


@dataclass(frozen=True)
class Point:
    x: float
    y: float | None
    title: str = ""


@dataclass(frozen=True)
class Series:
    label: str
    points: Sequence[Point]


def line_chart(series: Sequence[Series], *, title: str, x_label: str, y_label: str,
               x_ticks: Sequence[tuple[float, str]] = (), y_domain: tuple[float, float] | None = None,
               references: Sequence[tuple[float, str]] = (), width: int = 640, height: int = 260,
               chart_id: str | None = None) -> str:
    """Lines with a marker (and hover title) on every point; gaps where y is None. A legend names the
    series when there is more than one."""
    xs = [p.x for s in series for p in s.points]
    ys = [p.y for s in series for p in s.points if p.y is not None]
    legend_h = 0.0 if len(series) <= 1 else 18.0 * math.ceil(len(series) / 4)
    left, right, top, bottom = 56.0, 20.0, 34.0 + legend_h, 52.0
    plot_w, plot_h = width - left - right, height - top - bottom
    lo_y, hi_y = y_domain if y_domain else (min(ys + [0.0]), max(ys + [1e-9]))
    for v, _ in references:
        lo_y, hi_y = min(lo_y, v), max(hi_y, v)
    yt = nice_ticks(lo_y, hi_y, 4)
    y = _Scale(min(yt[0], lo_y), max(yt[-1], hi_y), top + plot_h, top)
    lo_x, hi_x = (min(xs), max(xs)) if xs else (0.0, 1.0)
    pad = (hi_x - lo_x) * 0.03 or 0.5
    x = _Scale(lo_x - pad, hi_x + pad, left, left + plot_w)
    body = [_text(left, 20, title, size=14, weight="600", cls="chart-title")]
    for t in yt:
        body.append(_el("line", {"x1": _n(left), "x2": _n(left + plot_w), "y1": _n(y(t)), "y2": _n(y(t)),
                                 "stroke": GRID}))
        body.append(_text(left - 6, y(t) + 4, fmt(t, 2), size=11, anchor="end", fill=MUTED))
    for v, name in references:
        body.append(_el("line", {"class": "reference", "x1": _n(left), "x2": _n(left + plot_w), "y1": _n(y(v)),
                                 "y2": _n(y(v)), "stroke": ORANGE, "stroke_dasharray": "4 3",
                                 "data_value": _data(v)}, _title(name)))
        body.append(_text(left + plot_w - 2, y(v) - 4, name, size=10, anchor="end", fill=ORANGE))
    for tx, name in x_ticks:
        body.append(_text(x(tx), top + plot_h + 16, name, size=11, anchor="middle", fill=MUTED, cls="tick-label"))
    for k, s in enumerate(series):
        color = SERIES_COLORS[k % len(SERIES_COLORS)]
        if len(series) > 1:
            lx = left + (k % 4) * (plot_w / 4)
            ly = 34.0 + 18.0 * (k // 4)
            body.append(_el("rect", {"x": _n(lx), "y": _n(ly - 9), "width": "10", "height": "10", "fill": color}))
            body.append(_text(lx + 14, ly, s.label, size=11, fill=INK, cls="legend"))
        segments: list[list[tuple[float, float]]] = [[]]
        marks = []
        for p in sorted(s.points, key=lambda p: p.x):
            if p.y is None:
                segments.append([])
                continue
            segments[-1].append((x(p.x), y(p.y)))
            marks.append(_el("circle", {"class": "point", "cx": _n(x(p.x)), "cy": _n(y(p.y)), "r": "3.5",
                                        "fill": color, "data_x": _data(p.x), "data_y": _data(p.y)},
                             _title(p.title or f"{s.label}: {fmt(p.y)}")))
        paths = [seg for seg in segments if len(seg) > 1]
        d = "".join("M" + "L".join(f"{_n(a)} {_n(b)}" for a, b in seg) for seg in paths)
        group = (_el("path", {"d": d, "fill": "none", "stroke": color, "stroke_width": "2"}) if d else "") + "".join(marks)
        body.append(_el("g", {"class": "series", "data_label": s.label}, group or " "))
    body.append(_el("line", {"x1": _n(left), "x2": _n(left + plot_w), "y1": _n(top + plot_h),
                             "y2": _n(top + plot_h), "stroke": AXIS}))
    body.append(_text(left + plot_w / 2, height - 8, x_label, size=12, anchor="middle", fill=MUTED, cls="axis-label"))
    body.append(_text(14, top + plot_h / 2, y_label, size=12, anchor="middle", fill=MUTED, cls="axis-label",
                      rotate=-90))
    if not ys:
        body.append(_text(left + plot_w / 2, top + plot_h / 2, "no data yet", size=13, anchor="middle", fill=MUTED))
    return _svg("line", width, height, title, body, chart_id=chart_id)


# ---------------------------------------------------------------------------------------------
# Heatmap


@dataclass(frozen=True)
class Cell:
    value: float | None
    title: str = ""
    weak: bool = False  # e.g. a thin stratum: drawn faded with a dashed outline
    text: str | None = None  # overrides the printed number


def cell_color(value: float | None, lo: float, hi: float) -> str:
    """Blue for values above 0 (darker = higher), orange below 0, light grey when missing."""
    if value is None:
        return "#eef0f3"
    if value >= 0:
        t = min(value / hi, 1.0) if hi > 0 else 0.0
        a, b = (240, 244, 252), (31, 78, 170)
    else:
        t = min(value / lo, 1.0) if lo < 0 else 0.0
        a, b = (253, 243, 232), (196, 104, 20)
    r, g, bl = (round(a[i] + (b[i] - a[i]) * t) for i in range(3))
    return f"#{r:02x}{g:02x}{bl:02x}"


def heatmap(row_labels: Sequence[str], col_labels: Sequence[str], cells: Sequence[Sequence[Cell]], *, title: str,
            x_label: str, y_label: str, domain: tuple[float, float] = (-0.2, 1.0), cell_w: float = 46,
            cell_h: float = 22, show_values: bool = True, chart_id: str | None = None,
            legend: str = "") -> str:
    """A matrix of coloured cells (rows x columns), value printed in each, hover title per cell.
    Column labels are rotated when they do not fit the cell width."""
    label_w = max([text_width(s, 11) for s in row_labels] + [40.0]) + 12
    rotate = any(text_width(c, 11) > cell_w - 4 for c in col_labels)
    col_h = (max([text_width(c, 11) for c in col_labels] + [20.0]) * 0.72 + 14) if rotate else 22.0
    top = 34.0 + col_h + (18 if legend else 0)
    left = label_w + 22
    width = left + cell_w * len(col_labels) + 16 + (col_h * 0.7 if rotate else 0)
    width = max(width, len(title) * 14 * 0.62 + 24, text_width(legend, 11) + 24)
    height = top + cell_h * len(row_labels) + 34
    lo, hi = domain
    body = [_text(8, 20, title, size=14, weight="600", cls="chart-title")]
    if legend:
        body.append(_text(8, 38, legend, size=11, fill=MUTED, cls="legend"))
    for j, c in enumerate(col_labels):
        cx = left + j * cell_w + cell_w / 2
        if rotate:
            body.append(_text(cx + 3, top - 6, c, size=11, anchor="start", fill=INK, rotate=-45, cls="col-label"))
        else:
            body.append(_text(cx, top - 6, c, size=11, anchor="middle", fill=INK, cls="col-label"))
    body.append('<g class="cells">')
    for i, (row_label, row) in enumerate(zip(row_labels, cells, strict=True)):
        cy = top + i * cell_h
        body.append(_text(left - 6, cy + cell_h / 2 + 4, row_label, size=11, anchor="end", cls="row-label"))
        for j, cell in enumerate(row):
            cx = left + j * cell_w
            fill = cell_color(cell.value, lo, hi)
            attrs: dict[str, object] = {"x": _n(cx + 1), "y": _n(cy + 1), "width": _n(cell_w - 2),
                                        "height": _n(cell_h - 2), "fill": fill, "rx": "2"}
            if cell.weak:
                attrs.update(fill_opacity="0.45", stroke=MUTED, stroke_dasharray="3 2")
            tip = cell.title or f"{row_label} / {col_labels[j]}: {fmt(cell.value)}"
            inner = _title(tip) + _el("rect", attrs)
            label = cell.text if cell.text is not None else (fmt(cell.value, 2) if cell.value is not None else "")
            if show_values and label:
                dark = cell.value is not None and not cell.weak and (
                    (cell.value > 0 and hi > 0 and cell.value / hi > 0.55) or (cell.value < 0 and lo < 0 and cell.value / lo > 0.55))
                inner += _text(cx + cell_w / 2, cy + cell_h / 2 + 4, label, size=10, anchor="middle",
                               fill="#ffffff" if dark else INK)
            body.append(_el("g", {"class": "cell" + (" weak" if cell.weak else ""), "data_row": row_label,
                                  "data_col": col_labels[j], "data_value": _data(cell.value)}, inner))
    body.append("</g>")
    body.append(_text(left + cell_w * len(col_labels) / 2, height - 8, x_label, size=12, anchor="middle", fill=MUTED,
                      cls="axis-label"))
    body.append(_text(12, top + cell_h * len(row_labels) / 2, y_label, size=12, anchor="middle", fill=MUTED,
                      cls="axis-label", rotate=-90))
    if not row_labels or not col_labels:
        body.append(_text(width / 2, top + 10, "no data yet", size=13, anchor="middle", fill=MUTED))
    return _svg("heatmap", width, height, title, body, chart_id=chart_id)


# ---------------------------------------------------------------------------------------------
# One image's spread of ratings per emotion


@dataclass(frozen=True)
class SpreadRow:
    label: str
    values: Sequence[int]  # the experts' ratings of this emotion
    model: float | None = None  # a model's score on the same scale, if any
    extra: Mapping[str, str] = field(default_factory=dict)


def spread_chart(rows: Sequence[SpreadRow], *, title: str, scale_max: int, x_label: str = "intensity",
                 y_label: str = "emotion", width: int = 420, row_height: int = 18, compact: bool = False,
                 chart_id: str | None = None) -> str:
    """Per emotion: a line from the lowest to the highest expert rating, a dot per rating (stacked
    dots get larger), and a diamond for the model's score. Rows in the given order."""
    size = 10 if compact else 11
    limit = 18 if compact else 34

    def short(label: str) -> str:
        return label if len(label) <= limit else label[: limit - 1].rstrip() + "…"

    label_w = max([text_width(short(r.label), size) for r in rows] + [30.0]) + 10
    left, right = label_w, 14.0
    top, bottom = (24.0 if compact else 34.0), (30.0 if compact else 40.0)
    height = top + bottom + row_height * max(len(rows), 1)
    x = _Scale(0.0, float(scale_max), left, width - right)
    body = [_text(6, 15 if compact else 20, title, size=12 if compact else 14, weight="600", cls="chart-title")]
    for t in range(scale_max + 1):
        if compact and scale_max > 4 and t % 2:
            continue
        body.append(_el("line", {"x1": _n(x(t)), "x2": _n(x(t)), "y1": _n(top - 2), "y2": _n(height - bottom),
                                 "stroke": GRID}))
        body.append(_text(x(t), height - bottom + 12, str(t), size=size - 1, anchor="middle", fill=MUTED))
    body.append('<g class="rows">')
    for i, r in enumerate(rows):
        cy = top + i * row_height + row_height / 2
        vals = sorted(int(v) for v in r.values)
        spread = (vals[-1] - vals[0]) if vals else 0
        tip = f"{r.label}: ratings {', '.join(map(str, vals)) or 'none'}; spread {spread}"
        if r.model is not None:
            tip += f"; model {fmt(r.model, 2)}"
        parts = [_title(tip), _text(left - 6, cy + 4, short(r.label), size=size, anchor="end", cls="row-label")]
        if vals:
            parts.append(_el("line", {"class": "range", "x1": _n(x(vals[0])), "x2": _n(x(vals[-1])), "y1": _n(cy),
                                      "y2": _n(cy), "stroke": BLUE_LIGHT, "stroke_width": "4",
                                      "stroke_linecap": "round"}))
            for v in sorted(set(vals)):
                k = vals.count(v)
                parts.append(_el("circle", {"class": "rating", "cx": _n(x(v)), "cy": _n(cy), "r": _n(3 + 1.2 * (k - 1)),
                                            "fill": BLUE, "data_value": str(v), "data_count": str(k)}))
        if r.model is not None:
            mx = x(r.model)
            parts.append(_el("path", {"class": "model", "d": f"M{_n(mx)} {_n(cy - 5)}L{_n(mx + 5)} {_n(cy)}"
                                      f"L{_n(mx)} {_n(cy + 5)}L{_n(mx - 5)} {_n(cy)}Z",
                                      "fill": "none", "stroke": ORANGE, "stroke_width": "1.6",
                                      "data_value": _data(r.model)}))
        body.append(_el("g", {"class": "row", "data_label": r.label, "data_spread": str(spread),
                              **{f"data_{k}": v for k, v in r.extra.items()}}, "".join(parts)))
    body.append("</g>")
    body.append(_text((left + width - right) / 2, height - 6, x_label, size=size, anchor="middle", fill=MUTED,
                      cls="axis-label"))
    body.append(_text(6, height - 6, y_label, size=size, fill=MUTED, cls="axis-label"))
    if not rows:
        body.append(_text(width / 2, top + 10, "no ratings yet", size=12, anchor="middle", fill=MUTED))
    return _svg("spread", width, height, title, body, chart_id=chart_id)
