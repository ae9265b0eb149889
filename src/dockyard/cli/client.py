"""A small REST client for the client commands: server URL and token from the environment."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import click
import httpx

from dockyard import __version__
from dockyard.errors import InvalidReference
from dockyard.registries.reference import parse_reference

DEFAULT_URL = "http://127.0.0.1:8000"


class ApiError(click.ClickException):
    """The server refused a request; its message is printed as one line, exit status 1."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        click.echo(f"dockyard: error: {self.message}", err=True)


class ApiClient:
    """Calls dockyard's REST API with the caller's token."""

    def __init__(
        self, url: str, token: str | None, *, transport: httpx.BaseTransport | None = None
    ):
        headers = {"User-Agent": f"dockyard-cli/{__version__}", "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=60, transport=transport
        )

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send one request; return the decoded JSON body (None for 204)."""
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as error:
            raise ApiError(
                f"cannot reach dockyard at {self.url} ({type(error).__name__}): start it with "
                "`dockyard serve` or point --url / DOCKYARD_URL at it"
            ) from None
        if response.status_code == 204:
            return None
        try:
            body = response.json()
        except json.JSONDecodeError:
            body = None
        if response.is_error:
            raise ApiError(_error_message(response, body))
        return body

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def stream_lines(self, method: str, path: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """Send one request and yield the JSON objects of an NDJSON answer as they arrive."""
        headers = {"Accept": "application/x-ndjson", **kwargs.pop("headers", {})}
        try:
            with self._http.stream(method, path, headers=headers, **kwargs) as response:
                if response.is_error:
                    response.read()
                    try:
                        body = response.json()
                    except json.JSONDecodeError:
                        body = None
                    raise ApiError(_error_message(response, body))
                for line in response.iter_lines():
                    if line.strip():
                        yield json.loads(line)
        except httpx.TransportError as error:
            raise ApiError(
                f"lost the connection to dockyard at {self.url} ({type(error).__name__})"
            ) from None

    def download(self, path: str) -> tuple[bytes, str | None]:
        """The raw body of a GET and the file name its Content-Disposition gives, if any."""
        try:
            response = self._http.get(path, headers={"Accept": "*/*"})
        except httpx.TransportError as error:
            raise ApiError(
                f"cannot reach dockyard at {self.url} ({type(error).__name__})"
            ) from None
        if response.is_error:
            try:
                body = response.json()
            except json.JSONDecodeError:
                body = None
            raise ApiError(_error_message(response, body))
        disposition = response.headers.get("content-disposition", "")
        _, _, name = disposition.partition('filename="')
        return response.content, name.rstrip('"') or None

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)

    def find_workflow(self, ref: str) -> dict[str, Any]:
        """A workflow by dockyard id, path or TRS id (`#workflow/...`)."""
        if ref.isdigit():
            workflow: dict[str, Any] = self.get(f"/api/workflows/{ref}")
            return workflow
        found = self.get("/api/workflows", params={"path": ref.removeprefix("#workflow/")})
        if not found["items"]:
            raise ApiError(f"no workflow with path {ref!r} is visible to you")
        first: dict[str, Any] = found["items"][0]
        return first

    def find_tool(self, ref: str) -> dict[str, Any]:
        """A tool by dockyard id, by path, or by the image name `register` took for it
        (`biocontainers/bwa` is `docker.io/biocontainers/bwa`, as `docker pull` reads it)."""
        if ref.isdigit():
            tool: dict[str, Any] = self.get(f"/api/tools/{ref}")
            return tool
        for path in dict.fromkeys([ref, _as_docker_reads_it(ref)]):
            if path is None:
                continue
            found = self.get("/api/tools", params={"path": path, "limit": 1})
            if found["items"]:
                first: dict[str, Any] = found["items"][0]
                return first
        raise ApiError(f"no tool with path {ref!r} is visible to you")


def _as_docker_reads_it(ref: str) -> str | None:
    """The tool path of an image name as Docker normalizes it; None for what is not one."""
    try:
        parsed = parse_reference(ref)
    except InvalidReference:
        return None
    return parsed.name if parsed.tag is None and parsed.digest is None else None


def _error_message(response: httpx.Response, body: Any) -> str:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        message = str(body["error"].get("message", "request failed"))
    else:
        message = f"the server answered {response.status_code} {response.reason_phrase}"
    if response.status_code == 401 and not response.request.headers.get("authorization"):
        message += " (set DOCKYARD_TOKEN to your API token)"
    return message


pass_client = click.make_pass_decorator(ApiClient)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")

url_option = click.option(
    "--url",
    envvar="DOCKYARD_URL",
    default=DEFAULT_URL,
    show_default=True,
    help="The dockyard server (or DOCKYARD_URL); the API token comes from DOCKYARD_TOKEN.",
)


def open_client(ctx: click.Context, url: str) -> None:
    """Give the command group's subcommands a client for `url`."""
    client = ApiClient(url, os.environ.get("DOCKYARD_TOKEN"))
    ctx.obj = client
    ctx.call_on_close(client.close)


def echo_json(value: Any) -> None:
    """Print a value as indented JSON."""
    click.echo(json.dumps(value, indent=2))
