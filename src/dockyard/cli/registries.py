"""`dockyard registries list|resolve`."""

from __future__ import annotations

import json

import click

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
