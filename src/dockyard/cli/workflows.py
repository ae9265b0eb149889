"""`dockyard workflow ...`: register workflows from git, refresh, inspect images, freeze, pin."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

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

#: Reading every branch of a large pipeline takes a while; the server bounds it itself.
LONG = 1800.0


@click.group()
@url_option
@click.pass_context
def workflow(ctx: click.Context, url: str) -> None:
    """Register workflows from git and pin the images they run (talks to a running server)."""
    open_client(ctx, url)


@workflow.command()
@click.argument("git_url")
@click.option(
    "--type",
    "descriptor_type",
    type=click.Choice(["CWL", "WDL", "NFL", "GALAXY", "SMK"], case_sensitive=False),
    help="The language; leave out (with --primary) to register what .dockstore.yml declares.",
)
@click.option(
    "--primary", "primary_descriptor_path", help="The primary descriptor, e.g. /main.wdl."
)
@click.option("--name", help="A name, for one of several workflows in the repository.")
@click.option("--test-file", "test_parameter_files", multiple=True, help="A test parameter file.")
@click.option("--description", default="", help="What the workflow does.")
@json_option
@pass_client
def register(
    client: ApiClient,
    git_url: str,
    descriptor_type: str | None,
    primary_descriptor_path: str | None,
    name: str | None,
    test_parameter_files: tuple[str, ...],
    description: str,
    as_json: bool,
) -> None:
    """Register the workflows of GIT_URL and read each branch and tag once."""
    body = {
        "git_url": git_url,
        "descriptor_type": descriptor_type.upper() if descriptor_type else None,
        "primary_descriptor_path": primary_descriptor_path,
        "name": name,
        "test_parameter_files": list(test_parameter_files),
        "description": description,
    }
    click.echo(f"reading {git_url} (every branch and tag) ...", err=True)
    answer = client.post(
        "/api/workflows", json={k: v for k, v in body.items() if v is not None}, timeout=LONG
    )
    if as_json:
        echo_json(answer)
        return
    for item, report in zip(answer["items"], answer["reports"], strict=True):
        click.echo(f"registered {item['trs_id']} (id {item['id']}, {item['descriptor_type']})")
        _print_report(report)


@workflow.command("list")
@click.option("--mine", is_flag=True, help="Only workflows you maintain.")
@json_option
@pass_client
def list_workflows(client: ApiClient, mine: bool, as_json: bool) -> None:
    """List the workflows you can see."""
    page = client.get("/api/workflows", params={"mine": "true"} if mine else {})
    if as_json:
        echo_json(page)
        return
    echo_table(
        ["ID", "TRS ID", "TYPE", "PUBLISHED", "VERSIONS"],
        [
            [
                str(w["id"]),
                w["trs_id"],
                w["descriptor_type"],
                "yes" if w["published"] else "no",
                str(len(w["versions"])),
            ]
            for w in page["items"]
        ],
    )


@workflow.command()
@click.argument("workflow_ref", metavar="WORKFLOW")
@json_option
@pass_client
def show(client: ApiClient, workflow_ref: str, as_json: bool) -> None:
    """Show a workflow (its id, path or TRS id) and its versions."""
    found = client.find_workflow(workflow_ref)
    versions = [_version(client, found, name) for name in found["versions"]]
    if as_json:
        echo_json({**found, "version_details": versions})
        return
    click.echo(f"{found['trs_id']}  ({found['descriptor_type']}, id {found['id']})")
    click.echo(f"  git: {found['git_url']}  primary: {found['primary_descriptor_path']}")
    click.echo(f"  published: {'yes' if found['published'] else 'no'}")
    if found.get("refresh_message"):
        click.echo(f"  last refresh: {found['refresh_message']}")
    if versions:
        click.echo()
        echo_table(
            ["VERSION", "KIND", "COMMIT", "FROZEN", "IMAGES", "PROBLEM"],
            [
                [
                    v["name"],
                    v["reference_type"],
                    (v["commit"] or "-")[:12],
                    "yes" if v["frozen"] else "",
                    str(len(v["images"])),
                    v["problem"] or "",
                ]
                for v in versions
            ],
        )


@workflow.command()
@click.argument("workflow_ref", metavar="WORKFLOW")
@json_option
@pass_client
def refresh(client: ApiClient, workflow_ref: str, as_json: bool) -> None:
    """Read the workflow's branches and tags, and resolve its images, now."""
    found = client.find_workflow(workflow_ref)
    click.echo(f"refreshing {found['trs_id']} ...", err=True)
    report = client.post(f"/api/workflows/{found['id']}/refresh", timeout=LONG)
    if as_json:
        echo_json(report)
        return
    _print_report(report)
    if report["status"] == "failed":
        raise ApiError(report["message"] or "the refresh failed")


@workflow.command()
@click.argument("workflow_ref", metavar="WORKFLOW")
@click.argument("version_name", metavar="VERSION")
@json_option
@pass_client
def images(client: ApiClient, workflow_ref: str, version_name: str, as_json: bool) -> None:
    """The images VERSION runs: where each is written, its digest, platforms and problems."""
    found = client.find_workflow(workflow_ref)
    version = _version(client, found, version_name)
    if as_json:
        echo_json(version["images"])
        return
    if not version["images"]:
        click.echo("this version names no container images", err=True)
    echo_table(
        ["WHERE", "IMAGE", "DIGEST", "PLATFORMS", "PROBLEMS"],
        [
            [
                f"{i['file']}:{i['line']}" + (f" ({i['engine']})" if i["engine"] else ""),
                i["image"] or i["reference"],
                (i["digest"] or "-")[:19],
                ", ".join(i["platforms"]) or "-",
                "; ".join(i["problems"]) + (f" (ask at {i['tool']['url']})" if i["tool"] else ""),
            ]
            for i in version["images"]
        ],
    )


@workflow.command()
@click.argument("workflow_ref", metavar="WORKFLOW")
@click.argument("version_name", metavar="VERSION")
@pass_client
def freeze(client: ApiClient, workflow_ref: str, version_name: str) -> None:
    """Freeze VERSION: its files and image digests never change again."""
    found = client.find_workflow(workflow_ref)
    version = client.post(
        f"/api/workflows/{found['id']}/versions/{quote(version_name, safe='')}/freeze"
    )
    pinned = sum(1 for i in version["images"] if i["digest"])
    click.echo(
        f"froze {found['trs_id']} {version['name']} at {(version['commit'] or '')[:12]}: "
        f"{len(version['files'])} files, {pinned} of {len(version['images'])} images with digests"
    )


@workflow.command()
@click.argument("workflow_ref", metavar="WORKFLOW")
@click.argument("version_name", metavar="VERSION")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the zip.",
)
@click.option("--descriptor", is_flag=True, help="Print the pinned primary descriptor instead.")
@pass_client
def pinned(
    client: ApiClient, workflow_ref: str, version_name: str, output: Path | None, descriptor: bool
) -> None:
    """A frozen VERSION's files with every image pinned to its digest (a zip)."""
    found = client.find_workflow(workflow_ref)
    base = f"/api/workflows/{found['id']}/versions/{quote(version_name, safe='')}/pinned"
    if descriptor:
        content, _ = client.download(f"{base}/descriptor")
        click.echo(content.decode(), nl=False)
        return
    content, name = client.download(base)
    target = output or Path(name or f"{found['repository']}-{version_name}-pinned.zip")
    target.write_bytes(content)
    click.echo(f"wrote {target} ({len(content):,} bytes)")


@workflow.command()
@click.argument("workflow_ref", metavar="WORKFLOW")
@pass_client
def publish(client: ApiClient, workflow_ref: str) -> None:
    """List the workflow publicly (it needs a version read without a problem)."""
    found = client.find_workflow(workflow_ref)
    client.request("PATCH", f"/api/workflows/{found['id']}", json={"published": True})
    click.echo(f"published {found['trs_id']}")


@workflow.command()
@click.argument("workflow_ref", metavar="WORKFLOW")
@pass_client
def unpublish(client: ApiClient, workflow_ref: str) -> None:
    """Hide the workflow from everyone but its maintainers."""
    found = client.find_workflow(workflow_ref)
    client.request("PATCH", f"/api/workflows/{found['id']}", json={"published": False})
    click.echo(f"unpublished {found['trs_id']}")


def _version(client: ApiClient, workflow: dict[str, Any], name: str) -> dict[str, Any]:
    answer: dict[str, Any] = client.get(
        f"/api/workflows/{workflow['id']}/versions/{quote(name, safe='')}"
    )
    return answer


def _print_report(report: dict[str, Any]) -> None:
    parts = [
        f"{len(report['read'])} read",
        f"{len(report['unchanged'])} unchanged",
        f"{len(report['frozen'])} frozen",
        f"{len(report['removed'])} removed",
        f"{report['resolved']} of {report['images']} images resolved",
    ]
    click.echo(f"  {report['status']}: " + ", ".join(parts))
    for name, problem in sorted(report["problems"].items()):
        click.echo(f"  {name}: {problem}")
    if report.get("message"):
        click.echo(f"  {report['message']}")
