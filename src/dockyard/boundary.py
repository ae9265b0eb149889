"""What every request must be before the app reads it: one Host, one dockyard answers for,
and text that is Unicode.

- **Host.** Links in answers (TRS `url` fields, paging links) and the TRS cache's keys come
  from the request's Host when `DOCKYARD_BASE_URL` is unset. A request with several Host
  headers is refused: one part of a stack may read the first and another the last (that is
  how a cached answer could point at another site). With `DOCKYARD_BASE_URL` set, only its
  host and those in `DOCKYARD_ALLOWED_HOSTS` are answered; the probes (`/healthz`,
  `/readyz`) and `/metrics` answer whatever the Host, for load balancers, orchestrators and
  Prometheus, which ask by address.
- **Secrets in addresses.** Registries that cannot send a header (Docker Hub, Quay) give a
  webhook's secret as `?token=`; the access log shows every such value as `[redacted]`.
- **Browser defences** on every answer: pages may run only dockyard's own scripts and styles
  (no inline ones; htmx is configured without eval), nothing may frame them, types are not
  sniffed, referrers stay on this site, and under HTTPS browsers are told to keep to it.
  Anything that is not a page (JSON, descriptors, files) runs nothing at all if a browser
  opens it.
- **Unicode.** JSON may escape a lone surrogate (`"\\ud800"`), which is no character: it
  cannot be stored or encoded; and no text dockyard keeps may hold NUL (PostgreSQL's text
  cannot). Such an address or body is refused here with a clear error, instead of failing
  deep inside.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dockyard.errors import error_body

#: Query parameters whose values never reach a log.
_SECRET_QUERY = re.compile(r"(?i)\b(token|secret|password|access_token)=[^&\s]*")
#: The policy of pages: dockyard's own scripts, styles and images only.
PAGE_POLICY = (
    b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    b"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
#: The policy of everything else: nothing runs, nothing frames it.
DATA_POLICY = b"default-src 'none'; frame-ancestors 'none'; sandbox"
#: The interactive API docs load Swagger UI from its CDN with an inline script.
DOCS_POLICY = b"frame-ancestors 'none'"
#: Sent with every answer, besides its policy.
DEFENCES = (
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
)
DOCS_PATHS = ("/api/docs",)
HSTS = b"max-age=31536000"
NUL_MESSAGE = "text cannot hold NUL characters (\\0, %00): remove them and send it again"
#: Paths answered whatever the Host: the probes and the metrics.
ANY_HOST = ("/healthz", "/readyz", "/metrics")
#: NUL in an address or a form (percent-encoded), or in JSON (escaped or raw).
_NUL = re.compile(rb"%00|\x00|\\u0000")
#: A JSON escape or raw UTF-8 of a UTF-16 surrogate: only bodies with one are decoded here.
_SURROGATE = re.compile(rb"\\u[dD][89abAB]|\\u[dD][c-fC-F]|\xed[\xa0-\xbf]")


class Boundary:
    """The ASGI middleware that refuses requests the app must not read."""

    def __init__(self, app: ASGIApp, *, hosts: Iterable[str] = ()) -> None:
        self.app = app
        #: Hosts answered (host or host:port, lower case); empty: any.
        self.hosts = frozenset(host.lower() for host in hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = _defended(scope, send)
        hosts = [value for name, value in scope["headers"] if name == b"host"]
        if len(hosts) > 1:
            await _refuse(send, 400, "bad_host", "send one Host header, not several")
            return
        host = hosts[0].decode("latin-1").lower() if hosts else ""
        if self.hosts and host not in self.hosts and not scope["path"].startswith(ANY_HOST):
            await _refuse(
                send,
                400,
                "bad_host",
                "this server does not answer for that host name; the operator lists the "
                "names it answers for in DOCKYARD_BASE_URL and DOCKYARD_ALLOWED_HOSTS",
            )
            return
        if _NUL.search(scope.get("raw_path") or b"") or _NUL.search(scope["query_string"]):
            await _refuse(send, 422, "invalid_input", NUL_MESSAGE)
            return
        content_type = dict(scope["headers"]).get(b"content-type", b"")
        if b"json" not in content_type and b"form-urlencoded" not in content_type:
            await self.app(scope, receive, send)
            return
        body, replay = await _read_body(receive)
        if _NUL.search(body):
            await _refuse(send, 422, "invalid_input", NUL_MESSAGE)
            return
        if b"json" in content_type and _SURROGATE.search(body) and not _encodable(body):
            await _refuse(
                send,
                422,  # as every invalid input in the API
                "invalid_input",
                "the JSON holds a lone surrogate (such as \\ud800), which is not a character: "
                "send text as valid Unicode",
            )
            return
        await self.app(scope, replay, send)


def _defended(scope: Scope, send: Send) -> Send:
    """`send` with the browser defences added to the answer's headers."""
    docs = scope["path"].startswith(DOCS_PATHS)
    https = scope.get("scheme") == "https"

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            present = {name.lower() for name, _ in headers}
            content_type = next((v for n, v in headers if n.lower() == b"content-type"), b"")
            policy = (
                DOCS_POLICY
                if docs
                else (PAGE_POLICY if content_type.startswith(b"text/html") else DATA_POLICY)
            )
            extra = [(b"content-security-policy", policy), *DEFENCES]
            if https:
                extra.append((b"strict-transport-security", HSTS))
            headers += [(name, value) for name, value in extra if name not in present]
            message = {**message, "headers": headers}
        await send(message)

    return sending


async def _read_body(receive: Receive) -> tuple[bytes, Receive]:
    """The whole body, and a `receive` that hands it to the app as it came."""
    chunks: list[bytes] = []
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break

    async def replay() -> Message:
        if messages:
            return messages.pop(0)
        return await receive()

    return b"".join(chunks), replay


def _encodable(body: bytes) -> bool:
    try:
        decoded = json.loads(body)
    except ValueError:
        return True  # not JSON: the app says so
    try:
        json.dumps(decoded, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


async def _refuse(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps(error_body(code, message)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RedactSecrets(logging.Filter):
    """Replaces secret query values in uvicorn's access log lines (its arguments are client,
    method, path with query, HTTP version and status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) >= 3:
            path = record.args[2]
            if isinstance(path, str) and "=" in path:
                args = list(record.args)
                args[2] = redact(path)
                record.args = tuple(args)
        return True


def redact(text: str) -> str:
    """`text` with the values of secret query parameters replaced by `[redacted]`."""
    return _SECRET_QUERY.sub(lambda match: f"{match.group(1)}=[redacted]", text)


def redact_access_log() -> None:
    """Install `RedactSecrets` on uvicorn's access log (once)."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactSecrets) for f in access.filters):
        access.addFilter(RedactSecrets())
