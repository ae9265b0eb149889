"""Loopback helpers: a free port, a host guard that lets loopback through, the proxy variables."""

from __future__ import annotations

import socket

from dockyard.egress import HostGuard

OPEN_GUARD = HostGuard(allow_private=True)


PROXY_VARIABLES = (
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
