"""`dockyard access ...`: request, list and decide access to private tools, over the REST API."""

from __future__ import annotations

import sys
from typing import Any

import click

from dockyard.cli.client import (
    ApiClient,
    echo_json,
    json_option,
    open_client,
    pass_client,
    url_option,
)
from dockyard.cli.local import echo_table


@click.group()
@url_option
@click.pass_context
def access(ctx: click.Context, url: str) -> None:
    """Access requests for private tools (server from --url/DOCKYARD_URL)."""
    open_client(ctx, url)


@access.command("request")
@click.argument("tool_ref", metavar="TOOL")
@click.option(
    "--username",
    "identity",
    required=True,
    help="Your identity in the tool's registry (ECR: AWS account id or IAM ARN).",
)
@click.option("--message", default="", help="A note for the maintainers.")
@json_option
@pass_client
def request(client: ApiClient, tool_ref: str, identity: str, message: str, as_json: bool) -> None:
    """Ask TOOL's maintainers for permission to pull its image."""
    found = client.find_tool(tool_ref)
    created = client.post(
        f"/api/tools/{found['id']}/access-requests",
        json={"registry_username": identity, "message": message},
    )
    if as_json:
        echo_json(created)
    else:
        click.echo(
            f"request {created['id']} sent to the maintainers of {found['path']} "
            f"(as {created['registry_identity']}); you will be told when they decide"
        )


@access.command("list")
@click.option(
    "--role",
    type=click.Choice(["all", "mine", "inbox"]),
    default="all",
    show_default=True,
    help="mine: requests you made; inbox: requests you may decide.",
)
@click.option(
    "--status",
    type=click.Choice(["pending", "granted", "denied", "revoked", "withdrawn"]),
    default=None,
)
@json_option
@pass_client
def list_requests(client: ApiClient, role: str, status: str | None, as_json: bool) -> None:
    """Requests you made or may decide, newest first."""
    params: dict[str, Any] = {"role": role, "limit": 200}
    if status:
        params["status"] = status
    answer = client.get("/api/access-requests", params=params)
    if as_json:
        echo_json(answer)
        return
    echo_table(
        ["ID", "TOOL", "REQUESTER", "IDENTITY", "STATUS", "CREATED"],
        [
            [
                str(item["id"]),
                item["tool"]["path"],
                item["requester"],
                item["registry_identity"],
                item["status"],
                item["created_at"][:16].replace("T", " "),
            ]
            for item in answer["items"]
        ],
    )


def _decide(client: ApiClient, request_id: int, action: str, body: dict[str, Any]) -> Any:
    return client.post(f"/api/access-requests/{request_id}/{action}", json=body)


def _report(answer: dict[str, Any], as_json: bool) -> None:
    if as_json:
        echo_json(answer)
        return
    request, step = answer["request"], answer["registry_step"]
    click.echo(f"request {request['id']} for {request['tool']['path']} is {request['status']}")
    if step["method"] != "manual":
        click.echo(f"registry: {step['detail']}")
    elif request["status"] in {"granted", "revoked"} and request.get("grant_steps"):
        click.echo("do this in the registry yourself:")
        for line in request["grant_steps"]:
            click.echo(f"  - {line}")


@access.command("grant")
@click.argument("request_id", type=int)
@click.option(
    "--manual",
    is_flag=True,
    help="Record the grant only; you give the permission in the registry yourself.",
)
@json_option
@pass_client
def grant(client: ApiClient, request_id: int, manual: bool, as_json: bool) -> None:
    """Grant a pending request (dockyard applies it in ECR or Quay where it can)."""
    _report(_decide(client, request_id, "grant", {"apply": not manual}), as_json)


@access.command("deny")
@click.argument("request_id", type=int)
@click.option("--reason", required=True, help="Why; the requester reads it.")
@json_option
@pass_client
def deny(client: ApiClient, request_id: int, reason: str, as_json: bool) -> None:
    """Deny a pending request."""
    _report(_decide(client, request_id, "deny", {"reason": reason}), as_json)


@access.command("revoke")
@click.argument("request_id", type=int)
@click.option("--reason", default="", help="Why; the requester reads it.")
@click.option("--manual", is_flag=True, help="Record only; remove the permission yourself.")
@json_option
@pass_client
def revoke(client: ApiClient, request_id: int, reason: str, manual: bool, as_json: bool) -> None:
    """Take back a granted request."""
    body = {"reason": reason, "apply": not manual}
    _report(_decide(client, request_id, "revoke", body), as_json)


@access.command("withdraw")
@click.argument("request_id", type=int)
@json_option
@pass_client
def withdraw(client: ApiClient, request_id: int, as_json: bool) -> None:
    """Withdraw a pending request you made."""
    _report(client.post(f"/api/access-requests/{request_id}/withdraw"), as_json)


@access.command("pull")
@click.argument("tool_ref", metavar="TOOL")
@click.option("--version", default=None, help="A version other than the default.")
@json_option
@pass_client
def pull(client: ApiClient, tool_ref: str, version: str | None, as_json: bool) -> None:
    """Login and pull commands for TOOL (private tools: once access is granted)."""
    found = client.find_tool(tool_ref)
    params = {"version": version} if version else {}
    answer = client.get(f"/api/tools/{found['id']}/pull-instructions", params=params)
    if as_json:
        echo_json(answer)
        return
    if answer["login"]:
        click.echo("# sign in to the registry")
        for line in answer["login"]:
            note = f"    # {line['note']}" if line.get("note") else ""
            click.echo(f"{line['command']}{note}")
    click.echo("# pull")
    for line in answer["pull"]:
        click.echo(line["command"])


@access.command("policy")
@click.argument("tool_ref", metavar="TOOL")
@click.option("--principal", required=True, help="12-digit AWS account id or IAM ARN.")
@json_option
@pass_client
def policy(client: ApiClient, tool_ref: str, principal: str, as_json: bool) -> None:
    """The ECR repository policy statement that lets PRINCIPAL pull TOOL."""
    import json

    found = client.find_tool(tool_ref)
    answer = client.get(f"/api/tools/{found['id']}/ecr-policy", params={"principal": principal})
    if as_json:
        echo_json(answer)
        return
    click.echo(json.dumps(answer["statement"], indent=2))
    click.echo(f"# merge it into the repository policy, then: {answer['command']}", err=True)


@access.command("log")
@click.argument("tool_ref", metavar="TOOL")
@json_option
@pass_client
def audit_log(client: ApiClient, tool_ref: str, as_json: bool) -> None:
    """TOOL's access audit log, newest first (maintainers only)."""
    found = client.find_tool(tool_ref)
    answer = client.get(f"/api/tools/{found['id']}/access-log", params={"limit": 200})
    if as_json:
        echo_json(answer)
        return
    echo_table(
        ["WHEN", "REQUEST", "WHO", "ACTION", "DETAIL"],
        [
            [
                e["created_at"][:19].replace("T", " "),
                str(e["request_id"] or "-"),
                e["actor"] or "-",
                e["action"],
                e["detail"],
            ]
            for e in answer["items"]
        ],
    )


@access.group("token")
def token() -> None:
    """The Quay API token that lets dockyard grant and revoke read access itself."""


@token.command("set")
@click.argument("tool_ref", metavar="TOOL")
@pass_client
def token_set(client: ApiClient, tool_ref: str) -> None:
    """Save the token, read from standard input (never from the command line)."""
    secret = sys.stdin.readline().strip()
    if not secret:
        raise click.UsageError("give the token on standard input")
    found = client.find_tool(tool_ref)
    client.request("PUT", f"/api/tools/{found['id']}/grant-token", json={"token": secret})
    click.echo(f"grant token saved for {found['path']}")


@token.command("clear")
@click.argument("tool_ref", metavar="TOOL")
@pass_client
def token_clear(client: ApiClient, tool_ref: str) -> None:
    """Forget the token."""
    found = client.find_tool(tool_ref)
    client.request("DELETE", f"/api/tools/{found['id']}/grant-token")
    click.echo(f"grant token of {found['path']} removed")
