"""How dockyard's processes log: human lines (the default) or one JSON object per line
(`DOCKYARD_LOG_FORMAT=json`), each with the request id of the HTTP request or the job id of
the worker job it belongs to.

The ids live in context variables, set by the HTTP layer (`dockyard.observe`) and the job
runner (`dockyard.refresh.tasks`); a filter on the handler copies them onto every record,
uvicorn's and procrastinate's included. Nothing here logs a value it was not given: secrets
stay out because no caller passes one, and the access log's query strings are redacted by
`dockyard.boundary`.
"""

from __future__ import annotations

import json
import logging
import logging.config
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

LogFormat = Literal["text", "json"]

#: The id of the HTTP request being answered (also its `X-Request-ID` answer header).
request_id: ContextVar[str | None] = ContextVar("dockyard_request_id", default=None)
#: The id of the worker job being run.
job_id: ContextVar[int | None] = ContextVar("dockyard_job_id", default=None)

#: Attributes every LogRecord has: what is left is the caller's `extra`.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
#: What the filter adds, told above (or left out when None), and uvicorn's colours.
_OURS = {"ids", "request_id", "job_id", "color_message"}
_TEXT = "%(asctime)s %(levelname)s %(name)s%(ids)s %(message)s"


class ContextIds(logging.Filter):
    """Puts the current request id and job id on each record (`None` outside of one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        request, job = request_id.get(), job_id.get()
        ids = []
        if request:
            ids.append(f"request={request}")
        if job is not None:
            ids.append(f"job={job}")
        vars(record).update(
            request_id=request, job_id=job, ids=f" [{' '.join(ids)}]" if ids else ""
        )
        return True


class JsonLines(logging.Formatter):
    """One JSON object per record: time, level, logger, message, ids and the caller's extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("request_id", "job_id"):
            if getattr(record, key, None) is not None:
                entry[key] = getattr(record, key)
        access = record.args if record.name == "uvicorn.access" else None
        if isinstance(access, tuple) and len(access) == 5:
            client, method, path, version, status = access
            entry.update(client=client, method=method, path=path, status=status)
            entry["http_version"] = version
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in entry and key not in _OURS:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


@contextmanager
def in_job(job: int | None) -> Iterator[None]:
    """Log lines written inside carry this job id."""
    token = job_id.set(job)
    try:
        yield
    finally:
        job_id.reset(token)


def config(log_format: LogFormat, level: str) -> dict[str, Any]:
    """A `logging.config.dictConfig` for the root logger and uvicorn's (which uvicorn applies
    in each of its worker processes)."""
    formatter: dict[str, Any] = {"()": JsonLines} if log_format == "json" else {"format": _TEXT}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"ids": {"()": ContextIds}},
        "formatters": {"dockyard": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "dockyard",
                "filters": ["ids"],
            }
        },
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {
            name: {"handlers": [], "propagate": True, "level": level.upper()}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
    }


def configure(log_format: LogFormat, level: str) -> None:
    """Log this process as `config` says."""
    logging.config.dictConfig(config(log_format, level))
