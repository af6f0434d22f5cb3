"""Plain-text output for the command line: tables, times, check outcomes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from dozor.core.types import PHASES, Outcome


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell; the last column is not padded."""
    if not rows:
        return "(none)"
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]
    lines = []
    for row in [headers, *rows]:
        cells = [str(cell).ljust(width) for cell, width in zip(row[:-1], widths, strict=False)]
        lines.append("  ".join([*cells, str(row[-1])]).rstrip())
    return "\n".join(lines)


def when(moment: datetime | None, now: datetime | None = None) -> str:
    """A moment as UTC time plus how long ago, e.g. ``12:03:05 (4m ago)``."""
    if moment is None:
        return "-"
    now = now or datetime.now(UTC)
    seconds = int((now - moment).total_seconds())
    if seconds < 120:
        ago = f"{seconds}s ago"
    elif seconds < 7200:
        ago = f"{seconds // 60}m ago"
    elif seconds < 172800:
        ago = f"{seconds // 3600}h ago"
    else:
        ago = f"{seconds // 86400}d ago"
    stamp = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S" if seconds > 86400
                                            else "%H:%M:%S")
    return f"{stamp} ({ago})"


def format_outcome(outcome: Outcome) -> str:
    latency = f"{outcome.latency_ms:.1f} ms" if outcome.latency_ms is not None else ""
    head = f"{'UP' if outcome.ok else 'DOWN'}  {latency}".rstrip()
    lines = [head]
    if not outcome.ok:
        code = outcome.error.name.lower() if outcome.error else "error"
        lines.append(f"  {code}: {outcome.message}")
    for phase in PHASES:
        if phase in outcome.phases:
            lines.append(f"  {phase:<11}{outcome.phases[phase]:>9.1f} ms")
    for key, value in outcome.details.items():
        lines.append(f"  {key}: {value}")
    return "\n".join(lines)
