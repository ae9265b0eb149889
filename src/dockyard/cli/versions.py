"""`dockyard tool version ...` and `dockyard tool files`: a tool's versions and their files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from dockyard.cli.client import (
    ApiClient,
    ApiError,
    echo_json,
    json_option,
    pass_client,
)
from dockyard.cli.local import echo_table

#: Descriptor types guessed from file names, for `dockyard tool files`.
DESCRIPTOR_SUFFIXES = {".cwl": "CWL", ".wdl": "WDL", ".nf": "NFL", ".smk": "SMK", ".ga": "GALAXY"}


@click.group()
def version() -> None:
    """Add, change and delete versions by hand."""


@version.command("add")
@click.argument("tool_ref", metavar="TOOL")
@click.argument("name")
@click.option("--hidden", is_flag=True, help="Add it hidden from everyone but maintainers.")
@click.option("--description", default="", help="What changed in this version.")
@click.option(
    "--image",
    "images",
    multiple=True,
    metavar="DIGEST[=OS/ARCH[/VARIANT]]",
    help="A platform image behind the tag; repeat for each platform.",
)
@json_option
@pass_client
def version_add(
    client: ApiClient,
    tool_ref: str,
    name: str,
    hidden: bool,
    description: str,
    images: tuple[str, ...],
    as_json: bool,
) -> None:
    """Add version NAME (a tag of the image) to TOOL."""
    found = client.find_tool(tool_ref)
    body = {
        "name": name,
        "hidden": hidden,
        "description": description,
        "images": [_image(text) for text in images],
    }
    created = client.post(f"/api/tools/{found['id']}/versions", json=body)
    if as_json:
        echo_json(created)
    else:
        click.echo(f"added version {name} to {found['path']}")


@version.command("list")
@click.argument("tool_ref", metavar="TOOL")
@json_option
@pass_client
def version_list(client: ApiClient, tool_ref: str, as_json: bool) -> None:
    """List a tool's versions."""
    found = client.find_tool(tool_ref)
    versions = client.get(f"/api/tools/{found['id']}/versions")
    if as_json:
        echo_json(versions)
        return
    echo_table(
        ["VERSION", "DEFAULT", "HIDDEN", "DIGESTS", "FILES"],
        [
            [
                v["name"],
                "yes" if v["is_default"] else "",
                "yes" if v["hidden"] else "",
                " ".join(i["digest"][:19] for i in v["images"]) or "-",
                " ".join(f["path"] for f in v["files"]) or "-",
            ]
            for v in versions["items"]
        ],
    )


@version.command("update")
@click.argument("tool_ref", metavar="TOOL")
@click.argument("name")
@click.option("--hidden/--visible", default=None, help="Hide the version or show it again.")
@click.option("--description", default=None, help="What changed in this version.")
@pass_client
def version_update(
    client: ApiClient, tool_ref: str, name: str, hidden: bool | None, description: str | None
) -> None:
    """Hide or show a version, or describe it."""
    body: dict[str, object] = {}
    if hidden is not None:
        body["hidden"] = hidden
    if description is not None:
        body["description"] = description
    if not body:
        raise ApiError("nothing to change: give --hidden, --visible or --description")
    found = client.find_tool(tool_ref)
    client.request("PATCH", f"/api/tools/{found['id']}/versions/{name}", json=body)
    if hidden is not None:
        state = "hidden" if hidden else "visible"
        click.echo(f"version {name} of {found['path']} is now {state}")
    if description is not None:
        click.echo(f"version {name} of {found['path']} has a new description")


@version.command("delete")
@click.argument("tool_ref", metavar="TOOL")
@click.argument("name")
@pass_client
def version_delete(client: ApiClient, tool_ref: str, name: str) -> None:
    """Delete a version and its files."""
    found = client.find_tool(tool_ref)
    client.request("DELETE", f"/api/tools/{found['id']}/versions/{name}")
    click.echo(f"deleted version {name} of {found['path']}")


@click.command()
@click.argument("tool_ref", metavar="TOOL")
@click.argument("version_name", metavar="VERSION")
@click.option(
    "--primary",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The primary descriptor.",
)
@click.option(
    "--secondary",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    multiple=True,
    help="Imported descriptors (repeat).",
)
@click.option(
    "--test",
    "tests",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    multiple=True,
    help="Test parameter files (repeat).",
)
@click.option(
    "--dockerfile",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The Dockerfile.",
)
@click.option(
    "--other",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    multiple=True,
    help="Any other file (repeat).",
)
@click.option(
    "--descriptor-type", help="CWL, WDL, NFL, GALAXY or SMK (guessed from the primary's name)."
)
@json_option
@pass_client
def files(
    client: ApiClient,
    tool_ref: str,
    version_name: str,
    primary: Path,
    secondary: tuple[Path, ...],
    tests: tuple[Path, ...],
    dockerfile: Path | None,
    other: tuple[Path, ...],
    descriptor_type: str | None,
    as_json: bool,
) -> None:
    """Upload a version's files, replacing those it had.

    Paths are stored relative to the primary descriptor's directory; every file must be in it
    or below it.
    """
    kind = descriptor_type or _guess_descriptor_type(primary)
    root = primary.resolve().parent
    entries: list[tuple[Path, str, str | None]] = [(primary, "PRIMARY_DESCRIPTOR", kind)]
    entries += [(p, "SECONDARY_DESCRIPTOR", kind) for p in secondary]
    entries += [(p, "TEST_FILE", kind) for p in tests]
    entries += [(dockerfile, "CONTAINERFILE", None)] if dockerfile else []
    entries += [(p, "OTHER", None) for p in other]
    body = {
        "files": [
            {
                "path": _relative(path, root),
                "file_type": file_type,
                "descriptor_type": descriptor,
                "content": _read_text(path),
            }
            for path, file_type, descriptor in entries
        ]
    }
    found = client.find_tool(tool_ref)
    updated = client.request(
        "PUT", f"/api/tools/{found['id']}/versions/{version_name}/files", json=body
    )
    if as_json:
        echo_json(updated)
        return
    for file in updated["files"]:
        checksum = f"sha256:{file['sha256'][:12]}"
        click.echo(f"{file['file_type']:<21} {file['path']}  {checksum}  {file['size']} bytes")


def _image(text: str) -> dict[str, Any]:
    digest, _, platform = text.partition("=")
    image: dict[str, Any] = {"digest": digest}
    if platform:
        parts = platform.split("/")
        if len(parts) not in (2, 3):
            raise ApiError(f"--image {text!r}: write the platform as OS/ARCH or OS/ARCH/VARIANT")
        image |= dict(zip(("os", "architecture", "variant"), parts, strict=False))
    return image


def _guess_descriptor_type(primary: Path) -> str:
    if primary.name in {"Snakefile", "snakefile"}:
        return "SMK"
    if primary.suffix.lower() in DESCRIPTOR_SUFFIXES:
        return DESCRIPTOR_SUFFIXES[primary.suffix.lower()]
    raise ApiError(f"cannot tell the descriptor type of {primary.name}: give --descriptor-type")


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        raise ApiError(
            f"{path} is outside {root}, the primary descriptor's directory: every file must be "
            "in it or below it"
        ) from None


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ApiError(f"{path} is not UTF-8 text; only text files can be uploaded") from None
