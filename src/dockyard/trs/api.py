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
from typing import Annotated, Any
from urllib.parse import unquote, urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from sqlalchemy.orm import Session

from dockyard import __version__
from dockyard.accounts.models import User
from dockyard.catalog import files, listing, services
from dockyard.catalog.models import Tool, ToolVersion, VersionFile
from dockyard.errors import InvalidInput, NotFound
from dockyard.http import MAX_OFFSET, CallerDep, SessionDep, external_url
from dockyard.registries.reference import DOCKER_HUB_ALIASES
from dockyard.trs import views

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
        """The one tool class dockyard has."""
        return _json([views.TOOL_CLASS])

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
            nothing = (
                bool(checker)
                or alias is not None
                or (toolClass is not None and toolClass != views.TOOL_CLASS["id"])
                or bool(tags)
            )
            if nothing:
                return _paged(request, prefix, [], 0, start, size, caller)
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
                    sort="name",
                    limit=size,
                    offset=start,
                    max_limit=MAX_LIMIT,
                    with_contents=True,
                ),
            )
            return _paged(request, prefix, page.items, page.total, start, size, caller)

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
    tool, tail = _locate(session, caller, remainder)
    base = _base(request, prefix)
    versions = services.visible_versions(tool, caller)
    if not tail:
        return _json(views.tool_json(tool, versions, base))
    if tail == ["versions"]:
        return _json([views.version_json(tool, v, base) for v in versions])
    version = _version(tool, caller, tail[1])
    if len(tail) == 2:
        return _json(views.version_json(tool, version, base))
    if tail[2:] == ["containerfile"]:
        found = files.containerfiles(tool, version)
        return _json([views.file_wrapper(f, _file_url(request, f)) for f in found])
    kind = views.descriptor_type(tail[2])
    if kind is None:
        raise NotFound(f"{tail[2]!r} is not a descriptor type: use CWL, WDL, NFL, GALAXY or SMK")
    descriptor, plain = kind
    plain = plain or "text/plain" in request.headers.get("accept", "")
    action = tail[3] if len(tail) > 3 else ""
    if action in {"descriptor", "files"}:
        request.state.use_of = tool.id  # counted in `_with_etag` if the answer is a 200
    if action == "descriptor":
        relative = "/".join(tail[4:]) if len(tail) > 4 else None
        file = files.descriptor_file(tool, version, descriptor, relative)
        if plain:
            return PlainTextResponse(file.content, headers=CORS)
        return _json(views.file_wrapper(file, _file_url(request, file)))
    if action == "tests" and len(tail) == 4:
        tests = files.tests_of(version, descriptor)
        # The spec answers /tests with FileWrappers for PLAIN_ types too: a list of files
        # has no single plain text to be.
        return _json([views.file_wrapper(f, _file_url(request, f)) for f in tests])
    if action == "files" and len(tail) == 4:
        primary = files.primary_descriptor(version, descriptor)
        needed = files.runner_files(version, descriptor)
        if request.query_params.get("format") == "zip":
            return _zip(tool, version, needed, primary)
        return _json([views.tool_file(f, primary) for f in needed])
    raise NotFound("no such TRS resource: check the path")


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


def _locate(session: Session, caller: User | None, remainder: str) -> tuple[Tool, list[str]]:
    """The tool a path names and what follows its id, in one query: every cut of the path
    that leaves a valid remainder is a candidate id, and the shortest that names a tool the
    caller may see wins."""
    segments = remainder.split("/")
    tails: dict[str, list[str]] = {}  # candidate id, case-folded -> what follows it
    for cut in range(1, len(segments) + 1):
        tail = [unquote(s) for s in segments[cut:]]
        if _valid_tail(tail):
            tails.setdefault(_canonical_id(unquote("/".join(segments[:cut]))).lower(), tail)
    tool = services.first_visible_tool(session, caller, list(tails))
    if tool is None:
        raise NotFound(f"no tool {unquote(remainder.split('/versions')[0])!r}")
    return tool, tails[tool.path.lower()]


def _canonical_id(tool_id: str) -> str:
    host, slash, rest = tool_id.partition("/")
    if slash and host.lower() in DOCKER_HUB_ALIASES:
        return f"docker.io/{rest if '/' in rest else 'library/' + rest}"
    return tool_id


def _version(tool: Tool, caller: User | None, version_id: str) -> ToolVersion:
    prefix = f"{tool.path}:"
    if version_id.lower().startswith(prefix.lower()):
        version_id = version_id[len(prefix) :]
    return services.visible_version(tool, caller, version_id)


def _zip(
    tool: Tool, version: ToolVersion, files: list[VersionFile], primary: VersionFile | None
) -> Response:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in files:
            archive.writestr(views.relative_to_primary(file.path, primary), file.content)
    name = f"{tool.path.replace('/', '_')}-{version.name}.zip"
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
    prefix: str,
    tools: list[Tool],
    total: int,
    start: int,
    size: int,
    caller: User | None,
) -> Response:
    base = _base(request, prefix)
    body = [views.tool_json(t, services.visible_versions(t, caller), base) for t in tools]
    kept = {k: v for k, v in request.query_params.items() if k not in {"offset", "limit"}}

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
    return _json(body, headers)


def _base(request: Request, prefix: str) -> str:
    return f"{external_url(request)}{prefix}"


def _file_url(request: Request, file: VersionFile) -> str:
    version = file.version
    tool = version.tool
    root = _base(request, "")
    return f"{root}/api/tools/{tool.id}/versions/{version.name}/files/{file.path}"
