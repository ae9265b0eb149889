"""Workflows: the one place their rules are enforced, for the API, the CLI and the web UI.

They follow the tools' rules: an unpublished workflow exists only for its maintainers and
admins (everyone else gets "not found"), only maintainers change it, and publishing needs a
version that was read without a problem. A frozen version's files and image digests are
never changed again. Services flush and never commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, CompoundSelect, func, select, true, tuple_
from sqlalchemy.orm import Session, selectinload

from dockyard.accounts.models import User
from dockyard.accounts.organizations import (
    get_organization,
    maintaining_organizations,
    require_maintainer,
)
from dockyard.catalog.models import Tool
from dockyard.catalog.services import can_view as can_view_tool
from dockyard.db.types import utcnow
from dockyard.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from dockyard.registries.reference import parse_reference
from dockyard.workflows.dockstore_yml import Author
from dockyard.workflows.models import (
    Workflow,
    WorkflowImage,
    WorkflowMaintainer,
    WorkflowVersion,
)
from dockyard.workflows.rules import TRS_PREFIX, Location, WorkflowSpec

#: Loader options that bring each version's files and images with the workflow.
VERSION_CONTENTS = (
    selectinload(Workflow.versions).selectinload(WorkflowVersion.files),
    selectinload(Workflow.versions).selectinload(WorkflowVersion.images),
)


def trs_id(workflow: Workflow) -> str:
    """The workflow's TRS id: `#workflow/{path}`."""
    return TRS_PREFIX + workflow.path


# --- visibility ---------------------------------------------------------------------------


def can_view(workflow: Workflow, user: User | None) -> bool:
    """Published workflows for everyone, the rest for maintainers and admins."""
    return (
        workflow.published
        or (user is not None and user.is_admin)
        or workflow.is_maintained_by(user)
    )


def visible_workflow(session: Session, user: User | None, workflow_id: int) -> Workflow:
    """The workflow, if the caller may see it; otherwise `NotFound`, whether or not it exists."""
    workflow = session.get(Workflow, workflow_id)
    if workflow is None or not can_view(workflow, user):
        raise NotFound(f"no workflow with id {workflow_id}")
    return workflow


def workflow_by_path(session: Session, user: User | None, path: str) -> Workflow:
    """The visible workflow whose path this is (case-insensitively), with its contents."""
    workflow = first_visible_workflow(session, user, [path])
    if workflow is None:
        raise NotFound(f"no workflow with path {path!r}")
    return workflow


def first_visible_workflow(
    session: Session, user: User | None, paths: Sequence[str]
) -> Workflow | None:
    """Of the workflows at these paths (case-insensitively), the first in `paths` the caller
    may see, with its contents: one query, however many paths."""
    wanted = [path.lower() for path in paths]
    if not wanted:
        return None
    found = session.scalars(
        select(Workflow)
        .where(func.lower(Workflow.path).in_(wanted))
        .options(selectinload(Workflow.maintainers), *VERSION_CONTENTS)
    )
    visible = {w.path.lower(): w for w in found if can_view(w, user)}
    return next((visible[path] for path in wanted if path in visible), None)


def changeable_workflow(session: Session, user: User, workflow_id: int) -> Workflow:
    """The workflow, if the caller maintains it."""
    workflow = visible_workflow(session, user, workflow_id)
    if not workflow.is_maintained_by(user):
        raise PermissionDenied(f"only the maintainers of {trs_id(workflow)} can change it")
    return workflow


def visible_versions(workflow: Workflow, user: User | None) -> list[WorkflowVersion]:
    """The versions the caller may see: hidden ones only for maintainers and admins."""
    if workflow.is_maintained_by(user) or (user is not None and user.is_admin):
        return list(workflow.versions)
    return [version for version in workflow.versions if not version.hidden]


def visible_version(workflow: Workflow, user: User | None, name: str) -> WorkflowVersion:
    """One version the caller may see, by name."""
    for version in visible_versions(workflow, user):
        if version.name == name:
            return version
    raise NotFound(f"{trs_id(workflow)} has no version {name!r}")


def visible_workflows(
    session: Session, user: User | None, *, mine: bool = False, path: str | None = None
) -> list[Workflow]:
    """Every workflow the caller may see (or maintains, with `mine`), by path; only the one
    at `path` (case-insensitively) when given."""
    query = select(Workflow).options(selectinload(Workflow.maintainers)).order_by(Workflow.path)
    if path is not None:
        query = query.where(func.lower(Workflow.path) == path.lower())
    if mine:
        if user is None:
            return []
        query = query.where(Workflow.id.in_(maintained_workflow_ids(user)))
    else:
        query = query.where(workflows_visible_to(user))
    return list(session.scalars(query))


# --- registration and changes ---------------------------------------------------------------


@dataclass(frozen=True)
class Registration:
    """One workflow to register, and what its repository's `.dockstore.yml` says of it."""

    git_url: str
    location: Location
    spec: WorkflowSpec
    from_dockstore_yml: bool = False
    authors: tuple[Author, ...] = ()
    description: str = ""
    #: `.dockstore.yml`'s `publish`: True publishes once a version was read, False never.
    publish: bool | None = None


def register(session: Session, user: User, registrations: Sequence[Registration]) -> list[Workflow]:
    """Register workflows of one repository; the caller becomes their first maintainer.

    All or none: a path already taken refuses the lot with `Conflict`.
    """
    if not registrations:
        raise InvalidInput("the repository declares no workflow to register")
    paths = [r.location.path(r.spec.name) for r in registrations]
    taken = session.scalars(
        select(Workflow.path).where(func.lower(Workflow.path).in_([p.lower() for p in paths]))
    ).all()
    if taken:
        raise Conflict(f"{TRS_PREFIX}{taken[0]} is registered already")
    workflows = []
    for registration, path in zip(registrations, paths, strict=True):
        spec = registration.spec
        workflow = Workflow(
            path=path,
            git_url=registration.git_url,
            host=registration.location.host,
            namespace=registration.location.namespace,
            repository=registration.location.repository,
            name=spec.name,
            descriptor_type=spec.descriptor_type.value,
            primary_descriptor_path=spec.primary_descriptor_path,
            test_parameter_files=list(spec.test_parameter_files),
            from_dockstore_yml=registration.from_dockstore_yml,
            filters={"branches": list(spec.filters.branches), "tags": list(spec.filters.tags)},
            authors=[_author(a) for a in registration.authors],
            description=registration.description,
        )
        workflow.search_text = search_text(workflow)
        workflow.maintainers.append(WorkflowMaintainer(user_id=user.id))
        session.add(workflow)
        workflows.append(workflow)
    session.flush()
    return workflows


def _author(author: Author) -> dict[str, str]:
    fields = ("name", "email", "orcid", "affiliation", "role")
    return {key: value for key in fields if (value := getattr(author, key, None))}


def search_text(workflow: Workflow) -> str:
    """The words search matches for a workflow: its path's parts, language and description."""
    words = [
        workflow.path,
        workflow.host,
        workflow.namespace,
        workflow.repository,
        workflow.name or "",
        workflow.descriptor_type,
        workflow.description,
        *(a.get("name", "") for a in workflow.authors),
    ]
    return " ".join(w for w in words if w).lower()


#: "Not given" for arguments where None means something (take it out of its organization).
_UNSET: Any = object()


def update(
    session: Session,
    user: User,
    workflow_id: int,
    *,
    published: bool | None = None,
    description: str | None = None,
    organization: str | None = _UNSET,
) -> Workflow:
    """Publish or unpublish a workflow, describe it, or move it into an organization (which
    takes one of that organization's admins or maintainers; "" or None takes it out)."""
    workflow = changeable_workflow(session, user, workflow_id)
    if organization is not _UNSET:
        if organization:
            found = get_organization(session, organization)
            require_maintainer(found, user)
            workflow.organization = found
        else:
            workflow.organization = None
    if description is not None:
        workflow.description = description.strip()
        workflow.search_text = search_text(workflow)
    if published is True and not workflow.published:
        if not publishable(workflow):
            raise InvalidInput(
                f"{trs_id(workflow)} has no version read without a problem yet: refresh it "
                "(POST /api/workflows/{id}/refresh) and fix what its versions report first"
            )
        workflow.published = True
        workflow.published_at = utcnow()
    elif published is False:
        workflow.published = False
    workflow.updated_at = utcnow()
    session.flush()
    return workflow


def publishable(workflow: Workflow) -> bool:
    """Whether the workflow has a visible version read without a problem (publishing needs one)."""
    return any(v.commit and v.problem is None and not v.hidden for v in workflow.versions)


def delete(session: Session, user: User, workflow_id: int) -> None:
    """Delete a workflow with its versions, files and images."""
    session.delete(changeable_workflow(session, user, workflow_id))
    session.flush()


def freeze(session: Session, user: User, workflow_id: int, name: str) -> WorkflowVersion:
    """Freeze a version: its files, their checksums and its image digests are final."""
    workflow = changeable_workflow(session, user, workflow_id)
    version = visible_version(workflow, user, name)
    if version.frozen:
        return version
    if version.commit is None or not version.files:
        raise InvalidInput(
            f"version {name!r} has not been read from git yet: refresh the workflow first"
        )
    if version.problem is not None:
        raise InvalidInput(
            f"version {name!r} had a problem at its last read ({version.problem}); a frozen "
            "version must be one that was read whole: fix it and refresh first"
        )
    version.frozen = True
    version.frozen_at = utcnow()
    session.flush()
    return version


# --- the tools that hold a workflow's images ------------------------------------------------


def tools_holding(
    session: Session, user: User | None, images: Iterable[WorkflowImage]
) -> dict[str, Tool]:
    """For images that are tools in dockyard the caller may see: image name -> tool.

    A private image is pulled with permission; its tool is where to ask for it.
    """
    wanted: dict[tuple[str, str], list[str]] = {}
    for image in images:
        if image.image is None:
            continue
        reference = parse_reference(image.image)
        key = (reference.domain.lower(), reference.path.lower())
        wanted.setdefault(key, []).append(image.image)
    if not wanted:
        return {}
    tools = session.scalars(
        select(Tool)
        .where(tuple_(func.lower(Tool.host), func.lower(Tool.repository)).in_(list(wanted)))
        .options(selectinload(Tool.maintainers))
        .order_by(Tool.toolname.is_not(None), Tool.id)
    )
    held: dict[str, Tool] = {}
    for tool in tools:
        if not can_view_tool(tool, user):
            continue
        for name in wanted.get((tool.host.lower(), tool.repository.lower()), []):
            held.setdefault(name, tool)  # the image's own tool before any named one
    return held


# --- finding workflows ----------------------------------------------------------------------


@dataclass(frozen=True)
class WorkflowQuery:
    """What to find: every filter combined; None leaves a filter out."""

    path: str | None = None
    host: str | None = None
    namespace: str | None = None
    repository: str | None = None
    name: str | None = None
    description_contains: str | None = None
    maintainer: str | None = None
    descriptor_type: str | None = None
    #: Words that must all be in the workflow's search text (path, language, description).
    words: tuple[str, ...] = ()
    limit: int = 100
    offset: int = 0


def find_workflows(
    session: Session, user: User | None, query: WorkflowQuery
) -> tuple[list[Workflow], int]:
    """One page of the workflows the caller may see, by path, and how many match."""
    conditions = [workflows_visible_to(user)]
    if query.path is not None:
        conditions.append(func.lower(Workflow.path) == query.path.lower())
    if query.host is not None:
        conditions.append(func.lower(Workflow.host) == query.host.lower())
    if query.namespace is not None:
        conditions.append(func.lower(Workflow.namespace) == query.namespace.lower())
    if query.repository is not None:
        conditions.append(func.lower(Workflow.repository) == query.repository.lower())
    if query.name is not None:
        conditions.append(func.lower(Workflow.name) == query.name.lower())
    if query.description_contains is not None:
        conditions.append(
            func.lower(Workflow.description).contains(query.description_contains.lower())
        )
    if query.descriptor_type is not None:
        conditions.append(Workflow.descriptor_type == query.descriptor_type.upper())
    conditions.extend(Workflow.search_text.contains(word.lower()) for word in query.words)
    if query.maintainer is not None:
        maintained = (
            select(WorkflowMaintainer.workflow_id)
            .join(User, User.id == WorkflowMaintainer.user_id)
            .where(func.lower(User.username) == query.maintainer.lower())
        )
        conditions.append(Workflow.id.in_(maintained))
    total = session.scalar(select(func.count()).select_from(Workflow).where(*conditions)) or 0
    page = session.scalars(
        select(Workflow)
        .where(*conditions)
        .order_by(func.lower(Workflow.path))
        .limit(query.limit)
        .offset(query.offset)
        .options(selectinload(Workflow.maintainers), *VERSION_CONTENTS)
    )
    return list(page), total


def workflows_visible_to(user: User | None) -> ColumnElement[bool]:
    """`can_view` as a query condition: published, maintained, or any for admins."""
    if user is not None and user.is_admin:
        return true()
    if user is None:
        return Workflow.published.is_(True)
    return Workflow.published | Workflow.id.in_(maintained_workflow_ids(user))


def maintained_workflow_ids(user: User) -> CompoundSelect[int]:
    """The ids of the workflows `user` maintains, directly or through their organization."""
    direct = select(WorkflowMaintainer.workflow_id).where(WorkflowMaintainer.user_id == user.id)
    through = select(Workflow.id).where(
        Workflow.organization_id.in_(maintaining_organizations(user))
    )
    return direct.union(through)
