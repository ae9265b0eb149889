"""Registry answers scripted in the tests, given to the registry client as its `Fetch`.

An `httpx.MockTransport` (a handler that returns `httpx.Response`s) answers in place of the
network; this turns its answers into the transport's `Reply`s and its errors into the
transport's, so the client above it runs as it does against aiohttp.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from dockyard.registries.transport import (
    AnswerTooLarge,
    Fetch,
    Reply,
    TransportTimeout,
    Unreachable,
    headers_of,
)


def fetch_from(transport: httpx.AsyncBaseTransport) -> Fetch:
    """A `Fetch` answered by an httpx transport (usually `httpx.MockTransport`)."""

    async def fetch(
        method: str, url: str, headers: Mapping[str, str], *, limit: int, timeout: float
    ) -> Reply:
        request = httpx.Request(method, url, headers=dict(headers))
        try:
            response = await transport.handle_async_request(request)
            body = await response.aread()
        except httpx.TimeoutException:
            raise TransportTimeout("timed out") from None
        except httpx.TransportError as error:
            raise Unreachable(f"{type(error).__name__}") from None
        pairs = headers_of(list(response.headers.multi_items()))
        if method == "HEAD":  # what a HEAD declares is the size of what a GET would send
            return Reply(response.status_code, pairs, b"")
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise AnswerTooLarge(limit, int(declared))
        if len(body) > limit:
            raise AnswerTooLarge(limit)
        return Reply(response.status_code, pairs, body)

    return fetch
