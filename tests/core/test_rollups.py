"""Rollups add up exactly, and percentiles read from their histograms stay close."""

from __future__ import annotations

import random

import pytest

from dozor.core.rollups import Histogram, Rollup, combine


def test_percentiles_are_within_five_percent_of_the_exact_values() -> None:
    generator = random.Random(7)
    latencies = [generator.lognormvariate(4, 0.8) for _ in range(10_000)]
    histogram = Histogram()
    for latency in latencies:
        histogram.add(latency)
    ordered = sorted(latencies)
    for q in (0.5, 0.95, 0.99):
        exact = ordered[int(q * len(ordered)) - 1]
        estimate = histogram.quantile(q)
        assert estimate is not None
        assert estimate == pytest.approx(exact, rel=0.05)


def test_merging_hours_equals_rolling_up_the_day_at_once() -> None:
    generator = random.Random(3)
    day, hours = Rollup(), [Rollup() for _ in range(24)]
    for hour in hours:
        for _ in range(60):
            up, latency = generator.random() > 0.01, generator.uniform(5, 500)
            hour.add(up, latency)
            day.add(up, latency)
    merged = combine(hours)
    assert (merged.checks, merged.up, merged.timed) == (day.checks, day.up, day.timed)
    assert merged.latency_sum == pytest.approx(day.latency_sum)
    assert (merged.latency_min, merged.latency_max) == (day.latency_min, day.latency_max)
    assert merged.histogram.counts == day.histogram.counts


def test_the_histogram_survives_its_text_form() -> None:
    histogram = Histogram()
    for latency in (0.0, 1.0, 12.5, 12.6, 3000.0):
        histogram.add(latency)
    assert Histogram.decode(histogram.encode()) == histogram
    assert Histogram.decode("").quantile(0.5) is None


def test_checks_without_latency_count_for_uptime_only() -> None:
    rollup = Rollup()
    rollup.add(False, None)
    rollup.add(True, 10.0)
    assert (rollup.checks, rollup.up, rollup.timed) == (2, 1, 1)
    assert rollup.uptime == 0.5 and rollup.latency_avg == 10.0
