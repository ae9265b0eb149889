"""Anonymous TRS reads answered from rows, in front of the app's routing.

The most read TRS answers (a tool, its versions, one version, a page of `/tools`, and a
version's descriptors and files) are, for an anonymous caller, a function of a few rows: the
tool, its maintainers' names, its visible versions, their images and files. This ASGI layer
reads exactly those columns with SQLAlchemy Core (statements built once, compiled once),
builds the answer with the same functions the app uses (`trs.views`, `trs.api.version_files`)
and sends it with the same headers (`ETag`, 304 on `If-None-Match`, CORS, `no-cache` on the
uses of a tool, which it counts as the app does). So an uncached read skips FastAPI's
routing, its dependencies, the ORM's object graphs and, on SQLite, the thread pool: a read of
a few tenths of a millisecond runs on the event loop, where a hop to a thread would cost more
than the read. On PostgreSQL (a network round trip per query) the read runs in a thread.

Anything it does not handle (a token, a workflow id, a zip, a filter, a page that reaches
workflows, anything not found below a tool) goes to the app, which answers as always: this
layer is only ever faster, never different. `tests/trs/test_golden.py` holds it to the same
bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, unquote

from anyio import to_thread
from sqlalchemy import (
    BindParameter,
    Connection,
    Engine,
    Integer,
    String,
    bindparam,
    func,
    select,
)
from starlette.requests import Request

from dockyard.accounts.models import User
from dockyard.catalog import files
from dockyard.catalog.models import Tool, ToolMaintainer, ToolVersion, VersionFile, VersionImage
from dockyard.catalog.rules import FileType
from dockyard.catalog.services import tools_visible_to, versions_visible_to
from dockyard.collections.services import tool_aliases
from dockyard.errors import DockyardError, NotFound
from dockyard.http import external_url
from dockyard.trs import views
from dockyard.trs.api import (
    MAX_LIMIT,
    _canonical_id,
    _offset,
    accepts_plain,
    candidate_ids,
    file_url,
    not_found_message,
    paging_headers,
    version_files,
    version_name,
)
from dockyard.workflows.models import Workflow
from dockyard.workflows.rules import TRS_PREFIX

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Reply(NamedTuple):
    """An answer as the app would send it."""

    status: int
    body: bytes
    headers: dict[str, str] = {}
    content_type: str = "application/json"
    #: The tool this answer is a use of (a descriptor or a version's files).
    use_of: int | None = None


#: None: the app answers.
Answer = Reply | None


@dataclass(frozen=True)
class Asked:
    """What an answer depends on besides the path below `/tools`."""

    root: str  #: the server's external address
    prefix: str
    query: bytes = b""
    accept: str = ""

    @property
    def base(self) -> str:
        return f"{self.root}{self.prefix}"


class _File(NamedTuple):
    path: str
    file_type: str
    descriptor_type: str | None
    content: str
    sha256: str


@dataclass(frozen=True)
class _Version:
    name: str
    files: list[_File]


_TOOL_COLUMNS = (
    Tool.id,
    Tool.path,
    Tool.host,
    Tool.namespace,
    Tool.repository,
    Tool.toolname,
    Tool.description,
    Tool.updated_at,
    Tool.default_version_id,
    Tool.source,
)
#: What an anonymous caller may see, as the catalogue's services say it.
_ANONYMOUS_TOOLS = tools_visible_to(None)
TOOLS_BY_PATH = select(*_TOOL_COLUMNS).where(
    func.lower(Tool.path).in_(bindparam("paths", expanding=True, type_=String)),
    _ANONYMOUS_TOOLS,
)
TOOLS_PAGE = (
    select(*_TOOL_COLUMNS)
    .where(_ANONYMOUS_TOOLS)
    .order_by(Tool.name.asc(), Tool.path.asc())
    .limit(bindparam("limit", type_=Integer))
    .offset(bindparam("offset", type_=Integer))
)
PUBLISHED_TOOLS = select(func.count()).select_from(Tool).where(_ANONYMOUS_TOOLS)
PUBLISHED_WORKFLOWS = select(func.count()).select_from(Workflow).where(Workflow.published.is_(True))
_OF_TOOLS: BindParameter[Any] = bindparam("tools", expanding=True, type_=Integer)
MAINTAINERS = (
    select(ToolMaintainer.tool_id, User.username)
    .join(User, User.id == ToolMaintainer.user_id)
    .where(ToolMaintainer.tool_id.in_(_OF_TOOLS))
    .order_by(ToolMaintainer.id)
)
_VISIBLE = (ToolVersion.tool_id.in_(_OF_TOOLS), versions_visible_to(None))
VERSIONS = (
    select(
        ToolVersion.tool_id,
        ToolVersion.id,
        ToolVersion.name,
        ToolVersion.description,
        ToolVersion.updated_at,
        ToolVersion.source_reference,
        ToolVersion.source_commit,
    )
    .where(*_VISIBLE)
    .order_by(ToolVersion.id)
)
IMAGES = (
    select(VersionImage.version_id, VersionImage.digest, VersionImage.size, VersionImage.created)
    .join(ToolVersion, ToolVersion.id == VersionImage.version_id)
    .where(*_VISIBLE)
    .order_by(VersionImage.id)
)
VERSION_BY_NAME = select(ToolVersion.id, ToolVersion.name, ToolVersion.source_commit).where(
    ToolVersion.tool_id == bindparam("tool", type_=Integer),
    ToolVersion.name == bindparam("name", type_=String),
    versions_visible_to(None),
)
FILES = (
    select(
        VersionFile.path,
        VersionFile.file_type,
        VersionFile.descriptor_type,
        VersionFile.content,
        VersionFile.sha256,
    )
    .where(VersionFile.version_id == bindparam("version", type_=Integer))
    .order_by(VersionFile.path)
)
FILE_KINDS = (
    select(VersionFile.version_id, VersionFile.file_type, VersionFile.descriptor_type)
    .join(ToolVersion, ToolVersion.id == VersionFile.version_id)
    .where(
        *_VISIBLE,
        VersionFile.file_type.in_((FileType.PRIMARY_DESCRIPTOR, FileType.CONTAINERFILE)),
    )
)


class FastReads:
    """ASGI middleware answering anonymous reads of tools, versions and `/tools` pages."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        prefixes: tuple[str, ...],
        engine: Engine,
        count_use: Callable[[int], None],
    ) -> None:
        self.app = app
        self.prefixes = prefixes
        self.engine = engine
        self.count_use = count_use
        #: SQLite's reads take tenths of a millisecond: a thread would cost more than them.
        self.inline = engine.dialect.name == "sqlite"
        self.answered = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self._route(scope)
        if route is None:
            await self.app(scope, receive, send)
            return
        prefix, remainder = route
        request = Request(scope)
        asked = Asked(
            root=external_url(request),
            prefix=prefix,
            query=scope["query_string"],
            accept=request.headers.get("accept", ""),
        )
        if self.inline:
            answer = self._read(remainder, asked)
        else:
            answer = await to_thread.run_sync(self._read, remainder, asked)
        if answer is None:
            await self.app(scope, receive, send)
            return
        self.answered += 1
        if answer.use_of is not None:
            self.count_use(answer.use_of)
        await _send(scope, send, request, answer)

    def _route(self, scope: Scope) -> tuple[str, str] | None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            return None
        if any(name == b"authorization" for name, _ in scope["headers"]):
            return None  # a token may see more: the app decides
        raw = scope.get("raw_path") or scope["path"].encode()
        path = raw.decode("latin-1").split("?", 1)[0]
        for prefix in self.prefixes:
            if path == f"{prefix}/tools":
                return prefix, ""
            if path.startswith(f"{prefix}/tools/"):
                return prefix, path[len(prefix) + len("/tools/") :]
        return None

    def _read(self, remainder: str, asked: Asked) -> Answer:
        with self.engine.connect() as connection:
            if remainder == "":
                return _page(connection, asked)
            if unquote(remainder).startswith(TRS_PREFIX):
                return None
            return _tool(connection, remainder, asked)


def _tool(connection: Connection, remainder: str, asked: Asked) -> Answer:
    """`/tools/{id}`, `/tools/{id}/versions`, `/tools/{id}/versions/{version}` and a version's
    containerfile, descriptors, tests and files."""
    tails = candidate_ids(remainder, _canonical_id)
    rows = {
        row.path.lower(): row for row in connection.execute(TOOLS_BY_PATH, {"paths": list(tails)})
    }
    found = next((rows[candidate] for candidate in tails if candidate in rows), None)
    if found is None:  # missing or unpublished: the same answer either way, as the app's
        return Reply(404, _dumps({"code": 404, "message": not_found_message(remainder)}))
    tail = tails[found.path.lower()]
    if len(tail) > 2:
        return _files(connection, found, tail, asked)
    base = asked.base
    (tool,), versions = _facts(connection, [found])
    mine = versions[found.id]
    if not tail:
        return _ok(views.tool_json(tool, mine, base))
    if tail == ["versions"]:
        return _ok([views.version_json(tool, v, base) for v in mine])
    wanted = version_name(tool.path, tail[1])
    version = next((v for v in mine if v.name == wanted), None)
    if version is None:
        return None
    return _ok(views.version_json(tool, version, base))


def _files(connection: Connection, found: Any, tail: list[str], asked: Asked) -> Answer:
    """A version's containerfile, descriptor, tests or files (a zip is the app's, as is every
    answer that is not found: the app words it)."""
    kind = views.descriptor_type(tail[2])
    if kind is None and tail[2:] != ["containerfile"]:
        return None
    wanted = version_name(found.path, tail[1])
    row = connection.execute(VERSION_BY_NAME, {"tool": found.id, "name": wanted}).first()
    if row is None:
        return None
    stored = connection.execute(FILES, {"version": row.id})
    version = _Version(row.name, [_File(*file) for file in stored])
    git_url = found.source["git_url"] if found.source else None

    def wrap(file: _File) -> dict[str, Any]:
        url = file_url(asked.root, found.id, version.name, file.path)
        return views.file_wrapper(file, url, git_url, row.source_commit)

    try:
        if kind is None:
            return _ok([wrap(f) for f in files.containerfiles(found.path, version)])
        descriptor, plain = kind
        answer, value = version_files(
            found.path,
            version,
            descriptor,
            tail[3:],
            plain=plain or accepts_plain(asked.accept),
            wrap=wrap,
            zipped=dict(_params(asked.query)).get("format") == "zip",
        )
    except NotFound:
        return None
    if answer == "zip":
        return None
    use = found.id if tail[3:4] in (["descriptor"], ["files"]) else None
    if answer == "plain":
        body = value.encode("utf-8")
        return Reply(200, body, _NO_CACHE, "text/plain; charset=utf-8", use_of=use)
    return Reply(200, _dumps(value), _NO_CACHE if use else {}, use_of=use)


#: Descriptors and files count as uses: clients revalidate them each time (as the app says).
_NO_CACHE = {"cache-control": "no-cache"}


def _params(query: bytes) -> list[tuple[str, str]]:
    return parse_qsl(query.decode("latin-1"), keep_blank_values=True)


def _page(connection: Connection, asked: Asked) -> Answer:
    """`/tools?limit=&offset=` without filters: published tools by name, with versions."""
    base = asked.base
    params = _params(asked.query)
    given = dict(params)
    if len(given) != len(params) or set(given) - {"limit", "offset"}:
        return None  # filters, repeated parameters: the app's
    limit = given.get("limit")
    if limit is not None and not (limit.isascii() and limit.isdigit() and len(limit) < 6):
        return None
    size = min(int(limit) if limit else MAX_LIMIT, MAX_LIMIT)
    if size < 1:
        return None
    try:
        start = _offset(given.get("offset"))
    except DockyardError:
        return None  # the app words the error
    total = connection.execute(PUBLISHED_TOOLS).scalar_one()
    if start + size > total and connection.execute(PUBLISHED_WORKFLOWS).scalar_one():
        return None  # the page reaches the workflows listed after the tools
    rows = list(connection.execute(TOOLS_PAGE, {"limit": size, "offset": start}))
    tools, versions = _facts(connection, rows)
    body = [
        views.tool_json(tool, versions[row.id], base) for tool, row in zip(tools, rows, strict=True)
    ]
    return Reply(200, _dumps(body), paging_headers(base, {}, total, start, size))


def _facts(
    connection: Connection, rows: Sequence[Any]
) -> tuple[list[views.ToolFacts], dict[int, list[views.VersionFacts]]]:
    """The tools of `rows` and their visible versions, in four queries however many."""
    ids = [row.id for row in rows]
    aliases = tool_aliases(connection, ids)
    names: dict[int, list[str]] = {i: [] for i in ids}
    for tool_id, username in connection.execute(MAINTAINERS, {"tools": ids}):
        names[tool_id].append(username)
    images: dict[int, list[views.ImageFacts]] = {}
    for version_id, digest, size, created in connection.execute(IMAGES, {"tools": ids}):
        images.setdefault(version_id, []).append(views.ImageFacts(digest, size, created))
    kinds: dict[int, set[str]] = {}
    containerfiles: set[int] = set()
    for version_id, file_type, descriptor_type in connection.execute(FILE_KINDS, {"tools": ids}):
        if file_type == FileType.CONTAINERFILE:
            containerfiles.add(version_id)
        elif descriptor_type:
            kinds.setdefault(version_id, set()).add(descriptor_type)
    versions: dict[int, list[views.VersionFacts]] = {i: [] for i in ids}
    for tool_id, vid, name, description, updated, reference, commit in connection.execute(
        VERSIONS, {"tools": ids}
    ):
        versions[tool_id].append(
            views.VersionFacts(
                id=vid,
                name=name,
                description=description,
                updated_at=updated,
                source_reference=reference,
                source_commit=commit,
                images=images.get(vid, []),
                descriptor_types=sorted(kinds.get(vid, ())),
                containerfile=vid in containerfiles,
            )
        )
    tools = [
        views.ToolFacts(
            path=row.path,
            host=row.host,
            namespace=row.namespace,
            repository=row.repository,
            toolname=row.toolname,
            description=row.description,
            updated_at=row.updated_at,
            default_version_id=row.default_version_id,
            git_url=row.source["git_url"] if row.source else None,
            maintainers=names[row.id],
            aliases=aliases.get(row.id, []),
        )
        for row in rows
    ]
    return tools, versions


def _ok(value: Any) -> Answer:
    return Reply(200, _dumps(value))


def _dumps(value: Any) -> bytes:
    """The bytes Starlette's JSONResponse would send."""
    return json.dumps(
        value, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode("utf-8")


async def _send(scope: Scope, send: Send, request: Request, reply: Reply) -> None:
    """As the app sends a TRS answer: CORS, a strong ETag, 304 when the client has it."""
    status, body, extra = reply.status, reply.body, reply.headers
    if status != 200:  # errors carry no ETag, as the app's
        headers = [
            (b"content-length", str(len(body)).encode()),
            (b"content-type", b"application/json"),
            (b"access-control-allow-origin", b"*"),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
        )
        return
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    wanted = {tag.strip() for tag in request.headers.get("if-none-match", "").split(",")}
    if etag in wanted or "*" in wanted:
        headers = [(b"access-control-allow-origin", b"*"), (b"etag", etag.encode())]
        await send({"type": "http.response.start", "status": 304, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return
    headers = [
        (b"content-length", str(len(body)).encode()),
        (b"content-type", reply.content_type.encode()),
        (b"access-control-allow-origin", b"*"),
        *((name.encode(), value.encode("latin-1")) for name, value in extra.items()),
        (b"etag", etag.encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
