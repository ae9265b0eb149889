"""Prometheus metrics of this process: what its HTTP server, refreshes and registry client did.

Every series is named `dockyard_…`. A process counts what it does itself; several web
processes of one `dockyard serve --workers N` add up through prometheus-client's
multiprocess mode (`PROMETHEUS_MULTIPROC_DIR`, which `serve` sets to a fresh directory when it
starts more than one process). What the database knows (tools failing, jobs queued, access
requests pending) is read when scraped, by the collector `dockyard.health` adds, so every
process tells the same figures for it.

Labels are bounded: route templates (never raw paths), registry ids and hosts, HTTP methods
and status codes, outcomes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

#: Where processes that add up write their figures (prometheus-client reads it at import).
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

_FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_SLOW = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0)

HTTP_REQUESTS = Counter(
    "dockyard_http_requests_total",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "dockyard_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route template.",
    ["method", "route"],
    buckets=_FAST,
)
REFRESHES = Counter(
    "dockyard_refreshes_total",
    "Tool refreshes finished in this process, by registry id and outcome (ok, partial, failed).",
    ["registry", "outcome"],
)
REFRESH_DURATION = Histogram(
    "dockyard_refresh_duration_seconds",
    "Time one tool's refresh took, by registry id and outcome.",
    ["registry", "outcome"],
    buckets=_SLOW,
)
REFRESH_TAGS_SEEN = Counter(
    "dockyard_refresh_tags_seen_total",
    "Tags listed by refreshes, by registry id.",
    ["registry"],
)
REFRESH_TAGS_CHANGED = Counter(
    "dockyard_refresh_tags_changed_total",
    "Versions refreshes added, updated, moved (a tag to a new digest) or removed.",
    ["registry", "change"],
)
WORKFLOW_REFRESHES = Counter(
    "dockyard_workflow_refreshes_total",
    "Workflow refreshes finished in this process, by outcome (ok, partial, failed).",
    ["outcome"],
)
REGISTRY_REQUESTS = Counter(
    "dockyard_registry_requests_total",
    "Requests to container registries, by host, method and status ('error': no answer).",
    ["host", "method", "status"],
)
REGISTRY_DURATION = Histogram(
    "dockyard_registry_request_duration_seconds",
    "Time a registry took to answer one request, by host.",
    ["host"],
    buckets=_FAST,
)
REGISTRY_THROTTLED = Counter(
    "dockyard_registry_throttled_total",
    "Answers that asked dockyard to slow down (429, or 503 with Retry-After), by host.",
    ["host"],
)
REGISTRY_ALLOWANCE = Gauge(
    "dockyard_registry_rate_limit_remaining",
    "Pulls left in a registry's allowance (its ratelimit-remaining header), as last told.",
    ["host"],
    multiprocess_mode="mostrecent",
)
TRS_CACHE = Counter(
    "dockyard_trs_cache_requests_total",
    "Anonymous TRS reads the response cache answered (hit) or passed on (miss).",
    ["result"],
)


def multiprocess_dir() -> str | None:
    """The directory processes that add up share, if this process is one of them."""
    return os.environ.get(MULTIPROCESS_ENV) or None


def exposition(extra: Iterable[Collector] = ()) -> tuple[bytes, str]:
    """The text format of every series this process (or its siblings) and `extra` tell."""
    return generate_latest(registry_of(extra)), CONTENT_TYPE_LATEST


def registry_of(extra: Iterable[Collector] = ()) -> CollectorRegistry:
    """This process's series (or, in multiprocess mode, every sibling's) and `extra`'s."""
    registry = CollectorRegistry(auto_describe=False)
    directory = multiprocess_dir()
    if directory:
        MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    else:
        registry.register(_ThisProcess())
    for collector in extra:
        registry.register(collector)
    return registry


class _ThisProcess(Collector):
    """The process's own series (the default registry), beside collectors of one scrape."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()
