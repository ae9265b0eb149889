"""The app under test: its secret key, a bearer header, and a real server on loopback."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import uvicorn

from dockyard.accounts.models import User
from dockyard.app import create_app
from dockyard.settings import Settings

TEST_SECRET_KEY = "test-secret-key-" + "x" * 32


def bearer(token: str) -> dict[str, str]:
    """The header that authenticates an API request."""
    return {"Authorization": f"Bearer {token}"}


@contextmanager
def serving(settings: Settings | Callable[[str], Settings]) -> Iterator[str]:
    """A real dockyard server (uvicorn in a thread on loopback) for `settings` (or for the
    settings made from its URL, for settings that name it); its URL."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    if not isinstance(settings, Settings):
        settings = settings(f"http://127.0.0.1:{port}")
    with serve_asgi(create_app(settings), listener) as url:
        yield url


@contextmanager
def serve_asgi(app: Any, listener: socket.socket | None = None) -> Iterator[str]:
    """Any ASGI app served by uvicorn in a thread on loopback; its URL."""
    if listener is None:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", workers=1))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the live server did not start", pytrace=False)
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()


#: The `make_user` fixture: a new user and an API token of theirs.
MakeUser = Callable[..., tuple[User, str]]
