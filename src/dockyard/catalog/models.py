"""Tools, their maintainers, versions, images and files."""

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
    event,
    false,
    func,
    inspect,
    update,
)
from sqlalchemy.orm import (
    InstanceState,
    Mapped,
    Session,
    SessionTransaction,
    UOWTransaction,
    mapped_column,
    relationship,
)

from dockyard.accounts.models import Organization, User
from dockyard.db import Base
from dockyard.db.types import UTCDateTime, utcnow


class ShownInCatalog:
    """A model whose rows published answers show: changing one bumps the catalog generation
    (the TRS cache compares it). Other packages' models (workflows) mix it in."""


class Tool(ShownInCatalog, Base):
    """An image in a registry, registered by its maintainers; `path` is its TRS id."""

    __tablename__ = "tools"

    id: Mapped[int] = mapped_column(primary_key=True)
    path: Mapped[str] = mapped_column(String(600))
    registry_id: Mapped[str] = mapped_column(String(40), index=True)
    host: Mapped[str] = mapped_column(String(255))
    repository: Mapped[str] = mapped_column(String(255))
    toolname: Mapped[str | None] = mapped_column(String(256), default=None)
    #: The first component of the repository: the user or organization that owns the image.
    namespace: Mapped[str] = mapped_column(String(255))
    #: The last component of the repository, or the toolname when there is one.
    name: Mapped[str] = mapped_column(String(256))
    private: Mapped[bool] = mapped_column(Boolean, default=False)
    published: Mapped[bool] = mapped_column(Boolean, default=False)
    maintainer_email: Mapped[str | None] = mapped_column(String(254), default=None)
    description: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    #: Words that search matches: path parts, registry, description. Kept by the services.
    search_text: Mapped[str] = mapped_column(Text, default="")
    #: Sorted, comma-framed descriptor types of visible versions (",CWL,WDL,"), for filtering.
    descriptor_types: Mapped[str] = mapped_column(String(64), default="")
    default_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("tool_versions.id", ondelete="SET NULL", use_alter=True), default=None
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    #: Only tags that match this regular expression become versions (None: every tag).
    tag_pattern: Mapped[str | None] = mapped_column(String(500), default=None)
    refreshed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    #: "ok", "partial" (some tags had problems) or "failed" (the registry did not answer).
    refresh_status: Mapped[str | None] = mapped_column(String(16), default=None)
    refresh_message: Mapped[str | None] = mapped_column(Text, default=None)
    #: When the scheduler next refreshes the tool (None: as soon as it can).
    next_refresh_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None, index=True)
    #: How often workflow engines and users fetched it to run (TRS descriptors, pull lines).
    uses: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    #: How many users starred it (kept with the stars by `catalog.services.star`).
    stars: Mapped[int] = mapped_column(Integer, default=0, server_default="0", index=True)
    #: SHA-256 of the secret that registry push webhooks must present.
    webhook_secret_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    #: The organization it belongs to, whose admins and maintainers maintain it too.
    organization_id: Mapped[int | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="SET NULL"), default=None, index=True
    )
    #: Words a maintainer tags it with ("alignment", "long-reads"), comma-framed
    #: (",alignment,long-reads,") so a label matches with one LIKE.
    labels: Mapped[str] = mapped_column(String(500), default="", server_default="")

    organization: Mapped[Organization | None] = relationship(lazy="joined")
    maintainers: Mapped[list[ToolMaintainer]] = relationship(
        back_populates="tool",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="ToolMaintainer.id",
    )
    versions: Mapped[list[ToolVersion]] = relationship(
        back_populates="tool",
        cascade="all, delete-orphan",
        passive_deletes=True,
        foreign_keys="ToolVersion.tool_id",
        order_by="ToolVersion.id",
    )
    default_version: Mapped[ToolVersion | None] = relationship(
        foreign_keys=[default_version_id], post_update=True
    )

    __table_args__ = (
        Index("uq_tools_path_lower", func.lower(path), unique=True),
        Index("ix_tools_name_path", name, path),
        # The TRS filters `organization`, `registry` and `toolname` (see bench/plans.py).
        Index("ix_tools_namespace", namespace),
        Index("ix_tools_host_lower", func.lower(host)),
        Index("ix_tools_toolname", toolname),
    )

    def is_maintained_by(self, user: User | None) -> bool:
        """True when `user` is one of the tool's maintainers, or an admin or maintainer of
        its organization."""
        if user is None:
            return False
        if any(m.user_id == user.id for m in self.maintainers):
            return True
        return self.organization is not None and self.organization.maintained_by(user)

    @property
    def label_list(self) -> list[str]:
        """Its labels, in the order they were given."""
        return [label for label in self.labels.split(",") if label]


class ToolMaintainer(ShownInCatalog, Base):
    """A user who may change a tool; the first one is the user who registered it."""

    __tablename__ = "tool_maintainers"

    id: Mapped[int] = mapped_column(primary_key=True)
    tool_id: Mapped[int] = mapped_column(ForeignKey("tools.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    tool: Mapped[Tool] = relationship(back_populates="maintainers")
    user: Mapped[User] = relationship(lazy="joined")

    __table_args__ = (UniqueConstraint("tool_id", "user_id"),)


class ToolVersion(ShownInCatalog, Base):
    """One tag of the tool's image, with its images and files."""

    __tablename__ = "tool_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    tool_id: Mapped[int] = mapped_column(ForeignKey("tools.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    #: What changed in this version, in the maintainer's words (TRS 2.1 `description`).
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: True once a refresh found this tag in the registry; such versions follow the registry.
    from_registry: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: The digest the tag points to (an index for multi-platform tags), and since when.
    digest: Mapped[str | None] = mapped_column(String(140), default=None)
    media_type: Mapped[str | None] = mapped_column(String(120), default=None)
    digest_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    #: When the tag was last pushed, where the registry's own API says (Docker Hub, Quay).
    pushed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    #: What went wrong reading this tag at the last refresh (None when all went well).
    problem: Mapped[str | None] = mapped_column(Text, default=None)
    problem_code: Mapped[str | None] = mapped_column(String(40), default=None)
    #: For tools with a git source: the reference and commit the files were read from, when,
    #: and what went wrong last time (the files are kept then). Such files are read-only.
    source_reference: Mapped[str | None] = mapped_column(String(255), default=None)
    source_commit: Mapped[str | None] = mapped_column(String(64), default=None)
    source_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    source_problem: Mapped[str | None] = mapped_column(Text, default=None)

    tool: Mapped[Tool] = relationship(back_populates="versions", foreign_keys=[tool_id])
    images: Mapped[list[VersionImage]] = relationship(
        back_populates="version",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="VersionImage.id",
    )
    files: Mapped[list[VersionFile]] = relationship(
        back_populates="version",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="VersionFile.path",
    )
    digest_history: Mapped[list[DigestChange]] = relationship(
        back_populates="version",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="DigestChange.id",
    )

    __table_args__ = (UniqueConstraint("tool_id", "name"),)


class DigestChange(Base):
    """A digest a tag pointed to before it moved, and when it moved."""

    __tablename__ = "version_digest_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(
        ForeignKey("tool_versions.id", ondelete="CASCADE"), index=True
    )
    digest: Mapped[str] = mapped_column(String(140))
    since: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    replaced_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    version: Mapped[ToolVersion] = relationship(back_populates="digest_history")


class ToolStar(Base):
    """A user's star on a tool: a bookmark that others see counted."""

    __tablename__ = "tool_stars"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    tool_id: Mapped[int] = mapped_column(
        ForeignKey("tools.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ToolCredential(Base):
    """A maintainer's registry credentials for one tool; the secret is encrypted at rest."""

    __tablename__ = "tool_credentials"

    id: Mapped[int] = mapped_column(primary_key=True)
    tool_id: Mapped[int] = mapped_column(ForeignKey("tools.id", ondelete="CASCADE"), unique=True)
    #: "basic" (username and password or token) or "aws" (access key id and secret key).
    kind: Mapped[str] = mapped_column(String(16))
    username: Mapped[str] = mapped_column(String(255))
    secret: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class VersionImage(ShownInCatalog, Base):
    """One platform's image behind a version's tag."""

    __tablename__ = "version_images"

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(
        ForeignKey("tool_versions.id", ondelete="CASCADE"), index=True
    )
    digest: Mapped[str] = mapped_column(String(140))
    os: Mapped[str | None] = mapped_column(String(40), default=None)
    architecture: Mapped[str | None] = mapped_column(String(40), default=None)
    variant: Mapped[str | None] = mapped_column(String(40), default=None)
    size: Mapped[int | None] = mapped_column(BigInteger, default=None)
    created: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    version: Mapped[ToolVersion] = relationship(back_populates="images")


class VersionFile(ShownInCatalog, Base):
    """A descriptor, test parameter file, Dockerfile or other file of a version."""

    __tablename__ = "version_files"

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("tool_versions.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(String(1024))
    file_type: Mapped[str] = mapped_column(String(32))
    descriptor_type: Mapped[str | None] = mapped_column(String(16), default=None)
    content: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)

    version: Mapped[ToolVersion] = relationship(back_populates="files")

    __table_args__ = (UniqueConstraint("version_id", "path"),)


class CatalogState(Base):
    """One row whose `generation` grows with every committed change that readers can see.

    Caches of published answers (the TRS response cache) compare it instead of the data.
    """

    __tablename__ = "catalog_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    generation: Mapped[int] = mapped_column(BigInteger, default=0)


#: Attributes that no published answer shows; changing only these leaves the generation.
_UNSHOWN = frozenset(
    {
        "checked_at",
        "refreshed_at",
        "refresh_status",
        "refresh_message",
        "next_refresh_at",
        "webhook_secret_hash",
        "uses",
        "stars",
        "problem",
        "problem_code",
        "source_checked_at",
        "pushed_at",
        "email",
        "password_hash",
        "is_active",
        "resolved_at",
        "webhook_secret",
    }
)
_SHOWN_CLASSES = (ShownInCatalog, User)
_BUMPED = "dockyard.catalog_bumped"


@event.listens_for(Session, "before_flush")
def _bump_catalog_generation(session: Session, _flush: UOWTransaction, _instances: Any) -> None:
    """Bump the generation once per transaction that changes something readers see."""
    if session.info.get(_BUMPED):
        return
    if any(_shows(item, changed=False) for item in (*session.new, *session.deleted)) or any(
        _shows(item, changed=True) for item in session.dirty
    ):
        session.execute(
            update(CatalogState)
            .where(CatalogState.id == 1)
            .values(generation=CatalogState.generation + 1)
        )
        session.info[_BUMPED] = True


@event.listens_for(Session, "after_transaction_end")
def _forget_bump(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the outermost transaction, not a flush's own
        session.info.pop(_BUMPED, None)


def _shows(item: object, *, changed: bool) -> bool:
    if not isinstance(item, _SHOWN_CLASSES):
        return False
    if not changed:
        return True
    state: InstanceState[Any] = inspect(item)
    # Only attributes set since the load have history (`committed_state` holds their old
    # values), so only those are asked whether they really changed.
    return any(
        key not in _UNSHOWN and state.attrs[key].history.has_changes()
        for key in state.committed_state
    )
