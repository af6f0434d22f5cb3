"""What /metrics exposes, read from the engine's memory at scrape time.

Nothing here runs per check. A scrape takes a :class:`Snapshot` on the event loop's thread
(plain copies of what the engine already holds: O(monitors), no formatting), and the
prometheus_client families are built and encoded from the snapshot in a worker thread,
so a large exposition never blocks the loop for long and never reads a dict the loop is
changing.

Names follow Prometheus's conventions (base units, ``_total`` counters) and what people
know from Uptime Kuma (``monitor_name``) and Gatus (``*_duration_seconds``). A monitor's
state is one series per state, 1 for the current one, as kube-state-metrics does for
enumerations: ``dozor_monitor_state{state="down"} == 1`` alerts, and a new state in a
later version does not change the meaning of a number.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector

from dozor import __version__
from dozor.core.types import MonitorState
from dozor.engine.engine import Engine
from dozor.engine.scheduler import quantiles
from dozor.engine.stats import KindStats
from dozor.notify.outbox import Depth

STATES = tuple(state.value for state in MonitorState)
MONITOR_LABELS = ("monitor_id", "monitor_name", "kind")
LAG_QUANTILES = (0.5, 0.9, 0.99)


class ProbeRow(NamedTuple):
    name: str
    location: str
    last_seen: datetime | None
    lag_ms: int | None  # the newest result's age when it arrived
    dropped: int  # results its buffer had to drop, as it reported
    silent: bool = False  # marked silent (notify.probe_watch): the operator was told


class MonitorRow(NamedTuple):
    id: int
    name: str
    kind: str
    state: MonitorState | None  # None: not evaluated yet (unknown)
    latency_ms: float | None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything a scrape shows, copied from the engine at one moment."""

    at: datetime
    monitors: list[MonitorRow]
    kinds: dict[str, KindStats]
    result_queue: int
    results_written: int
    checks_in_flight: int
    lag_window: list[float]  # the latest starts' lags, seconds
    lag_count: int
    lag_sum: float
    outbox: Depth
    probes: list[ProbeRow] = field(default_factory=list)  # live (not revoked) ones


def take_snapshot(engine: Engine, outbox: Depth, at: datetime) -> Snapshot:
    """Copy what the engine holds (call on the event loop's thread)."""
    # The one part of a scrape that is O(monitors) on the loop: keep it to tuple building
    # (about a millisecond per thousand monitors).
    # With several server nodes each shows the monitors it holds (scrape every node):
    # another node's monitors would show here as unknown, with an old latency.
    trackers, keeps = engine.evaluator.trackers, engine.cluster.keeps
    monitors = [MonitorRow(m.id, m.name, m.kind, tracker.state if (tracker := trackers.get(m.id))
                           else None, m.last_latency_ms)
                for m in engine.monitors.values() if keeps(m.id)]
    kinds = {kind: KindStats(s.checks, s.failures, s.seconds, list(s.buckets))
             for kind, s in engine.stats.kinds.items()}
    lag = engine.scheduler.lag
    return Snapshot(at, monitors, kinds, engine.writer.pending, engine.writer.written,
                    engine.scheduler.in_flight, list(lag.samples), lag.started, lag.total,
                    outbox)


class SnapshotCollector(Collector):
    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        yield from self._monitors()
        yield from self._checks()
        yield from self._queues()
        yield self._lag()
        yield from self._probes()
        info = GaugeMetricFamily("dozor_build_info", "Dozor's version.", labels=["version"])
        info.add_metric([__version__], 1.0)
        yield info

    def _monitors(self) -> Iterator[Metric]:
        state = GaugeMetricFamily(
            "dozor_monitor_state", "1 for each monitor's current state, 0 for the others.",
            labels=[*MONITOR_LABELS, "state"])
        latency = GaugeMetricFamily(
            "dozor_monitor_latency_seconds",
            "What each monitor's latest check measured (monitors with a measurement).",
            labels=list(MONITOR_LABELS))
        for row in self.snapshot.monitors:
            labels = [str(row.id), row.name, row.kind]
            current = (row.state or MonitorState.UNKNOWN).value
            for name in STATES:
                state.add_metric([*labels, name], 1.0 if name == current else 0.0)
            if row.latency_ms is not None:
                latency.add_metric(labels, row.latency_ms / 1000)
        yield state
        yield latency

    def _checks(self) -> Iterator[Metric]:
        checks = CounterMetricFamily("dozor_checks", "Checks run, by kind.", labels=["kind"])
        failures = CounterMetricFamily("dozor_check_failures",
                                       "Checks that found their target failing, by kind.",
                                       labels=["kind"])
        duration = HistogramMetricFamily(
            "dozor_check_duration_seconds",
            "How long checks took from start to outcome (timeouts included), by kind.",
            labels=["kind"])
        for kind, stats in sorted(self.snapshot.kinds.items()):
            checks.add_metric([kind], stats.checks)
            failures.add_metric([kind], stats.failures)
            duration.add_metric([kind], stats.cumulative(), stats.seconds)
        yield from (checks, failures, duration)

    def _queues(self) -> Iterator[Metric]:
        snapshot = self.snapshot
        yield GaugeMetricFamily("dozor_result_queue_length",
                                "Results measured and not yet stored.", snapshot.result_queue)
        yield CounterMetricFamily("dozor_results_written", "Results stored.",
                                  snapshot.results_written)
        yield GaugeMetricFamily("dozor_checks_in_flight", "Checks running now.",
                                snapshot.checks_in_flight)
        outbox = GaugeMetricFamily("dozor_outbox_messages",
                                   "Messages in the outbox not finished yet, by state "
                                   "(queued: due now or later; sending: claimed).",
                                   labels=["state"])
        for name, count in sorted(snapshot.outbox.by_status.items()):
            outbox.add_metric([name], count)
        yield outbox
        oldest = snapshot.outbox.oldest_due
        age = max(0.0, (snapshot.at - oldest).total_seconds()) if oldest else 0.0
        yield GaugeMetricFamily("dozor_outbox_oldest_due_seconds",
                                "How long the oldest due message has waited to be claimed "
                                "(0 when none waits).", age)

    def _probes(self) -> Iterator[Metric]:
        """Each live probe's last contact (alert on ``time() - ...`` to hear of a silent
        probe), its delivery lag, the results it had to drop, and whether it is silent."""
        labels = ["probe", "location"]
        seen = GaugeMetricFamily("dozor_probe_last_contact_timestamp_seconds",
                                 "When the probe last reached this server (Unix time; 0: "
                                 "never).", labels=labels)
        lag = GaugeMetricFamily("dozor_probe_lag_seconds",
                                "How old the newest result of the probe's last delivery "
                                "was when it arrived.", labels=labels)
        dropped = GaugeMetricFamily("dozor_probe_dropped_results",
                                    "Results the probe's buffer had to drop while this "
                                    "server was away, as it reported.", labels=labels)
        silent = GaugeMetricFamily("dozor_probe_silent",
                                   "1 while the probe is silent (not heard from for "
                                   "DOZOR_PROBE_SILENT_AFTER; the operator was told), "
                                   "else 0.", labels=labels)
        for probe in self.snapshot.probes:
            names = [probe.name, probe.location]
            seen.add_metric(names, probe.last_seen.timestamp() if probe.last_seen else 0.0)
            if probe.lag_ms is not None:
                lag.add_metric(names, probe.lag_ms / 1000)
            dropped.add_metric(names, probe.dropped)
            silent.add_metric(names, 1.0 if probe.silent else 0.0)
        yield from (seen, lag, dropped, silent)

    def _lag(self) -> Metric:
        snapshot = self.snapshot
        lag = SummaryMetricFamily(
            "dozor_scheduler_lag_seconds",
            "How late checks started (start minus scheduled time); quantiles over the "
            "latest starts (at most 100,000), count and sum since the process started.",
            count_value=snapshot.lag_count, sum_value=snapshot.lag_sum)
        values = quantiles(snapshot.lag_window, LAG_QUANTILES)
        for q, value in zip(LAG_QUANTILES, values, strict=True):
            lag.add_sample("dozor_scheduler_lag_seconds", {"quantile": str(q)}, value)
        return lag
