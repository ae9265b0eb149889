"""`dockyard tool ...`: register, find, publish and maintain tools on a running server."""

from __future__ import annotations

import sys
from typing import Any

import click

from dockyard.cli.client import (
    ApiClient,
    ApiError,
    echo_json,
    json_option,
    open_client,
    pass_client,
    url_option,
)
from dockyard.cli.local import echo_table
from dockyard.cli.versions import files, version


@click.group()
@url_option
@click.pass_context
def tool(ctx: click.Context, url: str) -> None:
    """Register, find, publish and maintain tools (talks to a running server)."""
    open_client(ctx, url)


tool.add_command(version)
tool.add_command(files)


@tool.command()
@click.argument("image")
@click.option("--registry", help="Registry id (e.g. quay), when IMAGE is a bare repository.")
@click.option("--registry-path", help="Registry host, for registries that need one (e.g. ECR).")
@click.option("--toolname", help="Register the same image again under IMAGE/<toolname>.")
@click.option("--private", is_flag=True, help="The image needs permission to pull.")
@click.option("--maintainer-email", help="Where access requests go (required when private).")
@click.option("--description", default="", help="What the tool does.")
@click.option("--git-url", help="A git repository holding the Dockerfile and descriptors.")
@click.option("--dockerfile-path", default="/Dockerfile", show_default=True)
@click.option(
    "--descriptor",
    "descriptors",
    multiple=True,
    metavar="TYPE=PATH",
    help="A descriptor in the repository, e.g. CWL=/Dockstore.cwl (default: CWL and WDL).",
)
@click.option(
    "--git-reference",
    default="{version}",
    show_default=True,
    help="The git branch or tag of each version; {version} is replaced by its name.",
)
@json_option
@pass_client
def register(
    client: ApiClient,
    image: str,
    registry: str | None,
    registry_path: str | None,
    toolname: str | None,
    private: bool,
    maintainer_email: str | None,
    description: str,
    git_url: str | None,
    dockerfile_path: str,
    descriptors: tuple[str, ...],
    git_reference: str,
    as_json: bool,
) -> None:
    """Register IMAGE (a repository, without tag) as a tool."""
    source = None
    if git_url:
        pairs = [text.partition("=") for text in descriptors]
        if any(not sep or not path for _, sep, path in pairs):
            raise ApiError("give each --descriptor as TYPE=PATH, e.g. CWL=/Dockstore.cwl")
        source = {
            "git_url": git_url,
            "dockerfile_path": dockerfile_path,
            "descriptor_paths": {kind.upper(): path for kind, _, path in pairs},
            "reference": git_reference,
        }
    elif descriptors:
        raise ApiError("--descriptor needs --git-url: descriptors are read from the repository")
    body = {
        "source": source,
        "image": image,
        "registry": registry,
        "registry_path": registry_path,
        "toolname": toolname,
        "private": private,
        "maintainer_email": maintainer_email,
        "description": description,
    }
    created = client.post("/api/tools", json={k: v for k, v in body.items() if v is not None})
    _print_tool(created, as_json, f"registered {created['path']} (id {created['id']})")


@tool.command()
@click.argument("tool_ref", metavar="TOOL")
@json_option
@pass_client
def show(client: ApiClient, tool_ref: str, as_json: bool) -> None:
    """Show a tool (TOOL is its id or path) and its versions."""
    found = client.find_tool(tool_ref)
    if as_json:
        found["version_details"] = client.get(f"/api/tools/{found['id']}/versions")["items"]
        echo_json(found)
        return
    _print_tool(found, False, None)
    versions = client.get(f"/api/tools/{found['id']}/versions")["items"]
    if versions:
        click.echo()
        echo_table(
            ["VERSION", "DEFAULT", "HIDDEN", "PLATFORMS", "FILES"],
            [
                [
                    v["name"],
                    "yes" if v["is_default"] else "",
                    "yes" if v["hidden"] else "",
                    ", ".join(_platform(i) for i in v["images"]) or "-",
                    str(len(v["files"])),
                ]
                for v in versions
            ],
        )


@tool.command("list")
@click.argument("query", required=False)
@click.option("--mine", is_flag=True, help="Only tools you maintain.")
@click.option("--registry", help="Only tools from this registry id.")
@click.option("--namespace", help="Only tools of this organization or user.")
@click.option("--descriptor-type", help="Only tools with this descriptor type (CWL, WDL, ...).")
@click.option("--private/--public", "private", default=None, help="Only private or public tools.")
@click.option(
    "--sort",
    default="name",
    show_default=True,
    help="name, updated, created or -uses (most used first); '-' for descending.",
)
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 100))
@click.option("--offset", default=0, show_default=True, type=click.IntRange(0))
@json_option
@pass_client
def list_tools(client: ApiClient, /, query: str | None, as_json: bool, **filters: Any) -> None:
    """List (and search) the tools you can see."""
    params = {"q": query, **filters}
    page = client.get(
        "/api/tools", params={k: v for k, v in params.items() if v not in (None, False)}
    )
    if as_json:
        echo_json(page)
        return
    echo_table(
        ["ID", "PATH", "PUBLISHED", "PRIVATE", "VERSIONS", "DESCRIPTORS"],
        [
            [
                str(t["id"]),
                t["path"],
                "yes" if t["published"] else "no",
                "yes" if t["private"] else "",
                str(len(t["versions"])),
                ",".join(t["descriptor_types"]),
            ]
            for t in page["items"]
        ],
    )
    shown = page["offset"] + len(page["items"])
    click.echo(
        f"{page['total']} tool(s); showing {page['offset'] + 1 if page['items'] else 0}-{shown}",
        err=True,
    )


@tool.command()
@click.argument("tool_ref", metavar="TOOL")
@click.option("--description")
@click.option("--maintainer-email")
@click.option("--private/--public", "private", default=None)
@click.option("--default-version")
@click.option("--tag-pattern", help="Only tags matching this regular expression become versions.")
@json_option
@pass_client
def update(client: ApiClient, /, tool_ref: str, as_json: bool, **changes: Any) -> None:
    """Change a tool's description, maintainer email, visibility or default version."""
    body = {key: value for key, value in changes.items() if value is not None}
    if not body:
        raise ApiError("nothing to change: give at least one option (see --help)")
    found = client.find_tool(tool_ref)
    updated = client.request("PATCH", f"/api/tools/{found['id']}", json=body)
    _print_tool(updated, as_json, f"updated {updated['path']}")


@tool.command()
@click.argument("tool_ref", metavar="TOOL")
@json_option
@pass_client
def publish(client: ApiClient, tool_ref: str, as_json: bool) -> None:
    """Publish a tool: list it publicly and in TRS."""
    found = client.find_tool(tool_ref)
    _print_tool(
        client.post(f"/api/tools/{found['id']}/publish"), as_json, f"published {found['path']}"
    )


@tool.command()
@click.argument("tool_ref", metavar="TOOL")
@json_option
@pass_client
def unpublish(client: ApiClient, tool_ref: str, as_json: bool) -> None:
    """Unpublish a tool: only its maintainers see it."""
    found = client.find_tool(tool_ref)
    _print_tool(
        client.post(f"/api/tools/{found['id']}/unpublish"), as_json, f"unpublished {found['path']}"
    )


@tool.command()
@click.argument("tool_ref", metavar="TOOL")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_client
def delete(client: ApiClient, tool_ref: str, yes: bool) -> None:
    """Delete a tool with all its versions and files."""
    found = client.find_tool(tool_ref)
    if not yes:
        click.confirm(f"delete {found['path']} and all its versions?", abort=True, err=True)
    client.request("DELETE", f"/api/tools/{found['id']}")
    click.echo(f"deleted {found['path']}")


@tool.command()
@click.argument("tool_ref", metavar="TOOL")
@json_option
@pass_client
def refresh(client: ApiClient, tool_ref: str, as_json: bool) -> None:
    """Read TOOL's tags, digests and platforms from its registry now, showing progress."""
    found = client.find_tool(tool_ref)
    report: dict[str, Any] | None = None
    for event in client.stream_lines("POST", f"/api/tools/{found['id']}/refresh"):
        kind = event.get("event")
        if kind == "tags":
            click.echo(f"{found['path']}: {event['total']} tag(s) to read", err=True)
        elif kind == "tag":
            if "problem" in event:
                state = f"problem: {event['problem']}"
            else:
                state = f"{event['digest'][:19]}{'' if event.get('changed') else ' (unchanged)'}"
            click.echo(f"  [{event['done']}/{event['total']}] {event['tag']}  {state}", err=True)
        elif kind == "done":
            report = event["report"]
        elif kind in {"failed", "error"}:
            raise ApiError(f"refresh of {found['path']} failed: {event['message']}")
    if report is None:
        raise ApiError("the server ended the refresh without a report; see its log")
    if as_json:
        echo_json(report)
        return
    counts = ", ".join(
        f"{len(report[key])} {key}" for key in ("added", "updated", "moved", "removed", "unchanged")
    )
    click.echo(f"refreshed {report['path']}: {report['tags']} tags; {counts}")
    for tag, problem in report["problems"].items():
        click.echo(f"  problem with {tag}: {problem}")
    sources = report.get("sources")
    if sources:
        click.echo(
            f"git: {len(sources['synced'])} reference(s) read, {sources['unchanged']} unchanged"
        )
        for reference, problem in sources["problems"].items():
            click.echo(f"  problem with {reference}: {problem}")


@tool.group()
def credentials() -> None:
    """Registry credentials the refresh uses for a private image (write-only)."""


@credentials.command("set")
@click.argument("tool_ref", metavar="TOOL")
@click.option("--username", required=True, help="Registry username (or AWS access key id).")
@click.option("--password-stdin", is_flag=True, help="Read the password or token from stdin.")
@click.option("--aws", is_flag=True, help="The credentials are AWS keys (private ECR).")
@pass_client
def credentials_set(
    client: ApiClient, tool_ref: str, username: str, password_stdin: bool, aws: bool
) -> None:
    """Store credentials for TOOL's registry (the secret from stdin or a prompt)."""
    if password_stdin:
        secret = sys.stdin.read().strip()
    else:
        secret = click.prompt("Password or token", hide_input=True)
    if not secret:
        raise ApiError("the password is empty")
    found = client.find_tool(tool_ref)
    body = {"kind": "aws" if aws else "basic", "username": username, "password": secret}
    client.request("PUT", f"/api/tools/{found['id']}/credentials", json=body)
    click.echo(f"credentials for {found['path']} saved (the secret is stored encrypted)")


@credentials.command("clear")
@click.argument("tool_ref", metavar="TOOL")
@pass_client
def credentials_clear(client: ApiClient, tool_ref: str) -> None:
    """Forget TOOL's registry credentials."""
    found = client.find_tool(tool_ref)
    client.request("DELETE", f"/api/tools/{found['id']}/credentials")
    click.echo(f"credentials for {found['path']} removed")


@tool.group()
def maintainers() -> None:
    """Add and remove a tool's maintainers."""


@maintainers.command("add")
@click.argument("tool_ref", metavar="TOOL")
@click.argument("username")
@pass_client
def maintainers_add(client: ApiClient, tool_ref: str, username: str) -> None:
    """Make USERNAME a maintainer of TOOL."""
    found = client.find_tool(tool_ref)
    updated = client.post(f"/api/tools/{found['id']}/maintainers", json={"username": username})
    click.echo(f"maintainers of {found['path']}: {', '.join(updated['maintainers'])}")


@maintainers.command("remove")
@click.argument("tool_ref", metavar="TOOL")
@click.argument("username")
@pass_client
def maintainers_remove(client: ApiClient, tool_ref: str, username: str) -> None:
    """Remove USERNAME from TOOL's maintainers (never the last one)."""
    found = client.find_tool(tool_ref)
    updated = client.request("DELETE", f"/api/tools/{found['id']}/maintainers/{username}")
    click.echo(f"maintainers of {found['path']}: {', '.join(updated['maintainers'])}")


def _print_tool(value: dict[str, Any], as_json: bool, headline: str | None) -> None:
    if as_json:
        echo_json(value)
        return
    if headline:
        click.echo(headline)
        return
    lines = [
        ("path", value["path"]),
        ("id", value["id"]),
        ("registry", f"{value['registry_name']} ({value['registry']})"),
        ("image", value["image"]),
        ("page", value["site_url"]),
        ("published", "yes" if value["published"] else "no"),
        ("private", "yes" if value["private"] else "no"),
        ("maintainers", ", ".join(value["maintainers"])),
        ("maintainer email", value.get("maintainer_email")),
        ("default version", value["default_version"]),
        ("descriptors", ", ".join(value["descriptor_types"]) or None),
        ("description", value["description"] or None),
    ]
    for label, shown in lines:
        if shown is not None:
            click.echo(f"{label + ':':<18}{shown}")


def _platform(image: dict[str, Any]) -> str:
    parts = [image.get("os"), image.get("architecture"), image.get("variant")]
    return "/".join(part for part in parts if part) or image["digest"][:19]
