"""GA4GH TRS 2.0.1 at /ga4gh/trs/v2 and /api/ga4gh/v2, over the same tool services.

Tool ids are tool paths and contain '/'. Clients percent-encode them (`quay.io%2Fns%2Fname`)
or not, so everything below /tools/ is routed on the raw path: the id is the shortest prefix
that names a visible tool and leaves a valid remainder. Errors raised here become TRS `Error`
objects in the app's error handlers, like every other error under these bases.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Callable, Sequence
from typing import Annotated, Any
from urllib.parse import unquote, urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from sqlalchemy.orm import Session

from dockyard import __version__
from dockyard.accounts.models import User
from dockyard.catalog import files, listing, services
from dockyard.catalog.files import F, FileRow, VersionRow
from dockyard.catalog.models import Tool, ToolVersion, VersionFile
from dockyard.catalog.rules import DescriptorType
from dockyard.collections import services as collections
from dockyard.errors import InvalidInput, NotFound
from dockyard.http import MAX_OFFSET, CallerDep, SessionDep, external_url
from dockyard.registries.reference import DOCKER_HUB_ALIASES
from dockyard.trs import views
from dockyard.workflows import services as workflow_services
from dockyard.workflows.models import Workflow
from dockyard.workflows.rules import TRS_PREFIX
from dockyard.workflows.services import trs_id

PREFIXES = ("/ga4gh/trs/v2", "/api/ga4gh/v2")
MAX_LIMIT = 1000
CORS = {"Access-Control-Allow-Origin": "*"}


def _json(value: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(value, headers={**CORS, **(headers or {})})


def build_router(prefix: str) -> APIRouter:
    """The TRS endpoints under one base path."""
    # The official TRS OpenAPI document describes these; they stay out of dockyard's own.
    router = APIRouter(prefix=prefix, include_in_schema=False)

    @router.api_route("/service-info", methods=["GET", "HEAD"])
    def service_info(request: Request) -> JSONResponse:
        """What this TRS service is."""
        return _json(
            {
                "id": "org.dockyard.trs",
                "name": "dockyard",
                "type": {"group": "org.ga4gh", "artifact": "trs", "version": "2.0.1"},
                "description": "A registry of containerized tools",
                "organization": {"name": "dockyard", "url": _base(request, "")},
                "version": __version__,
            }
        )

    @router.api_route("/toolClasses", methods=["GET", "HEAD"])
    def tool_classes() -> JSONResponse:
        """Tools (a container image with descriptors) and workflows."""
        return _json([views.TOOL_CLASS, views.WORKFLOW_CLASS])

    @router.api_route("/tools", methods=["GET", "HEAD"])
    def list_tools(
        request: Request,
        caller: CallerDep,
        session: SessionDep,
        id: str | None = None,
        alias: str | None = None,
        toolClass: str | None = None,
        registry: str | None = None,
        organization: str | None = None,
        name: str | None = None,
        toolname: str | None = None,
        description: str | None = None,
        author: str | None = None,
        checker: bool | None = None,
        tags: Annotated[list[str] | None, Query()] = None,
        offset: str | None = None,
        limit: int | None = None,
    ) -> Response:
        """Published tools (and the caller's own), every filter combined."""

        def answer() -> Response:
            start = _offset(offset)
            size = min(limit or MAX_LIMIT, MAX_LIMIT)
            if size < 1:
                raise InvalidInput("limit must be at least 1")
            base = _base(request, prefix)
            is_workflow = id is not None and id.startswith(TRS_PREFIX)
            tools = toolClass in (None, views.TOOL_CLASS["id"]) and not is_workflow
            flows = toolClass in (None, views.WORKFLOW_CLASS["id"]) and (id is None or is_workflow)
            if bool(checker) or bool(tags) or not (tools or flows):
                return _paged(request, base, [], 0, start, size)
            named: tuple[int, ...] | None = None
            if alias is not None:  # organizations' and collections' labels name tools only
                named = tuple(collections.tools_with_alias(session, alias))
                flows = False
            body: list[dict[str, Any]] = []
            total = 0
            if tools:
                page = listing.find_tools(
                    session,
                    caller,
                    listing.ToolQuery(
                        path=_canonical_id(id) if id else None,
                        host=registry,
                        namespace=organization,
                        image_name=name,
                        toolname=toolname,
                        description_contains=description,
                        maintainer=author,
                        tool_ids=named,
                        sort="name",
                        limit=size,
                        offset=start,
                        max_limit=MAX_LIMIT,
                        with_contents=True,
                    ),
                )
                aliases = collections.tool_aliases(session, [t.id for t in page.items])
                body = [
                    _tool_json(t, services.visible_versions(t, caller), base, aliases.get(t.id))
                    for t in page.items
                ]
                total = page.total
            if flows:
                # Workflows come after every tool: their page starts where the tools end.
                found, count = workflow_services.find_workflows(
                    session,
                    caller,
                    workflow_services.WorkflowQuery(
                        path=id.removeprefix(TRS_PREFIX) if id else None,
                        host=registry,
                        namespace=organization,
                        repository=name,
                        name=toolname,
                        description_contains=description,
                        maintainer=author,
                        limit=size - len(body),
                        offset=max(0, start - total),
                    ),
                )
                body += [
                    views.workflow_json(w, workflow_services.visible_versions(w, caller), base)
                    for w in found
                ]
                total += count
            return _paged(request, base, body, total, start, size)

        return answer()

    @router.api_route("/tools/{rest:path}", methods=["GET", "HEAD"])
    def tool_resources(request: Request, caller: CallerDep, session: SessionDep) -> Response:
        """Everything below /tools/: the tool, versions, descriptors, tests, files."""
        raw = request.scope.get("raw_path", b"").decode("latin-1")
        remainder = raw.split("?", 1)[0][len(prefix) + len("/tools/") :]
        return _with_etag(request, _resource(request, prefix, session, caller, remainder))

    return router


def _resource(
    request: Request, prefix: str, session: Session, caller: User | None, remainder: str
) -> Response:
    if unquote(remainder).startswith(TRS_PREFIX):
        return _workflow_resource(request, prefix, session, caller, remainder)
    tool, tail = _locate(session, caller, remainder)
    base = _base(request, prefix)
    versions = services.visible_versions(tool, caller)
    aliases = collections.tool_aliases(session, [tool.id]).get(tool.id)
    if not tail:
        return _json(_tool_json(tool, versions, base, aliases))
    facts = views.ToolFacts.of(tool, aliases)
    if tail == ["versions"]:
        return _json([views.version_json(facts, views.VersionFacts.of(v), base) for v in versions])
    version = _version(tool, caller, tail[1])
    if len(tail) == 2:
        return _json(views.version_json(facts, views.VersionFacts.of(version), base))
    if tail[2:] == ["containerfile"]:
        found = files.containerfiles(tool.path, version)
        return _json([_tool_file_wrapper(request, tool, version, f) for f in found])
    descriptor, plain = _asked_type(request, tail[2])
    if tail[3:4] in (["descriptor"], ["files"]):
        request.state.use_of = tool.id  # counted in `_with_etag` if the answer is a 200
    answer = version_files(
        tool.path,
        version,
        descriptor,
        tail[3:],
        plain=plain,
        wrap=lambda f: _tool_file_wrapper(request, tool, version, f),
        zipped=request.query_params.get("format") == "zip",
    )
    return _response(answer, f"{tool.path.replace('/', '_')}-{version.name}.zip", request)


def _asked_type(request: Request, segment: str) -> tuple[DescriptorType, bool]:
    """The descriptor type a path segment names, and whether the plain file is wanted."""
    kind = views.descriptor_type(segment)
    if kind is None:
        raise NotFound(f"{segment!r} is not a descriptor type: use CWL, WDL, NFL, GALAXY or SMK")
    descriptor, plain = kind
    return descriptor, plain or accepts_plain(request.headers.get("accept", ""))


def accepts_plain(accept: str) -> bool:
    """Whether an Accept header asks for a descriptor's plain text."""
    return "text/plain" in accept


#: A version's files as TRS answers them: ("json", value), ("plain", text) or
#: ("zip", (files, primary)).
FilesAnswer = tuple[str, Any]


def version_files(
    owner: str,
    version: VersionRow[F],
    descriptor: DescriptorType,
    action: list[str],
    *,
    plain: bool,
    wrap: Callable[[F], dict[str, Any]],
    zipped: bool = False,
) -> FilesAnswer:
    """What `{version}/{type}/{action...}` answers for a tool's or a workflow's version:
    its descriptor (or a file next to it), its tests, or the files a runner needs."""
    verb = action[0] if action else ""
    if verb == "descriptor":
        relative = "/".join(action[1:]) if len(action) > 1 else None
        file = files.descriptor_file(owner, version, descriptor, relative)
        return ("plain", file.content) if plain else ("json", wrap(file))
    if verb == "tests" and len(action) == 1:
        # The spec answers /tests with FileWrappers for PLAIN_ types too: a list of files
        # has no single plain text to be.
        return "json", [wrap(f) for f in files.tests_of(version, descriptor)]
    if verb == "files" and len(action) == 1:
        primary = files.primary_descriptor(version, descriptor)
        needed = files.runner_files(version, descriptor)
        if zipped:
            return "zip", (needed, primary)
        return "json", [views.tool_file(f, primary) for f in needed]
    raise NotFound("no such TRS resource: check the path")


def _response(answer: FilesAnswer, zip_name: str, request: Request) -> Response:
    kind, value = answer
    if kind == "plain":
        return PlainTextResponse(value, headers=CORS)
    if kind == "zip":
        return _zip(zip_name, *value)
    return _json(value)


def _workflow_resource(
    request: Request, prefix: str, session: Session, caller: User | None, remainder: str
) -> Response:
    """A workflow's resources, as a tool's (no containerfile: a workflow has none)."""
    workflow, tail = _locate_workflow(session, caller, remainder)
    base = _base(request, prefix)
    versions = workflow_services.visible_versions(workflow, caller)
    if not tail:
        return _json(views.workflow_json(workflow, versions, base))
    if tail == ["versions"]:
        return _json([views.workflow_version_json(workflow, v, base) for v in versions])
    name = version_name(trs_id(workflow), tail[1])
    version = workflow_services.visible_version(workflow, caller, name)
    if len(tail) == 2:
        return _json(views.workflow_version_json(workflow, version, base))
    if tail[2:] == ["containerfile"]:
        raise NotFound(f"{trs_id(workflow)} is a workflow: it has no containerfile")
    kind = views.descriptor_type(tail[2])
    if kind is None or kind[0].value != workflow.descriptor_type:
        raise NotFound(
            f"{trs_id(workflow)} is a {workflow.descriptor_type} workflow: ask for "
            f"{workflow.descriptor_type} or PLAIN_{workflow.descriptor_type}"
        )
    descriptor, plain = _asked_type(request, tail[2])
    root = f"{_base(request, '')}/api/workflows/{workflow.id}/versions/{version.name}/files"
    answer = version_files(
        trs_id(workflow),
        version,
        descriptor,
        tail[3:],
        plain=plain,
        wrap=lambda f: views.file_wrapper(f, f"{root}/{f.path}", workflow.git_url, version.commit),
        zipped=request.query_params.get("format") == "zip",
    )
    return _response(answer, f"{workflow.path.replace('/', '_')}-{version.name}.zip", request)


def _locate_workflow(
    session: Session, caller: User | None, remainder: str
) -> tuple[Workflow, list[str]]:
    """The workflow a `#workflow/...` path names and what follows its id, in one query, as
    `_locate` finds a tool."""
    tails = candidate_ids(remainder, lambda text: text.removeprefix(TRS_PREFIX))
    workflow = workflow_services.first_visible_workflow(session, caller, list(tails))
    if workflow is None:
        raise NotFound(not_found_message(remainder, "workflow"))
    return workflow, tails[workflow.path.lower()]


#: The shapes of what may follow a tool id.
def _valid_tail(tail: list[str]) -> bool:
    if not tail or tail == ["versions"]:
        return True
    if tail[0] != "versions" or len(tail) < 2 or not tail[1]:
        return False
    if len(tail) == 2 or tail[2:] == ["containerfile"]:
        return True
    if len(tail) >= 4 and tail[3] == "descriptor":
        return len(tail) == 4 or all(tail[4:])
    return len(tail) == 4 and tail[3] in {"tests", "files"}


def _tool_json(
    tool: Tool, versions: list[ToolVersion], base: str, aliases: list[str] | None = None
) -> dict[str, Any]:
    return views.tool_json(
        views.ToolFacts.of(tool, aliases), [views.VersionFacts.of(v) for v in versions], base
    )


def candidate_ids(remainder: str, canonical: Callable[[str], str]) -> dict[str, list[str]]:
    """Every cut of the path below /tools/ that leaves a valid remainder: the candidate id
    (as `canonical` writes it, case-folded) and what follows it, shortest first."""
    segments = remainder.split("/")
    tails: dict[str, list[str]] = {}
    for cut in range(1, len(segments) + 1):
        tail = [unquote(s) for s in segments[cut:]]
        if _valid_tail(tail):
            tails.setdefault(canonical(unquote("/".join(segments[:cut]))).lower(), tail)
    return tails


def not_found_message(remainder: str, what: str = "tool") -> str:
    """The 404 message for a path below /tools/ that names nothing the caller may see."""
    return f"no {what} {unquote(remainder.split('/versions')[0])!r}"


def version_name(owner_id: str, version_id: str) -> str:
    """A version id as TRS may write it, `<tool id>:<name>`, as the version's name."""
    prefix = f"{owner_id}:"
    return (
        version_id[len(prefix) :] if version_id.lower().startswith(prefix.lower()) else version_id
    )


def _locate(session: Session, caller: User | None, remainder: str) -> tuple[Tool, list[str]]:
    """The tool a path names and what follows its id, in one query: every cut of the path
    that leaves a valid remainder is a candidate id, and the shortest that names a tool the
    caller may see wins."""
    tails = candidate_ids(remainder, _canonical_id)
    tool = services.first_visible_tool(session, caller, list(tails))
    if tool is None:
        raise NotFound(not_found_message(remainder))
    return tool, tails[tool.path.lower()]


def _canonical_id(tool_id: str) -> str:
    host, slash, rest = tool_id.partition("/")
    if slash and host.lower() in DOCKER_HUB_ALIASES:
        return f"docker.io/{rest if '/' in rest else 'library/' + rest}"
    return tool_id


def _version(tool: Tool, caller: User | None, version_id: str) -> ToolVersion:
    return services.visible_version(tool, caller, version_name(tool.path, version_id))


def _zip(name: str, files: Sequence[FileRow], primary: FileRow | None) -> Response:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in files:
            archive.writestr(views.relative_to_primary(file.path, primary), file.content)
    return Response(
        buffer.getvalue(),
        media_type="application/zip",
        headers={**CORS, "Content-Disposition": f'attachment; filename="{name}"'},
    )


def _with_etag(request: Request, response: Response) -> Response:
    """A strong ETag from the answer's bytes; 304 when the client already has them.

    Descriptors and files count as uses of the tool, so clients (and dockyard's response
    cache) revalidate them each time (`no-cache`) instead of reusing a stored copy.
    """
    if response.status_code != 200:
        return response
    use_of = getattr(request.state, "use_of", None)
    if use_of is not None:
        request.app.state.context.usage.add(use_of)
        response.headers["Cache-Control"] = "no-cache"
    etag = '"' + hashlib.sha256(bytes(response.body)).hexdigest()[:32] + '"'
    wanted = {tag.strip() for tag in request.headers.get("if-none-match", "").split(",")}
    if etag in wanted or "*" in wanted:
        return Response(status_code=304, headers={**CORS, "ETag": etag})
    response.headers["ETag"] = etag
    return response


def _offset(offset: str | None) -> int:
    if offset in (None, ""):
        return 0
    # ASCII digits only ("²" is a digit to str.isdigit), and no further than listings page.
    digits = offset.isascii() and offset.isdigit()
    if not digits or len(offset) > len(str(MAX_OFFSET)) or int(offset) > MAX_OFFSET:
        raise InvalidInput(f"offset is a record number from 0 to {MAX_OFFSET:,}: 0, 20, 40, ...")
    return int(offset)


def _paged(
    request: Request,
    base: str,
    body: list[dict[str, Any]],
    total: int,
    start: int,
    size: int,
) -> Response:
    kept = {k: v for k, v in request.query_params.items() if k not in {"offset", "limit"}}
    return _json(body, paging_headers(base, kept, total, start, size))


def paging_headers(
    base: str, kept: dict[str, str], total: int, start: int, size: int
) -> dict[str, str]:
    """TRS's paging headers for a page of `/tools` (`kept`: the other query parameters)."""

    def link(at: int) -> str:
        return f"{base}/tools?{urlencode({**kept, 'offset': at, 'limit': size})}"

    last = max(0, ((total - 1) // size) * size) if total else 0
    headers = {
        "self_link": link(start),
        "last_page": link(last),
        "current_offset": str(start),
        "current_limit": str(size),
    }
    if start + size < total:
        headers["next_page"] = link(start + size)
    return headers


def _base(request: Request, prefix: str) -> str:
    return f"{external_url(request)}{prefix}"


def _tool_file_wrapper(
    request: Request, tool: Tool, version: ToolVersion, file: VersionFile
) -> dict[str, Any]:
    url = file_url(_base(request, ""), tool.id, version.name, file.path)
    git_url = tool.source["git_url"] if tool.source else None
    return views.file_wrapper(file, url, git_url, version.source_commit)


def file_url(root: str, tool_id: int, version: str, path: str) -> str:
    """Where dockyard's REST API serves a tool version's file."""
    return f"{root}/api/tools/{tool_id}/versions/{version}/files/{path}"
