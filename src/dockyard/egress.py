"""Where dockyard may connect: the guard against requests into the operator's own network.

Registry calls and git fetches both go to addresses that users name. Unless the operator
allows it, a host that resolves to a loopback, private, link-local or metadata address is
refused (server-side request forgery). The registry client gives this guard to its
connector as the resolver, so the addresses checked are the addresses connected to; git is
pinned to the addresses `addresses` returns.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import SplitResult, urlsplit

from dockyard.errors import RegistryHostRefused, RegistryUnavailable

#: Seconds a host's addresses stay checked before `check` resolves it again.
GUARD_RECHECK = 60.0
DEFAULT_PORTS = {"http": 80, "https": 443}

Resolve = Callable[[str, int], Awaitable[list[str]]]


class HostGuard:
    """Refuses hosts that resolve to loopback, private, link-local or metadata addresses.

    `check_peer` judges one address a host resolved to (the connector calls it for every
    resolution); `check` resolves a URL's host itself, at most once a minute, for requests
    whose connection someone else makes (a proxy); `addresses` resolves and checks every
    time, for clients that are then pinned to the result (git).
    """

    def __init__(
        self,
        *,
        allow_private: bool = False,
        trusted_hosts: Iterable[str] = (),
        is_trusted: Callable[[str], bool] | None = None,
        resolve: Resolve | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.allow_private = allow_private
        self.trusted_hosts = frozenset(host.lower() for host in trusted_hosts)
        self._is_trusted = is_trusted
        self._resolve = resolve or _resolve
        self._clock = clock
        #: (host, port) -> when its addresses were last found acceptable.
        self._checked: dict[tuple[str, int], float] = {}

    def _exempt(self, hostname: str, *netlocs: str) -> bool:
        if self.allow_private or hostname in self.trusted_hosts:
            return True
        if any(netloc in self.trusted_hosts for netloc in netlocs):
            return True
        return self._is_trusted is not None and any(self._is_trusted(n) for n in netlocs)

    async def check(self, url: str) -> None:
        """Raise `RegistryHostRefused` unless the URL's host is allowed."""
        origin = host_and_port(urlsplit(url))
        checked = self._checked.get(origin)
        if checked is not None and self._clock() - checked < GUARD_RECHECK:
            return
        await self.addresses(url)
        self._checked[origin] = self._clock()

    async def addresses(self, url: str) -> list[str]:
        """The addresses the URL's host resolves to, each checked as `check` does (never
        cached); [] for a host the operator exempted. A client that resolves names itself
        (git) is pinned to them, so the name cannot resolve elsewhere by the time it
        connects."""
        parts = urlsplit(url)
        hostname, port = host_and_port(parts)
        if self._exempt(hostname, parts.netloc.rpartition("@")[2].lower()):
            return []
        try:
            addresses = await self._resolve(hostname, port)
        except OSError:
            raise RegistryUnavailable(f"cannot resolve {hostname}", host=hostname) from None
        for address in addresses:
            self._refuse_unless_global(hostname, address)
        return addresses

    def check_peer(self, host: str, port: int, address: str) -> None:
        """Raise `RegistryHostRefused` if the host resolved to a refused address."""
        hostname = host.lower()
        if not self._exempt(hostname, hostname, f"{hostname}:{port}"):
            self._refuse_unless_global(hostname, address)

    @staticmethod
    def _refuse_unless_global(hostname: str, address: str) -> None:
        ip = ipaddress.ip_address(address.split("%")[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if not ip.is_global:
            # The rule, not the address: a message that named it would tell any user what
            # an internal name resolves to.
            raise RegistryHostRefused(
                f"{hostname} is on a loopback, private or link-local network, where dockyard "
                "does not connect; the operator can allow it with "
                "DOCKYARD_ALLOW_PRIVATE_NETWORK_REGISTRIES or by listing the host in the "
                "registries file",
                host=hostname,
            )


def host_and_port(parts: SplitResult) -> tuple[str, int]:
    """A URL's host in lower case and its port, the scheme's default when none is given."""
    return (parts.hostname or "").lower(), parts.port or DEFAULT_PORTS.get(parts.scheme, 80)


async def _resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]
