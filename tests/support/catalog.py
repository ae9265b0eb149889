"""Tools registered and published through the catalogue services, for the tests."""

from __future__ import annotations

from sqlalchemy.orm import Session

from dockyard.accounts.models import User
from dockyard.catalog import contents, services
from dockyard.catalog.models import Tool
from dockyard.catalog.services import Registration
from dockyard.registries.catalog import BUILTIN_REGISTRIES, Catalog


def register(
    session: Session, user: User, image: str = "quay.io/biocontainers/samtools", **kwargs: object
) -> Tool:
    return services.register_tool(session, CATALOG, user, Registration(image=image, **kwargs))  # type: ignore[arg-type]


def published(
    session: Session, user: User, image: str = "quay.io/biocontainers/samtools", **kwargs: object
) -> Tool:
    tool = register(session, user, image, **kwargs)
    contents.add_version(session, user, tool.id, "1.0")
    return services.publish(session, user, tool.id)


CATALOG = Catalog(BUILTIN_REGISTRIES)


DIGEST = "sha256:" + "a" * 64
