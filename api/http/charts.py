"""Server-side inline SVG charts for the HTML pages: no JavaScript, no vendored chart library.

Every chart is a self-contained `<svg role="img">` with a `<title>` and `<desc>` (screen readers
announce them) and is paired by the templates with a data table, so nothing is only visible as
a picture. Colours come from CSS classes (`api/http/static/site.css`), which keeps the contrast rules
in one place and lets the markup stay free of inline styles (the pages send a strict CSP).

- `line_chart`: running BPB per chunk.
- `stacked_bars`: score and train seconds per chunk (downsampled into buckets past `max_bars`).
- `size_bar`: counted bytes against the artifact cap, for leaderboard rows.
- `progression_chart`: the best BPB over time (a step line through each new record).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Sequence

from markupsafe import Markup, escape

_ids = 0


def _uid(prefix: str) -> str:
    # Ids only need to be unique within one page; a process counter is enough.
    global _ids
    _ids = (_ids + 1) % 1_000_000_000
    return f"{prefix}{_ids}"


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About `count` round tick values covering [lo, hi] (1, 2, 2.5, 5 × 10^k steps)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0]
    if hi < lo:
        lo, hi = hi, lo
    # A range at the scale of float rounding (a measured BPB equal to its claim but for the last
    # bits) is a single value: a step that small would no longer advance `v` below.
    if hi - lo <= max(abs(lo), abs(hi)) * 1e-9:
        pad = abs(lo) * 0.01 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / max(1, count)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks = []
    v = start
    while v <= hi + step * 0.5:
        ticks.append(round(v, 12))
        v += step
    return ticks


def _fmt(v: float, step: float) -> str:
    """A tick label with as many decimals as the step needs (0.25 → 2, 0.5 → 1, 5 → 0)."""
    if step <= 0:
        return f"{v:g}"
    decimals = max(0, -math.floor(math.log10(step)))
    if abs(step * 10 ** decimals - round(step * 10 ** decimals)) > 1e-9:
        decimals += 1
    return f"{v:.{decimals}f}"


@dataclass(frozen=True)
class Frame:
    width: int = 640
    height: int = 240
    left: int = 64
    right: int = 16
    top: int = 16
    bottom: int = 44

    @property
    def plot_w(self) -> int:
        return self.width - self.left - self.right

    @property
    def plot_h(self) -> int:
        return self.height - self.top - self.bottom


def _open(frame: Frame, title: str, desc: str, cls: str) -> tuple[list[str], str]:
    tid, did = _uid("t"), _uid("d")
    parts = [
        f'<svg class="chart {cls}" viewBox="0 0 {frame.width} {frame.height}" width="100%" '
        f'preserveAspectRatio="xMidYMid meet" role="img" aria-labelledby="{tid} {did}" '
        f'xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{tid}">{escape(title)}</title>',
        f'<desc id="{did}">{escape(desc)}</desc>',
    ]
    return parts, tid


def _axes(parts: list[str], f: Frame, xticks: list[tuple[float, str]], yticks: list[tuple[float, str]],
          x_label: str, y_label: str) -> None:
    x0, y0, x1, y1 = f.left, f.top + f.plot_h, f.left + f.plot_w, f.top
    for py, label in yticks:
        parts.append(f'<line class="grid" x1="{x0}" y1="{py:.1f}" x2="{x1}" y2="{py:.1f}"/>')
        parts.append(f'<text class="tick" x="{x0 - 6}" y="{py + 4:.1f}" text-anchor="end">{escape(label)}</text>')
    for px, label in xticks:
        parts.append(f'<line class="axis" x1="{px:.1f}" y1="{y0}" x2="{px:.1f}" y2="{y0 + 4}"/>')
        parts.append(f'<text class="tick" x="{px:.1f}" y="{y0 + 16}" text-anchor="middle">{escape(label)}</text>')
    parts.append(f'<line class="axis" x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}"/>')
    parts.append(f'<line class="axis" x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}"/>')
    parts.append(f'<text class="label" x="{x0 + f.plot_w / 2:.1f}" y="{f.height - 6}" text-anchor="middle">'
                 f'{escape(x_label)}</text>')
    parts.append(f'<text class="label" x="14" y="{f.top + f.plot_h / 2:.1f}" text-anchor="middle" '
                 f'transform="rotate(-90 14 {f.top + f.plot_h / 2:.1f})">{escape(y_label)}</text>')


def _int_ticks(n: int, want: int = 8) -> list[int]:
    """Tick positions for chunk indices 0..n-1 (whole numbers only)."""
    if n <= 1:
        return [0]
    step = max(1, int(nice_ticks(0, n - 1, want)[1] - nice_ticks(0, n - 1, want)[0]))
    return list(range(0, n, step))


def line_chart(ys: Sequence[float], *, title: str, x_label: str = "chunk", y_label: str = "",
               desc: str | None = None, frame: Frame = Frame(), ref: float | None = None,
               ref_label: str = "", x_total: int | None = None) -> Markup:
    """A line through ys[i] at x = i, with an optional dashed reference line (e.g. the claim).

    `x_total` fixes the x axis to that many points (a running evaluation's chunks_total), so a
    partial curve shows how far along it is."""
    f = frame
    vals = [float(v) for v in ys if v is not None and math.isfinite(float(v))]
    desc = desc or (f"{len(vals)} points" + (f", from {vals[0]:.5f} to {vals[-1]:.5f}" if vals else ""))
    parts, _ = _open(f, title, desc, "line-chart")
    if not vals:
        parts.append(f'<text class="empty" x="{f.width / 2}" y="{f.height / 2}" text-anchor="middle">no data yet</text>')
        parts.append("</svg>")
        return Markup("".join(parts))
    lo, hi = min(vals), max(vals)
    if ref is not None and math.isfinite(ref):
        lo, hi = min(lo, ref), max(hi, ref)
    yt = nice_ticks(lo, hi, 4)
    lo, hi = min(yt[0], lo), max(yt[-1], hi)
    n = max(len(vals), x_total or 0)

    def px(i: float) -> float:
        return f.left + (f.plot_w * i / (n - 1) if n > 1 else f.plot_w / 2)

    def py(v: float) -> float:
        return f.top + f.plot_h * (1 - (v - lo) / (hi - lo if hi > lo else 1.0))

    step = yt[1] - yt[0] if len(yt) > 1 else 1.0
    _axes(parts, f, [(px(i), str(i)) for i in _int_ticks(n)], [(py(t), _fmt(t, step)) for t in yt],
          x_label, y_label)
    if ref is not None and math.isfinite(ref):
        parts.append(f'<line class="ref" x1="{f.left}" y1="{py(ref):.1f}" x2="{f.left + f.plot_w}" y2="{py(ref):.1f}"/>')
        if ref_label:
            parts.append(f'<text class="ref-label" x="{f.left + f.plot_w - 4}" y="{py(ref) - 4:.1f}" '
                         f'text-anchor="end">{escape(ref_label)}</text>')
    pts = " ".join(f"{px(i):.1f},{py(v):.1f}" for i, v in enumerate(vals))
    parts.append(f'<polyline class="series" points="{pts}"/>')
    if len(vals) <= 60:  # markers help reading short series; on long ones they only add bytes
        parts.extend(f'<circle class="dot" cx="{px(i):.1f}" cy="{py(v):.1f}" r="2.5"/>' for i, v in enumerate(vals))
    parts.append("</svg>")
    return Markup("".join(parts))


def bucket(values: Sequence[Sequence[float]], max_bars: int) -> tuple[list[list[float]], list[tuple[int, int]]]:
    """Sum consecutive rows into at most `max_bars` buckets; returns the sums and index ranges."""
    n = len(values)
    if n <= max_bars:
        return [list(map(float, v)) for v in values], [(i, i) for i in range(n)]
    size = math.ceil(n / max_bars)
    out, ranges = [], []
    for start in range(0, n, size):
        rows = values[start:start + size]
        out.append([float(sum(col)) for col in zip(*rows)])
        ranges.append((start, start + len(rows) - 1))
    return out, ranges


def stacked_bars(rows: Sequence[Sequence[float]], series: Sequence[str], *, title: str,
                 x_label: str = "chunk", y_label: str = "seconds", frame: Frame = Frame(top=28),
                 max_bars: int = 120) -> Markup:
    """Stacked bars: rows[i][k] is series k's value at chunk i (e.g. score and train seconds)."""
    f = frame
    sums, ranges = bucket(rows, max_bars)
    total = sum(sum(r) for r in sums)
    grouped = len(ranges) < len(rows)
    desc = (f"{len(rows)} chunks" + (f" in {len(ranges)} buckets" if grouped else "")
            + f", {total:.2f} {y_label} in total (" + ", ".join(series) + ")")
    parts, _ = _open(f, title, desc, "bar-chart")
    if not sums:
        parts.append(f'<text class="empty" x="{f.width / 2}" y="{f.height / 2}" text-anchor="middle">no data yet</text>')
        parts.append("</svg>")
        return Markup("".join(parts))
    hi = max((sum(r) for r in sums), default=0.0) or 1.0
    yt = nice_ticks(0.0, hi, 4)
    hi = max(yt[-1], hi)
    n = len(sums)
    slot = f.plot_w / n
    bw = max(1.0, slot * 0.8)

    def py(v: float) -> float:
        return f.top + f.plot_h * (1 - v / hi)

    step = yt[1] - yt[0] if len(yt) > 1 else 1.0
    xt = [(f.left + slot * (i + 0.5), str(ranges[i][0])) for i in _int_ticks(n)]
    _axes(parts, f, xt, [(py(t), _fmt(t, step)) for t in yt],
          x_label + (" (bucketed)" if grouped else ""), y_label)
    for i, r in enumerate(sums):
        base = 0.0
        x = f.left + slot * i + (slot - bw) / 2
        a, b = ranges[i]
        span = f"chunk {a}" if a == b else f"chunks {a}–{b}"
        for k, v in enumerate(r):
            if v <= 0:
                continue
            y_top, y_bot = py(base + v), py(base)
            parts.append(f'<rect class="bar s{k}" x="{x:.1f}" y="{y_top:.1f}" width="{bw:.1f}" '
                         f'height="{max(0.5, y_bot - y_top):.1f}"><title>{escape(span)}: '
                         f'{escape(series[k])} {v:.3f} s</title></rect>')
            base += v
    # Legend in the top margin, so it never covers a bar.
    lx = f.left
    for k, name in enumerate(series):
        parts.append(f'<rect class="key s{k}" x="{lx}" y="4" width="10" height="10"/>')
        parts.append(f'<text class="legend" x="{lx + 14}" y="13">{escape(name)}</text>')
        lx += 14 + 7 * len(name) + 18
    parts.append("</svg>")
    return Markup("".join(parts))


def size_bar(used: int | None, cap: int, *, width: int = 120, height: int = 14) -> Markup:
    """A small bar: `used` bytes against `cap` (a line marks the cap; over-cap shows in red)."""
    if used is None:
        return Markup('<span class="muted">unknown</span>')
    frac = used / cap if cap else 0.0
    over = used > cap
    # Within the cap the bar's full width is the cap. Over it, the cap moves to 80 % of the width
    # and a line marks it, so the overshoot is visible (clipped at the bar's end).
    scale = 0.8 if over else 1.0
    w = min(width, width * frac * scale)
    cap_x = width * scale
    # Exact bytes: rounded megabytes would show 15,996,697 as a "16.00 MB" that reads as over the cap.
    margin = f"{used - cap:,} over" if over else f"{cap - used:,} under"
    label = f"{used:,} bytes of the {cap:,}-byte cap ({margin})"
    parts = [f'<svg class="size-bar{" over" if over else ""}" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}" '
             f'xmlns="http://www.w3.org/2000/svg"><title>{escape(label)}</title>',
             f'<rect class="track" x="0" y="2" width="{width}" height="{height - 4}" rx="2"/>',
             f'<rect class="fill" x="0" y="2" width="{max(0.0, w):.1f}" height="{height - 4}" rx="2"/>']
    if over:
        parts.append(f'<line class="cap" x1="{cap_x:.1f}" y1="0" x2="{cap_x:.1f}" y2="{height}"/>')
    parts.append("</svg>")
    return Markup("".join(parts))


def progression_chart(points: Sequence[tuple[str, float, str]], *, title: str, frame: Frame = Frame()) -> Markup:
    """Best BPB over time: (ISO date, BPB, name) of each entry that beat every earlier one, drawn as
    a step line (the record holds until the next one) with a marker per new record."""
    f = frame
    pts = []
    for day, bpb, name in points:
        try:
            pts.append((dt.date.fromisoformat(str(day)[:10]).toordinal(), float(bpb), name))
        except ValueError:
            continue
    desc = (f"{len(pts)} records from {pts[0][1]:.5f} to {pts[-1][1]:.5f} BPB" if pts else "no dated entries")
    parts, _ = _open(f, title, desc, "progression-chart")
    if not pts:
        parts.append(f'<text class="empty" x="{f.width / 2}" y="{f.height / 2}" text-anchor="middle">no data yet</text>')
        parts.append("</svg>")
        return Markup("".join(parts))
    d0, d1 = pts[0][0], max(pts[-1][0], pts[0][0] + 1)
    lo, hi = min(p[1] for p in pts), max(p[1] for p in pts)
    yt = nice_ticks(lo, hi, 4)
    lo, hi = min(yt[0], lo), max(yt[-1], hi)

    def px(day: float) -> float:
        return f.left + f.plot_w * (day - d0) / (d1 - d0)

    def py(v: float) -> float:
        return f.top + f.plot_h * (1 - (v - lo) / (hi - lo if hi > lo else 1.0))

    step = yt[1] - yt[0] if len(yt) > 1 else 1.0
    xt = sorted({int(round(d0 + (d1 - d0) * i / 4)) for i in range(5)})
    _axes(parts, f, [(px(d), dt.date.fromordinal(d).strftime("%b %d")) for d in xt],
          [(py(t), _fmt(t, step)) for t in yt], "date", "best BPB")
    path = [f"{px(pts[0][0]):.1f},{py(pts[0][1]):.1f}"]
    for (_, prev, _), (day, bpb, _) in zip(pts, pts[1:]):
        path += [f"{px(day):.1f},{py(prev):.1f}", f"{px(day):.1f},{py(bpb):.1f}"]
    path.append(f"{px(d1):.1f},{py(pts[-1][1]):.1f}")
    parts.append(f'<polyline class="series" points="{" ".join(path)}"/>')
    for day, bpb, name in pts:
        label = f"{dt.date.fromordinal(day).isoformat()}: {bpb:.5f} ({name})"
        parts.append(f'<circle class="dot" cx="{px(day):.1f}" cy="{py(bpb):.1f}" r="3"><title>{escape(label)}</title>'
                     f'</circle>')
    parts.append("</svg>")
    return Markup("".join(parts))
