"""A small catalogue with every shape a TRS or REST answer can take, written with fixed ids
and times, so that answers over it can be compared byte for byte across implementations."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert, update

from dockyard import db
from dockyard.accounts.models import User
from dockyard.accounts.services import create_token
from dockyard.catalog import rules
from dockyard.catalog.models import Tool, ToolMaintainer, ToolVersion, VersionFile, VersionImage
from dockyard.registries.catalog import BUILTIN_REGISTRIES, Catalog

CATALOG = Catalog(BUILTIN_REGISTRIES)
T0 = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
CWL = "cwlVersion: v1.2\nclass: CommandLineTool\nbaseCommand: [tool]\ninputs: []\noutputs: []\n"
WDL = "version 1.0\ntask t {\n  command <<< true >>>\n}\n"
DOCKERFILE = "FROM ubuntu:24.04\n"


def _file(version_id: int, path: str, file_type: str, kind: str | None, content: str) -> Any:
    return {
        "version_id": version_id,
        "path": path,
        "file_type": file_type,
        "descriptor_type": kind,
        "content": content,
        "sha256": hashlib.sha256(content.encode()).hexdigest(),
        "size": len(content.encode()),
    }


def seed(engine: Engine) -> str:
    """Nine tools: published and not, private, Docker Hub, a toolname, a git source, hidden
    and default versions, multi-platform images, descriptors of two types, tests, Dockerfiles.
    Returns an API token of their maintainer (who sees unpublished tools, hidden versions)."""
    tools: list[dict[str, Any]] = []
    specs = [
        ("quay.io", "biocontainers/samtools", None, "SAM and BAM", True, False, None),
        ("quay.io", "biocontainers/samtools", "view", "", True, False, None),
        ("docker.io", "library/ubuntu", None, "Ubuntu", True, False, None),
        ("docker.io", "lab/aligner", None, "An aligner", True, False,
         {"git_url": "https://github.com/lab/aligner.git", "dockerfile_path": "Dockerfile",
          "descriptor_paths": {"CWL": "Dockstore.cwl"}}),
        ("ghcr.io", "lab/private-tool", None, "A private one", True, True, None),
        ("quay.io", "lab/draft", None, "Not published", False, False, None),
        ("registry.gitlab.com", "group/sub/tool", None, "On GitLab", True, False, None),
        ("quay.io", "lab/empty", None, "", True, False, None),
        ("quay.io", "lab/zeta", None, "Last by name", True, False, None),
    ]  # fmt: skip
    for n, (host, repository, toolname, description, published, private, source) in enumerate(
        specs, start=1
    ):
        registry = CATALOG.match(host)
        path = rules.tool_path(host, repository, toolname)
        tools.append(
            {
                "id": n,
                "path": path,
                "registry_id": registry.id,
                "host": host,
                "repository": repository,
                "toolname": toolname,
                "namespace": repository.split("/")[0],
                "name": toolname or repository.rsplit("/", 1)[-1],
                "private": private,
                "published": published,
                "maintainer_email": "lab@example.org" if private else None,
                "description": description,
                "source": source,
                "search_text": rules.search_text(path, registry, description),
                "created_at": T0 + timedelta(days=n),
                "updated_at": T0 + timedelta(days=n, hours=1),
                "published_at": T0 + timedelta(days=n, hours=2) if published else None,
            }
        )
    with engine.begin() as connection:
        connection.execute(
            insert(User),
            [
                {"id": 1, "username": "maria", "email": "maria@example.org", "created_at": T0},
                {"id": 2, "username": "bob", "email": "bob@example.org", "created_at": T0},
            ],
        )
        connection.execute(insert(Tool), tools)
        connection.execute(
            insert(ToolMaintainer),
            [{"tool_id": t["id"], "user_id": 1, "added_at": T0} for t in tools]
            + [{"tool_id": 1, "user_id": 2, "added_at": T0 + timedelta(hours=1)}],
        )
        versions: list[dict[str, Any]] = []
        images: list[dict[str, Any]] = []
        files: list[dict[str, Any]] = []
        next_id = 1
        for tool in tools:
            if tool["path"] == "quay.io/lab/empty":
                continue
            for k, name in enumerate(("1.0", "1.1", "2.0-beta")):
                vid = next_id
                next_id += 1
                versions.append(
                    {
                        "id": vid,
                        "tool_id": tool["id"],
                        "name": name,
                        "hidden": name == "2.0-beta",
                        "description": "Faster sorting" if name == "1.1" else "",
                        "created_at": T0 + timedelta(days=tool["id"], minutes=k),
                        "updated_at": T0 + timedelta(days=tool["id"], minutes=k + 5),
                        "from_registry": True,
                        "digest": f"sha256:{vid:064x}",
                        "media_type": "application/vnd.oci.image.index.v1+json",
                        "source_reference": name if tool["source"] else None,
                        "source_commit": f"{vid:040x}" if tool["source"] else None,
                    }
                )
                for arch, variant in (("amd64", None), ("arm64", "v8")):
                    images.append(
                        {
                            "version_id": vid,
                            "digest": f"sha256:{vid * 10 + len(arch):064x}",
                            "os": "linux",
                            "architecture": arch,
                            "variant": variant,
                            "size": 50_000_000 + vid,
                            "created": T0 - timedelta(days=vid) if arch == "amd64" else None,
                        }
                    )
                files.append(_file(vid, "tools/tool.cwl", "PRIMARY_DESCRIPTOR", "CWL", CWL))
                files.append(_file(vid, "tools/lib/step.cwl", "SECONDARY_DESCRIPTOR", "CWL", CWL))
                files.append(_file(vid, "tools/test.json", "TEST_FILE", "CWL", "{}\n"))
                if tool["id"] % 2:
                    files.append(_file(vid, "main.wdl", "PRIMARY_DESCRIPTOR", "WDL", WDL))
                    files.append(_file(vid, "Dockerfile", "CONTAINERFILE", None, DOCKERFILE))
        connection.execute(insert(ToolVersion), versions)
        connection.execute(insert(VersionImage), images)
        connection.execute(insert(VersionFile), files)
        for tool in tools:
            kinds = ",CWL,WDL," if tool["id"] % 2 else ",CWL,"
            first = next((v["id"] for v in versions if v["tool_id"] == tool["id"]), None)
            connection.execute(
                update(Tool)
                .where(Tool.id == tool["id"])
                .values(
                    default_version_id=first + 1 if first and tool["id"] != 3 else None,
                    descriptor_types=kinds if first else "",
                )
            )
    with db.unit_of_work(db.make_sessionmaker(engine)) as session:
        maria = session.get(User, 1)
        assert maria is not None
        return create_token(session, maria, name="seeded")[1]


#: Every answer the byte-for-byte test compares: (path, whether the maintainer asks).
TRS = "/ga4gh/trs/v2"
REQUESTS: list[tuple[str, bool]] = [
    # REST first: descriptor reads over TRS count as uses, which REST answers show.
    *(
        (path, maintainer)
        for path in (
            "/api/tools",
            "/api/tools?limit=3&offset=1&sort=-updated",
            "/api/tools/1",
            "/api/tools/4",
            "/api/tools/5",
            "/api/tools/6",
            "/api/tools/1/versions",
            "/api/tools/4/versions/1.0",
        )
        for maintainer in (False, True)
    ),
    (f"{TRS}/tools", False),
    (f"{TRS}/tools", True),
    (f"{TRS}/tools?limit=3&offset=2", False),
    (f"{TRS}/tools?organization=lab&limit=2", False),
    (f"{TRS}/tools?registry=quay.io&name=samtools", False),
    (f"{TRS}/tools?toolname=view", False),
    (f"{TRS}/tools?description=ubuntu", False),
    (f"{TRS}/tools?author=bob", False),
    (f"{TRS}/tools?id=docker.io/library/ubuntu", False),
    (f"{TRS}/tools?toolClass=CommandLineTool&limit=1", False),
    *(
        (f"{TRS}/tools/{tool}{tail}", maintainer)
        for tool in (
            "quay.io%2Fbiocontainers%2Fsamtools",
            "quay.io/biocontainers/samtools/view",
            "docker.io%2Flibrary%2Fubuntu",
            "docker.io%2Flab%2Faligner",
            "ghcr.io%2Flab%2Fprivate-tool",
            "registry.gitlab.com%2Fgroup%2Fsub%2Ftool",
            "quay.io%2Flab%2Fempty",
            "quay.io%2Flab%2Fdraft",
        )
        for tail in (
            "",
            "/versions",
            "/versions/1.1",
            "/versions/2.0-beta",
            "/versions/1.0/CWL/descriptor",
            "/versions/1.0/PLAIN_CWL/descriptor",
            "/versions/1.0/CWL/descriptor/lib/step.cwl",
            "/versions/1.0/WDL/descriptor",
            "/versions/1.0/CWL/files",
            "/versions/1.0/CWL/tests",
            "/versions/1.0/containerfile",
        )
        for maintainer in (False, True)
    ),
]
