"""Request metrics are tallied in the process and handed to prometheus_client in batches:
the exposition must be what counting each request on its own gives."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from printsrv.platform import observability
from printsrv.platform.observability import LATENCY_BUCKETS, RequestTally

SECONDS = [0.0004, 0.001, 0.0011, 0.003, 0.003, 0.049, 0.7, 2.5, 9.0, 11.0, 600.0]


def metrics(registry: CollectorRegistry) -> tuple[Counter, Histogram]:
    counter = Counter("t_requests", "t", ["api", "method", "route", "status"], registry=registry)
    histogram = Histogram("t_seconds", "t", ["api", "route"], buckets=LATENCY_BUCKETS,
                          registry=registry)  # fmt: skip
    return counter, histogram


def exposed(registry: CollectorRegistry) -> list[str]:
    """The exposition's samples, without the `_created` times (when the metric was made)."""
    text = generate_latest(registry).decode()
    return [line for line in text.splitlines() if "_created" not in line]


def test_a_flushed_tally_reads_as_one_observation_per_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    expected, tallied = CollectorRegistry(), CollectorRegistry()
    counter, histogram = metrics(expected)
    for seconds in SECONDS:
        counter.labels("rest", "GET", "/jobs/{key}", "200").inc()
        histogram.labels("rest", "/jobs/{key}").observe(seconds)
    counter.labels("rest", "GET", "unmatched", "404").inc()
    histogram.labels("rest", "unmatched").observe(0.002)

    requests, latency = metrics(tallied)
    monkeypatch.setattr(observability, "HTTP_REQUESTS", requests)
    monkeypatch.setattr(observability, "HTTP_LATENCY", latency)
    tally = RequestTally()

    async def answer_all() -> None:
        for seconds in SECONDS:
            tally.add("rest", "GET", "/jobs/{key}", 200, seconds)
        tally.add("rest", "GET", "unmatched", 404, 0.002)

    asyncio.run(answer_all())
    assert exposed(tallied) != exposed(expected)  # nothing before the flush
    tally.flush()
    assert exposed(tallied) == exposed(expected)
    tally.flush()  # nothing pending: nothing counted twice
    assert exposed(tallied) == exposed(expected)


def test_the_tally_flushes_itself_within_a_second(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = CollectorRegistry()
    requests, latency = metrics(registry)
    monkeypatch.setattr(observability, "HTTP_REQUESTS", requests)
    monkeypatch.setattr(observability, "HTTP_LATENCY", latency)
    monkeypatch.setattr(observability, "FLUSH_INTERVAL", 0.05)
    tally = RequestTally()

    async def answer_then_wait() -> None:
        tally.add("jsonrpc", "POST", "/jsonrpc/v1", 200, 0.001)
        await asyncio.sleep(0.2)

    asyncio.run(answer_then_wait())
    labels = {"api": "jsonrpc", "method": "POST", "route": "/jsonrpc/v1", "status": "200"}
    assert registry.get_sample_value("t_requests_total", labels) == 1.0
