"""The outermost HTTP layer: a request id for every request, and its place in the metrics.

The id is the caller's `X-Request-ID` when it is a plain token (a proxy in front set it),
otherwise a new one; it is on every log line written while the request is answered and in
the answer's `X-Request-ID` header. Each answer is counted by method, route template (the
path as routed, `/api/tools/{tool_id}`, never the path itself) and status, and timed.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from dockyard import logs, metrics

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_GIVEN_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
#: Methods counted as themselves; anything else is "other" (labels stay bounded).
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


class Observe:
    """ASGI middleware: request ids and HTTP metrics."""

    def __init__(self, app: ASGIApp, *, trs_prefixes: tuple[str, ...]) -> None:
        self.app = app
        #: Reads the TRS layers answer before routing, and their routes' templates.
        self._trs = [
            (f"{p}/tools", f"{p}/tools/", f"{p}/tools/{{rest:path}}") for p in trs_prefixes
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"")
        rid = given.decode() if _GIVEN_ID.fullmatch(given) else uuid.uuid4().hex
        token = logs.request_id.set(rid)
        header = (b"x-request-id", rid.encode())
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            method = scope["method"] if scope["method"] in _METHODS else "other"
            route = self._route(scope)
            metrics.HTTP_REQUESTS.labels(method, route, str(status)).inc()
            metrics.HTTP_DURATION.labels(method, route).observe(time.perf_counter() - started)
            logs.request_id.reset(token)

    def _route(self, scope: Scope) -> str:
        route = scope.get("route")
        path = getattr(route, "path", None)
        if isinstance(path, str):
            return path
        # Answered ahead of routing (the TRS cache and fast reads) or not routed at all.
        requested: str = scope["path"]
        for page, below, template in self._trs:
            if requested == page:
                return page
            if requested.startswith(below):
                return template
        return "unrouted"
