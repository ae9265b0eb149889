"""A workflow's page: versions, the images of the chosen one as resolved, its files; and the
maintainers' actions on it (refresh, freeze, the pinned bundle)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote, quote_plus

from anyio import to_thread
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from dockyard.catalog import launch
from dockyard.db import unit_of_work
from dockyard.errors import DockyardError
from dockyard.http import ContextDep, SessionDep, external_url, get_context
from dockyard.refresh.tasks import open_workflow_refresher
from dockyard.sources.rules import source_link
from dockyard.web.files import rendered
from dockyard.web.security import CsrfDep, WebUserDep, browser_user, redirect, render, signed_in
from dockyard.workflows import pinning, services
from dockyard.workflows.models import Workflow

router = APIRouter(include_in_schema=False)


@router.get("/workflows/{path:path}", response_class=HTMLResponse)
def workflow_page(
    request: Request,
    path: str,
    user: WebUserDep,
    session: SessionDep,
    version: Annotated[str | None, Query(max_length=255)] = None,
) -> HTMLResponse:
    """A workflow: its repository, versions, the chosen version's images and files."""
    workflow = services.workflow_by_path(session, user, path)
    versions = services.visible_versions(workflow, user)
    chosen = (
        services.visible_version(workflow, user, version)
        if version
        else next((v for v in versions if v.problem is None and v.commit), None)
        or (versions[0] if versions else None)
    )
    holders = services.tools_holding(session, user, chosen.images) if chosen else {}
    encoded = quote(services.trs_id(workflow), safe="")
    return render(
        request,
        "workflow.html",
        {
            "title": services.trs_id(workflow),
            "workflow": workflow,
            "trs_id": services.trs_id(workflow),
            "versions": versions,
            "chosen": chosen,
            "images": [
                {"row": image, "tool": holders.get(image.image or "")}
                for image in (chosen.images if chosen else [])
            ],
            "files": [rendered(f) for f in chosen.files] if chosen else [],
            "commit_url": (
                source_link(workflow.git_url, chosen.commit) if chosen and chosen.commit else None
            ),
            "trs": {
                "tool": f"/ga4gh/trs/v2/tools/{encoded}",
                "versions": f"/ga4gh/trs/v2/tools/{encoded}/versions",
            },
            "maintainer": workflow.is_maintained_by(user),
            "error": request.query_params.get("error"),
            "run": (
                launch.launch(
                    get_context(request).launch,
                    base=external_url(request),
                    trs_id=services.trs_id(workflow),
                    version=chosen.name,
                    languages={workflow.descriptor_type},
                    git_url=workflow.git_url,
                )
                if chosen is not None and workflow.published
                else None
            ),
        },
    )


def _page(workflow: Workflow, version: str | None = None, **message: str) -> str:
    query = f"?version={quote_plus(version)}" if version else ""
    for key, value in message.items():
        query += ("&" if query else "?") + f"{key}={quote_plus(value)}"
    return f"/workflows/{workflow.path}{query}"


@router.post("/my/workflows/{workflow_id}/refresh", dependencies=[CsrfDep])
async def refresh(request: Request, workflow_id: int, context: ContextDep) -> Response:
    """Read the workflow's branches and tags, and its images, now."""

    def allowed() -> Workflow:
        with unit_of_work(context.sessions) as session:
            me = signed_in(request, browser_user(request, session))
            workflow = services.changeable_workflow(session, me, workflow_id)
            session.expunge(workflow)
            return workflow

    workflow = await to_thread.run_sync(allowed)
    async with open_workflow_refresher(
        context.settings, context.sessions, context.catalog
    ) as refresher:
        report = await refresher.refresh(workflow_id)
    if report.status == "failed":
        return redirect(request, _page(workflow, error=f"Refresh failed: {report.message}"))
    summary = (
        f"Refreshed: {len(report.read)} read, {len(report.unchanged)} unchanged, "
        f"{report.resolved} of {report.images} images resolved"
    )
    if report.problems:
        problems = "; ".join(f"{name}: {text}" for name, text in sorted(report.problems.items()))
        return redirect(request, _page(workflow, error=f"{summary}. Problems: {problems}"))
    return redirect(request, _page(workflow, notice=summary))


@router.post("/my/workflows/{workflow_id}/freeze", dependencies=[CsrfDep])
def freeze(
    request: Request,
    workflow_id: int,
    context: ContextDep,
    version: Annotated[str, Form(max_length=255)],
) -> Response:
    """Freeze one version."""
    with unit_of_work(context.sessions) as session:
        me = signed_in(request, browser_user(request, session))
        workflow = services.visible_workflow(session, me, workflow_id)
        try:
            services.freeze(session, me, workflow_id, version)
        except DockyardError as error:
            return redirect(request, _page(workflow, version, error=error.message))
        return redirect(
            request,
            _page(workflow, version, notice=f"Version {version} is frozen: its pins are final."),
        )


@router.get("/workflows-pinned/{workflow_id}/{version}")
def pinned_bundle(
    workflow_id: int, version: str, user: WebUserDep, session: SessionDep
) -> Response:
    """A frozen version's pinned bundle, for the page's download link."""
    workflow = services.visible_workflow(session, user, workflow_id)
    body, filename = pinning.version_bundle(services.visible_version(workflow, user, version))
    return Response(
        body,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
