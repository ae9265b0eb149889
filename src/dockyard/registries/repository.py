"""What the registry client is told about a repository, and what it reads back."""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from dockyard.errors import RegistryProtocolError
from dockyard.registries.catalog import HOSTED_IN_FLIGHT
from dockyard.registries.transport import Headers


@dataclass(frozen=True)
class Credentials:
    """A username and secret for a registry; the secret never shows in reprs or messages."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class Repository:
    """Where an image lives, as the client needs it."""

    host: str
    name: str
    base_url: str
    credentials: Credentials | None = field(default=None, repr=False)
    #: Requests the client keeps on the wire to this repository's registry at once.
    max_in_flight: int = HOSTED_IN_FLIGHT

    @property
    def location(self) -> str:
        """The repository's address, which the client's caches are keyed by."""
        return f"{self.base_url}/{self.name}"

    @property
    def pull_scope(self) -> str:
        """The token scope that lets a client read the repository."""
        return f"repository:{self.name}:pull"

    def where(self) -> dict[str, str]:
        """The fields that locate an error."""
        return {"host": self.host, "repository": self.name}


@dataclass
class Answer:
    """A registry's answer as the client reads it: the reply and the address it came from."""

    status: int
    headers: Headers
    body: bytes
    url: str

    def json(self, what: str, repository: Repository) -> Any:
        """The body as JSON, or a protocol error that says which answer was not."""
        try:
            return json.loads(self.body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise RegistryProtocolError(f"{what} is not valid JSON", **repository.where()) from None

    def oci_error(self) -> tuple[str | None, str | None]:
        """The code and message of the first OCI error in the body, if it holds one."""
        try:
            errors = json.loads(self.body).get("errors") or []
            first = errors[0]
            return str(first.get("code") or "") or None, str(first.get("message") or "") or None
        except (ValueError, AttributeError, IndexError, TypeError):
            return None, None

    def detail(self) -> str:
        """ ": <the OCI error message>" when the body has one, else ""."""
        message = self.oci_error()[1]
        return f": {message}" if message else ""


def base_url_for(host: str, *, api_host: str | None = None, insecure: bool = False) -> str:
    """The registry's API root: plain HTTP for loopback hosts (as Docker does) or `insecure`."""
    target = api_host or host
    hostname = urlsplit(f"//{target}").hostname or target
    loopback = hostname == "localhost" or _is_loopback_literal(hostname)
    return f"{'http' if insecure or loopback else 'https'}://{target}"


def _is_loopback_literal(hostname: str) -> bool:
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False
