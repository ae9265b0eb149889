"""Workflows from git, their maintainers, versions (branches and tags), files and images."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from dockyard.accounts.models import Organization, User
from dockyard.catalog.models import ShownInCatalog
from dockyard.db import Base
from dockyard.db.types import UTCDateTime, utcnow


class Workflow(ShownInCatalog, Base):
    """A workflow in a git repository; `path` is its TRS id after `#workflow/`."""

    __tablename__ = "workflows"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: `{host}/{namespace}/{repository}`, with `/{name}` for a named workflow.
    path: Mapped[str] = mapped_column(String(800))
    git_url: Mapped[str] = mapped_column(String(1024))
    host: Mapped[str] = mapped_column(String(255))
    namespace: Mapped[str] = mapped_column(String(255))
    repository: Mapped[str] = mapped_column(String(255))
    #: The name `.dockstore.yml` (or the maintainer) gives it; None for the repository's only one.
    name: Mapped[str | None] = mapped_column(String(256), default=None)
    descriptor_type: Mapped[str] = mapped_column(String(16))
    primary_descriptor_path: Mapped[str] = mapped_column(String(1024))
    test_parameter_files: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: Registered from the repository's `.dockstore.yml`: its entry decides paths per version.
    from_dockstore_yml: Mapped[bool] = mapped_column(Boolean, default=False)
    #: `{"branches": [...], "tags": [...]}` of `.dockstore.yml`; empty lists admit every one.
    filters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    authors: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    description: Mapped[str] = mapped_column(Text, default="")
    published: Mapped[bool] = mapped_column(Boolean, default=False)
    search_text: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    refreshed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    #: "ok", "partial" (some versions had problems) or "failed" (git did not answer).
    refresh_status: Mapped[str | None] = mapped_column(String(16), default=None)
    refresh_message: Mapped[str | None] = mapped_column(Text, default=None)
    next_refresh_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None, index=True)
    #: The secret GitHub signs push webhooks with (HMAC) and GitLab sends, sealed with the
    #: instance key: checking a signature needs the secret itself, not a digest of it.
    webhook_secret: Mapped[str | None] = mapped_column(Text, default=None)

    #: The organization it belongs to, whose admins and maintainers maintain it too.
    organization_id: Mapped[int | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="SET NULL"), default=None, index=True
    )
    organization: Mapped[Organization | None] = relationship(lazy="joined")
    maintainers: Mapped[list[WorkflowMaintainer]] = relationship(
        back_populates="workflow",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="WorkflowMaintainer.id",
    )
    versions: Mapped[list[WorkflowVersion]] = relationship(
        back_populates="workflow",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="WorkflowVersion.id",
    )

    __table_args__ = (Index("uq_workflows_path_lower", func.lower(path), unique=True),)

    def is_maintained_by(self, user: User | None) -> bool:
        """True when `user` is one of the workflow's maintainers, or an admin or maintainer
        of its organization."""
        if user is None:
            return False
        if any(m.user_id == user.id for m in self.maintainers):
            return True
        return self.organization is not None and self.organization.maintained_by(user)


class WorkflowMaintainer(ShownInCatalog, Base):
    """A user who may change a workflow; the first one registered it."""

    __tablename__ = "workflow_maintainers"

    id: Mapped[int] = mapped_column(primary_key=True)
    workflow_id: Mapped[int] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    workflow: Mapped[Workflow] = relationship(back_populates="maintainers")
    user: Mapped[User] = relationship(lazy="joined")

    __table_args__ = (UniqueConstraint("workflow_id", "user_id"),)


class WorkflowVersion(ShownInCatalog, Base):
    """One branch or tag of the workflow's repository, as last read (or as frozen)."""

    __tablename__ = "workflow_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    workflow_id: Mapped[int] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    #: "branch" or "tag".
    reference_type: Mapped[str] = mapped_column(String(8))
    commit: Mapped[str | None] = mapped_column(String(64), default=None)
    #: The descriptor path this version was read from (`.dockstore.yml` may change it).
    primary_descriptor_path: Mapped[str | None] = mapped_column(String(1024), default=None)
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    frozen: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    frozen_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    #: What went wrong at the last read (files and images are then those of the read before).
    problem: Mapped[str | None] = mapped_column(Text, default=None)
    #: Galaxy's tool steps (`tool_id`, `version`, `repository`, `changeset`, `step`, `file`,
    #: `line`): a `.ga` file names tools, not images.
    tools: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)

    workflow: Mapped[Workflow] = relationship(back_populates="versions")
    files: Mapped[list[WorkflowFile]] = relationship(
        back_populates="version",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="WorkflowFile.path",
    )
    images: Mapped[list[WorkflowImage]] = relationship(
        back_populates="version",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="WorkflowImage.position",
    )

    __table_args__ = (UniqueConstraint("workflow_id", "name"),)


class WorkflowFile(ShownInCatalog, Base):
    """A descriptor, test parameter file or other file of a workflow version."""

    __tablename__ = "workflow_files"

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("workflow_versions.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(String(1024))
    file_type: Mapped[str] = mapped_column(String(32))
    #: The workflow's language for its descriptors and test files (as tools' files have it).
    descriptor_type: Mapped[str | None] = mapped_column(String(16), default=None)
    content: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)

    version: Mapped[WorkflowVersion] = relationship(back_populates="files")

    __table_args__ = (UniqueConstraint("version_id", "path"),)


class WorkflowImage(ShownInCatalog, Base):
    """A container image a version's descriptors name, where, and what it resolved to."""

    __tablename__ = "workflow_images"

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(
        ForeignKey("workflow_versions.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    #: The reference as written (constants evaluated), or the expression only a run knows.
    reference: Mapped[str] = mapped_column(Text)
    file: Mapped[str] = mapped_column(String(1024))
    line: Mapped[int] = mapped_column(Integer)
    #: The full reference, None when unevaluable; the registry's id in the catalog.
    image: Mapped[str | None] = mapped_column(String(1024), default=None)
    registry_id: Mapped[str | None] = mapped_column(String(40), default=None)
    #: "docker" or "singularity" for an engine's alternative; None for every engine.
    engine: Mapped[str | None] = mapped_column(String(16), default=None)
    digest: Mapped[str | None] = mapped_column(String(140), default=None)
    #: The digest first resolved for this version's files: a different one later means the
    #: tag moved under the workflow.
    first_digest: Mapped[str | None] = mapped_column(String(140), default=None)
    #: "os/architecture[/variant]" of each image behind the reference.
    platforms: Mapped[list[str]] = mapped_column(JSON, default=list)
    size: Mapped[int | None] = mapped_column(BigInteger, default=None)
    #: When the image was built, as its configuration says (TRS `ImageData.updated`).
    created: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    private: Mapped[bool] = mapped_column(Boolean, default=False)
    #: What reading the descriptors found (no tag, an unknown registry, unevaluable).
    read_problems: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: What resolving it in the registry found (not found, private, the tag moved).
    resolve_problems: Mapped[list[str]] = mapped_column(JSON, default=list)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    version: Mapped[WorkflowVersion] = relationship(back_populates="images")
