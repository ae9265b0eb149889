"""Liveness and readiness probes, and the Prometheus metrics, for operators and orchestrators."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterable
from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Connection, Engine, func, select, text
from sqlalchemy.exc import SQLAlchemyError

from dockyard import db, metrics
from dockyard.access.models import AccessRequest, OutboxEmail
from dockyard.catalog.models import Tool
from dockyard.db.types import utcnow
from dockyard.errors import AuthenticationRequired, NotFound
from dockyard.http import ContextDep
from dockyard.refresh.models import RefreshRun

router = APIRouter(tags=["operations"])
log = logging.getLogger("dockyard.metrics")

#: A worker whose last heartbeat is older than this is not counted as alive.
WORKER_SILENCE = timedelta(seconds=60)


@router.get("/healthz", response_class=PlainTextResponse)
def healthz() -> str:
    """The process is alive."""
    return "ok"


@router.get("/readyz")
def readyz(context: ContextDep) -> dict[str, str]:
    """The database answers (503 with the reason when it does not)."""
    db.ping(context.engine)
    return {"status": "ready", "database": context.engine.dialect.name}


@router.get("/metrics", include_in_schema=False)
def metrics_text(request: Request, context: ContextDep) -> Response:
    """Prometheus's text format: this process's series and the database's figures."""
    settings = context.settings
    if settings.metrics_port is not None:
        raise NotFound(
            f"metrics are served on their own port ({settings.metrics_host}:"
            f"{settings.metrics_port}, DOCKYARD_METRICS_PORT), not on this one"
        )
    if settings.metrics_token is not None:
        expected = f"Bearer {settings.metrics_token.get_secret_value()}"
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise AuthenticationRequired(
                "/metrics needs the bearer token set in DOCKYARD_METRICS_TOKEN"
            )
    body, content_type = metrics.exposition([DatabaseFigures(context.engine)])
    return Response(body, media_type=content_type)


class DatabaseFigures(Collector):
    """What the database knows, read at each scrape: the same in every process."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily("dockyard_database_up", "Whether the database answered the scrape.")
        try:
            families = list(self._families())
        except SQLAlchemyError as error:
            log.warning("metrics: the database did not answer: %s", type(error).__name__)
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        return [up, *families]

    def _families(self) -> Iterable[Metric]:
        now = utcnow()
        with self.engine.connect() as connection:
            tools = GaugeMetricFamily(
                "dockyard_tools", "Tools in the catalogue.", labels=["published", "private"]
            )
            rows = connection.execute(
                select(Tool.published, Tool.private, func.count()).group_by(
                    Tool.published, Tool.private
                )
            )
            for published, private, count in rows:
                tools.add_metric([_bool(published), _bool(private)], count)
            yield tools
            failing = connection.execute(
                select(func.count()).select_from(Tool).where(Tool.refresh_status == "failed")
            ).scalar_one()
            yield _gauge(
                "dockyard_tools_refresh_failing", "Tools whose last refresh failed.", failing
            )
            due = connection.execute(
                select(func.count()).select_from(Tool).where(Tool.next_refresh_at <= now)
            ).scalar_one()
            yield _gauge("dockyard_tools_refresh_due", "Tools due for a refresh now.", due)
            runs = GaugeMetricFamily(
                "dockyard_refresh_runs",
                "Refresh runs on record, by status (running, ok, partial, failed).",
                labels=["status"],
            )
            last = GaugeMetricFamily(
                "dockyard_refresh_last_finished_timestamp_seconds",
                "When the last refresh run of each status finished (Unix time).",
                labels=["status"],
            )
            recorded = connection.execute(
                select(RefreshRun.status, func.count(), func.max(RefreshRun.finished_at)).group_by(
                    RefreshRun.status
                )
            )
            for status, count, finished in recorded:
                runs.add_metric([status], count)
                if finished is not None:
                    last.add_metric([status], finished.timestamp())
            yield runs
            yield last
            pending = connection.execute(
                select(func.count())
                .select_from(AccessRequest)
                .where(AccessRequest.status == "pending")
            ).scalar_one()
            yield _gauge(
                "dockyard_access_requests_pending", "Access requests awaiting a decision.", pending
            )
            unsent = connection.execute(
                select(func.count()).select_from(OutboxEmail).where(OutboxEmail.status == "pending")
            ).scalar_one()
            yield _gauge("dockyard_mail_unsent", "Emails waiting in the outbox.", unsent)
            if connection.dialect.name == "postgresql":
                yield from _queue(connection)


def _queue(connection: Connection) -> Iterable[Metric]:
    """procrastinate's job queue (PostgreSQL deployments)."""
    jobs = GaugeMetricFamily(
        "dockyard_queue_jobs", "Jobs queued (todo) or running (doing).", labels=["queue", "status"]
    )
    rows = connection.execute(
        text(
            "SELECT queue_name, status::text, count(*) FROM procrastinate_jobs "
            "WHERE status IN ('todo', 'doing') GROUP BY 1, 2"
        )
    )
    for queue, status, count in rows:
        jobs.add_metric([queue, status], count)
    yield jobs
    oldest = GaugeMetricFamily(
        "dockyard_queue_oldest_job_age_seconds",
        "How long the oldest job ready to run has waited.",
        labels=["queue"],
    )
    rows = connection.execute(
        text(
            "SELECT j.queue_name, EXTRACT(EPOCH FROM now() - min(e.at)) "
            "FROM procrastinate_jobs j JOIN procrastinate_events e "
            "ON e.job_id = j.id AND e.type = 'deferred' "
            "WHERE j.status = 'todo' AND (j.scheduled_at IS NULL OR j.scheduled_at <= now()) "
            "GROUP BY 1"
        )
    )
    for queue, age in rows:
        oldest.add_metric([queue], float(age))
    yield oldest
    alive = connection.execute(
        text("SELECT count(*) FROM procrastinate_workers WHERE last_heartbeat > now() - :silence"),
        {"silence": WORKER_SILENCE},
    ).scalar_one()
    yield _gauge(
        "dockyard_workers_alive", "Workers that sent a heartbeat in the last minute.", alive
    )


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _bool(value: bool) -> str:
    return "true" if value else "false"
