"""What a refresh reads and reports: the stored snapshot, each tag's answer, the report."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from dockyard.errors import RegistryError
from dockyard.registries.credentials import StoredCredential
from dockyard.registries.manifests import ManifestHead, PlatformImage


@dataclass(frozen=True)
class Snapshot:
    """What is stored of a tool when its refresh begins."""

    tool_id: int
    path: str
    registry_id: str
    host: str
    repository: str
    tag_pattern: str | None
    credential: StoredCredential | None
    #: tag -> (digest, whether the stored images can be trusted as they are)
    known: dict[str, tuple[str | None, bool]]
    #: digest -> the trusted images a refresh stored for it (under any tag of the tool; never
    #: those of versions entered by hand)
    images: dict[str, list[PlatformImage]]
    #: The run this refresh records itself in.
    run_id: int
    #: The `next_refresh_at` the run set to hold the tool back from schedulers.
    hold: datetime


@dataclass
class TagResult:
    """What the registry answered for one tag."""

    tag: str
    head: ManifestHead | None = None
    images: list[PlatformImage] | None = None
    error: RegistryError | None = None


@dataclass
class RefreshReport:
    """What a refresh found and changed."""

    tool_id: int
    path: str
    status: str = "ok"
    message: str | None = None
    tags: int = 0
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=dict)
    #: For tools with a git source: references read, how many were unchanged, problems.
    sources: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return asdict(self)
