"""A collection and its entries, each a tool or a workflow, in the order its curators chose."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from dockyard.accounts.models import Organization
from dockyard.catalog.models import ShownInCatalog, Tool
from dockyard.db import Base
from dockyard.db.types import UTCDateTime, utcnow
from dockyard.workflows.models import Workflow


class Collection(ShownInCatalog, Base):
    """ "Our lab's aligners": a curated list inside an organization."""

    __tablename__ = "collections"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    #: In addresses and TRS labels, unique within the organization.
    name: Mapped[str] = mapped_column(String(40))
    display_name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    organization: Mapped[Organization] = relationship(lazy="joined")
    entries: Mapped[list[CollectionEntry]] = relationship(
        back_populates="collection",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="CollectionEntry.position",
    )

    __table_args__ = (
        Index("uq_collections_organization_name", organization_id, func.lower(name), unique=True),
    )


class CollectionEntry(ShownInCatalog, Base):
    """One place in a collection: a tool or a workflow (exactly one of the two)."""

    __tablename__ = "collection_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    collection_id: Mapped[int] = mapped_column(
        ForeignKey("collections.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    tool_id: Mapped[int | None] = mapped_column(
        ForeignKey("tools.id", ondelete="CASCADE"), default=None, index=True
    )
    workflow_id: Mapped[int | None] = mapped_column(
        ForeignKey("workflows.id", ondelete="CASCADE"), default=None, index=True
    )

    collection: Mapped[Collection] = relationship(back_populates="entries")
    tool: Mapped[Tool | None] = relationship(lazy="joined")
    workflow: Mapped[Workflow | None] = relationship(lazy="joined")

    __table_args__ = (
        CheckConstraint("(tool_id IS NULL) <> (workflow_id IS NULL)", name="one_tool_or_workflow"),
    )
