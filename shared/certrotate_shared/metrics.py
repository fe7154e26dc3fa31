"""Prometheus metrics of every service: the counters and histograms code records into, and the
gauges read from each service's database when /metrics is scraped.

The registry is the process's: in embedded mode the four services share one process, so the
orchestrator's /metrics shows all four (the per-service gauges carry a `service` label). No
label ever holds a client id, a rotation id or any other value without a bound.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

from prometheus_client import REGISTRY, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

# Clock seconds: a step lasts from a second (a SEPM call) to weeks (a propagation wait).
_STEP_BUCKETS = (
    1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 86400, 3 * 86400, 7 * 86400,
    14 * 86400, 30 * 86400,
)  # fmt: skip
_CALL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_HOST_BUCKETS = (0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800)

MESSAGES_HANDLED = Counter(
    "certrotate_messages_handled",
    "Messages a service handled (a redelivered duplicate is not counted)",
    ["service", "type"],
)
MESSAGES_DEAD_LETTERED = Counter(
    "certrotate_messages_dead_lettered",
    "Records a service parked in the dead-letter topic",
    ["service"],
)
OUTBOX_PUBLISHED = Counter(
    "certrotate_outbox_published", "Messages the outbox relay published", ["service"]
)
RELAY_LAG = Histogram(
    "certrotate_relay_lag_seconds",
    "From a message's commit to the outbox until the relay published it",
    ["service"],
    buckets=_CALL_BUCKETS,
)
STEP_DURATION = Histogram(
    "certrotate_rotation_step_duration_seconds",
    "How long a rotation step took, in clock seconds, by step and how it ended",
    ["step", "outcome"],
    buckets=_STEP_BUCKETS,
)
SEPM_REQUESTS = Counter(
    "certrotate_sepm_requests",
    "HTTP requests to SEPM's REST API by site, method and status (2xx, 401, 403, 429, 4xx, "
    "5xx, or error when no answer came)",
    ["site", "method", "status"],
)
SEPM_LATENCY = Histogram(
    "certrotate_sepm_request_duration_seconds",
    "Time SEPM's REST API took to answer, by site",
    ["site"],
    buckets=_CALL_BUCKETS,
)
HOST_OPERATIONS = Counter(
    "certrotate_host_operations",
    "Host operations (certificate install, service restart, partner changes) by kind, driver "
    "and outcome (ok, failed, retryable, operator_task)",
    ["kind", "driver", "outcome"],
)
HOST_OPERATION_DURATION = Histogram(
    "certrotate_host_operation_duration_seconds",
    "Time a host operation took, by kind and driver",
    ["kind", "driver"],
    buckets=_HOST_BUCKETS,
)


def sepm_status(status: int | str) -> str:
    """The bounded status label of one SEPM answer (or of a request that got none)."""
    if isinstance(status, str):
        return "error"
    if status in (401, 403, 429):
        return str(status)
    return f"{status // 100}xx"


class Gauges:
    """Gauge samples a scrape-time source adds; one family per name, whoever adds to it."""

    def __init__(self) -> None:
        self._families: dict[str, tuple[str, list[tuple[dict[str, str], float]]]] = {}

    def add(self, name: str, documentation: str, value: float, **labels: str) -> None:
        """Add one sample of gauge `name` with these labels."""
        self._families.setdefault(name, (documentation, []))[1].append((labels, float(value)))

    def families(self) -> list[Metric]:
        out: list[Metric] = []
        for name, (documentation, samples) in self._families.items():
            names = sorted(samples[0][0]) if samples else []
            family = GaugeMetricFamily(name, documentation, labels=names)
            for labels, value in samples:
                family.add_metric([labels[n] for n in names], value)
            out.append(family)
        return out


Source = Callable[[Gauges], Awaitable[None]]


class _ScrapeGauges(Collector):
    """What the sources read for the scrape in progress (collect() must be synchronous)."""

    def __init__(self) -> None:
        self.families: list[Metric] = []

    def collect(self) -> Iterable[Metric]:
        return list(self.families)

    def describe(self) -> Iterable[Metric]:
        return []  # names vary by service; registering must not run a scrape


_sources: dict[str, Source] = {}
_scrape_gauges = _ScrapeGauges()
REGISTRY.register(_scrape_gauges)
# A source that takes longer than this is left out of the scrape (and reported down).
SOURCE_TIMEOUT_S = 5.0


def add_source(key: str, source: Source) -> None:
    """Read `source` on every scrape of this process (a later source of the same key, such as
    a second replica in one test process, replaces it), until remove_source."""
    _sources[key] = source


def remove_source(key: str, source: Source) -> None:
    """Stop reading `source` (not a later one registered under the same key)."""
    if _sources.get(key) is source:
        del _sources[key]


async def exposition() -> bytes:
    """The text exposition of this process: instruments, then the sources read now."""
    gauges = Gauges()
    for key, source in list(_sources.items()):
        up = 1.0
        try:
            await asyncio.wait_for(source(gauges), SOURCE_TIMEOUT_S)
        except Exception as exc:
            up = 0.0
            log.warning("metrics source %s failed: %s", key, type(exc).__name__)
        gauges.add(
            "certrotate_metrics_source_up",
            "1 when the source's database gauges were read for this scrape, 0 when not",
            up,
            source=key,
        )
    # No await from here on: concurrent scrapes cannot see each other's gauges.
    _scrape_gauges.families = gauges.families()
    try:
        return generate_latest(REGISTRY)
    finally:
        _scrape_gauges.families = []


def sample_sum(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels` (tests, tools)."""
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += float(sample.value)
    return total
