"""The record of each refresh: when, why, by which process, and how it ended."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from dockyard.db import Base
from dockyard.db.types import UTCDateTime, utcnow


class RefreshRun(Base):
    """One refresh of one tool: when, why, by which process, and how it ended."""

    __tablename__ = "refresh_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    tool_id: Mapped[int] = mapped_column(ForeignKey("tools.id", ondelete="CASCADE"), index=True)
    #: "manual", "schedule" or "webhook".
    trigger: Mapped[str] = mapped_column(String(16))
    worker: Mapped[str] = mapped_column(String(120))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    #: "running", "ok", "partial" or "failed".
    status: Mapped[str] = mapped_column(String(16), default="running")
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
