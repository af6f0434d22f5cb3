"""Small charts drawn on the server as SVG: the 90-day uptime bar, the latency sparkline
and the monitor page's latency chart (stacked phases, or a line per location). No script
is needed to read them; colours come from CSS classes, so the light and dark themes
restyle them.

A bar is drawn as runs, not as one rectangle a day: a monitor that was up for 90 days is
one rectangle, which keeps an overview of many monitors small.

>>> bar = uptime_bar([None, 1.0, 1.0, 0.5], days=4)
>>> bar.count("<path"), 'class="up" d="M1 0h2v1h-2z"' in bar
(3, True)
>>> sparkline([10.0, None, 30.0, 20.0]).split("points=")[1]
'"0,15.0 40,1.0 60,8.0"/></svg>'
>>> sparkline([None, None])
''
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape


def day_class(share: float | None) -> str:
    """A day's colour: no checks, all up, a little down, or down."""
    if share is None:
        return "none"
    if share >= 0.999:
        return "up"
    return "partial" if share >= 0.95 else "down"


def uptime_bar(shares: Sequence[float | None], days: int = 90) -> str:
    """One cell a day (oldest first), drawn as runs of one colour."""
    runs: list[tuple[str, int, int]] = []  # class, first day, length
    for index, share in enumerate(shares[-days:]):
        kind = day_class(share)
        if runs and runs[-1][0] == kind:
            runs[-1] = (kind, runs[-1][1], runs[-1][2] + 1)
        else:
            runs.append((kind, index, 1))
    paths = "".join(f'<path class="{kind}" d="M{first} 0h{length}v1h-{length}z"/>'
                    for kind, first, length in runs)
    return (f'<svg class="bar" viewBox="0 0 {days} 1" preserveAspectRatio="none" role="img" '
            f'aria-label="uptime by day">{paths}</svg>')


def sparkline(values: Sequence[float | None], width: int = 60, height: int = 16) -> str:
    """Latency over time (oldest first); gaps are skipped. Empty without two points."""
    points = [(i, v) for i, v in enumerate(values) if v is not None]
    if len(points) < 2:
        return ""
    low, high = min(v for _, v in points), max(v for _, v in points)
    span = (high - low) or 1.0
    step = width / max(len(values) - 1, 1)
    inner = height - 2
    coords = " ".join(f"{round(i * step)},{1 + inner - (v - low) / span * inner:.1f}"
                      for i, v in points)
    return (f'<svg class="spark" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="latency"><polyline points="{coords}"/></svg>')


@dataclass(frozen=True, slots=True)
class PhasePoint:
    """One result on the latency chart: when (epoch seconds) and its phases in ms."""

    at: float
    phases: dict[str, float]
    up: bool


PHASES = ("dns", "connect", "tls", "first_byte", "rest")


def latency_chart(points: Sequence[PhasePoint], start: float, end: float,
                  width: int = 720, height: int = 180, label: str = "latency") -> str:
    """Stacked columns of timing phases over [start, end); failures marked below the axis.

    >>> chart = latency_chart([PhasePoint(5, {"dns": 1, "connect": 2, "rest": 3}, True),
    ...                        PhasePoint(8, {}, False)], 0, 10, width=100, height=50)
    >>> chart.count('class="p-dns"'), chart.count('class="fail"'), "6 ms" in chart
    (1, 1, True)
    """
    top = max((sum(p.phases.values()) for p in points), default=0.0) or 1.0
    plot = height - 14  # room for the axis labels
    span = (end - start) or 1.0
    column = min(max(width / max(len(points), 1) * 0.8, 1.0), 8.0)
    parts: list[str] = []
    for point in points:
        x = min((point.at - start) / span * width, width - column)
        if not point.up:
            parts.append(f'<rect class="fail" x="{x:.1f}" y="{plot + 2}" '
                         f'width="{max(column, 2):.1f}" height="4"/>')
            continue
        y = float(plot)
        for phase in PHASES:
            value = point.phases.get(phase, 0.0)
            if value <= 0:
                continue
            h = value / top * (plot - 14)  # the top 14 units hold the scale's label
            y -= h
            parts.append(f'<rect class="p-{phase}" x="{x:.1f}" y="{y:.1f}" '
                         f'width="{column:.1f}" height="{h:.1f}"/>')
    return _latency_frame(width, height, plot, top, label, parts)


@dataclass(frozen=True, slots=True)
class LatencyPoint:
    """One check on a location's line: when (epoch seconds), its latency in ms; None
    when it failed."""

    at: float
    latency_ms: float | None


@dataclass(frozen=True, slots=True)
class Series:
    """One location's checks, oldest first. ``colour`` is its place among the monitor's
    locations (class ``l0`` to ``l5``, then again), so a location keeps its colour
    whichever range is shown; the page's legend uses the same class."""

    label: str
    colour: int
    points: Sequence[LatencyPoint]


SERIES_COLOURS = 6


def location_chart(series: Sequence[Series], start: float, end: float,
                   width: int = 720, height: int = 180, label: str = "latency") -> str:
    """A line of latency per location over [start, end), each a group named by its
    location; a failure breaks its location's line and is marked below the axis, in a
    lane of that location's.

    >>> chart = location_chart([Series("fra", 0, [LatencyPoint(2, 10), LatencyPoint(4, None),
    ...                                           LatencyPoint(6, 30)]),
    ...                         Series("waw", 1, [LatencyPoint(5, 20)])], 0, 10,
    ...                        width=100, height=50)
    >>> chart.count("<g "), '<g class="series l1" data-location="waw">' in chart
    (2, True)
    >>> chart.split('d="')[1].split('"')[0]  # two runs: the failure is a gap
    'M20.0 28.7h0M60.0 14.0h0'
    >>> chart.count('class="fail"'), "30 ms" in chart
    (1, True)
    """
    top = max((p.latency_ms for s in series for p in s.points if p.latency_ms is not None),
              default=0.0) or 1.0
    plot = height - 14  # room below the axis for the failures' lanes
    span = (end - start) or 1.0
    groups = []
    for line in series:
        colour = line.colour % SERIES_COLOURS
        lane = plot + 2 + colour % 4 * 3
        path: list[str] = []
        fails: list[str] = []
        drawing = False
        for point in line.points:
            x = min(max((point.at - start) / span * width, 0.0), float(width))
            if point.latency_ms is None:
                fails.append(f'<rect class="fail" x="{x:.1f}" y="{lane}" width="3" height="2"/>')
                drawing = False
                continue
            y = plot - point.latency_ms / top * (plot - 14)  # the top 14 hold the scale
            # A run starts with a dot (a zero-length line), so a lone check shows too.
            path.append(f"L{x:.1f} {y:.1f}" if drawing else f"M{x:.1f} {y:.1f}h0")
            drawing = True
        name = escape(line.label)
        drawn = f'<path d="{"".join(path)}"/>' if path else ""
        groups.append(f'<g class="series l{colour}" data-location="{name}"><title>{name}'
                      f'</title>{drawn}{"".join(fails)}</g>')
    return _latency_frame(width, height, plot, top, label, groups)


def _latency_frame(width: int, height: int, plot: int, top: float, label: str,
                   drawn: list[str]) -> str:
    """A latency chart around what is ``drawn``: its scale's label and its baseline."""
    axis = (f'<text x="0" y="10" class="axis">{top:.0f} ms</text>'
            f'<line class="axis" x1="0" y1="{plot}" x2="{width}" y2="{plot}"/>')
    return (f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="{escape(label)}">{axis}{"".join(drawn)}</svg>')
