"""`dockyard registries list|resolve|requests`."""

from __future__ import annotations

import json

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
from dockyard.registries.catalog import Catalog
from dockyard.registries.config import catalog_for
from dockyard.registries.services import describe
from dockyard.settings import load_settings


def _catalog() -> Catalog:
    return catalog_for(load_settings(make_secret_key=False))


@click.group()
def registries() -> None:
    """The container registries this instance supports."""


@registries.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, as GET /api/registries.")
def list_registries(as_json: bool) -> None:
    """List built-in and operator-defined registries."""
    items = [registry.as_dict() for registry in _catalog().all()]
    if as_json:
        click.echo(json.dumps({"items": items, "total": len(items)}, indent=2))
        return
    rows = [
        [
            str(item["id"]),
            str(item["name"]),
            str(item["kind"]),
            ", ".join(item["hosts"]) or str(item["registry_path_form"] or "any other host"),  # type: ignore[arg-type]
            str(item["private_tools"]),
            "required" if item["needs_registry_path"] else "",
        ]
        for item in items
    ]
    echo_table(["ID", "NAME", "KIND", "HOSTS", "PRIVATE TOOLS", "REGISTRY PATH"], rows)


@registries.command("resolve")
@click.argument("image")
@click.option("--registry-path", help="The registry host, for registries that need one.")
@click.option("--registry", "registry_id", help="The registry id the image must belong to.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def resolve(image: str, registry_path: str | None, registry_id: str | None, as_json: bool) -> None:
    """Parse and normalize IMAGE and say which registry it belongs to (exit 1 if invalid)."""
    valid, answer = describe(
        _catalog(), image, registry_path=registry_path, registry_id=registry_id
    )
    if as_json:
        click.echo(json.dumps(answer, indent=2))
    elif valid:
        _print_resolution(answer)
    else:
        click.echo(f"invalid: {answer['error']}", err=True)
    raise SystemExit(0 if valid else 1)


def _print_resolution(answer: dict[str, object]) -> None:
    lines = [
        (
            "registry",
            f"{answer['registry_name']} ({answer['registry']}, {answer['registry_kind']})",
        ),
        ("normalized", answer["normalized"]),
        ("familiar", answer["familiar"]),
        ("host", answer["host"]),
        ("repository", answer["repository"]),
        ("tag", answer["tag"]),
        ("digest", answer["digest"]),
        ("registry id", answer.get("registry_id")),
        ("region", answer.get("region")),
        ("private tools", answer["private_tools"]),
        ("public page", answer["site_url"]),
    ]
    for label, value in lines:
        if value is not None:
            click.echo(f"{label + ':':<15}{value}")
    for login in answer["login_commands"]:  # type: ignore[attr-defined]
        click.echo(f"{'login:':<15}{login['command']}")
    for warning in answer["warnings"]:  # type: ignore[attr-defined]
        click.echo(f"note: {warning}", err=True)


@registries.group("requests")
@url_option
@click.pass_context
def registry_requests(ctx: click.Context, url: str) -> None:
    """Ask for a registry this instance lacks; admins answer (talks to the server)."""
    open_client(ctx, url)


@registry_requests.command("add")
@click.argument("host")
@click.option("--reason", required=True, help="Why you need it (which tools live there).")
@pass_client
def request_registry(client: ApiClient, host: str, reason: str) -> None:
    """Ask the operators to support the registry at HOST."""
    created = client.post("/api/registry-requests", json={"host": host, "reason": reason})
    click.echo(f"registry request {created['id']} for {created['host']} sent to the admins")


@registry_requests.command("list")
@click.option("--status", type=click.Choice(["open", "added", "declined"]), default=None)
@json_option
@pass_client
def list_registry_requests(client: ApiClient, status: str | None, as_json: bool) -> None:
    """Your registry requests (all of them, for admins)."""
    answer = client.get("/api/registry-requests", params={"status": status} if status else {})
    if as_json:
        echo_json(answer)
        return
    echo_table(
        ["ID", "HOST", "BY", "STATUS", "REASON"],
        [
            [str(i["id"]), i["host"], i["requester"], i["status"], i["reason"][:60]]
            for i in answer["items"]
        ],
    )


@registry_requests.command("close")
@click.argument("request_id", type=int)
@click.option("--added", "status", flag_value="added", help="The registry is now supported.")
@click.option("--declined", "status", flag_value="declined", help="It will not be added.")
@click.option("--note", default="", help="What the requester reads.")
@pass_client
def close_registry_request(
    client: ApiClient, request_id: int, status: str | None, note: str
) -> None:
    """Close a registry request as added or declined (admins)."""
    if status is None:
        raise click.UsageError("give --added or --declined")
    done = client.post(
        f"/api/registry-requests/{request_id}/resolve", json={"status": status, "note": note}
    )
    click.echo(f"registry request {done['id']} for {done['host']} is {done['status']}")
