"""The catalogue the TRS benchmarks read, and the scratch databases they read it from."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, update

from dockyard.accounts.models import User
from dockyard.catalog import rules
from dockyard.catalog.models import Tool, ToolMaintainer, ToolVersion, VersionFile, VersionImage
from dockyard.registries.catalog import BUILTIN_REGISTRIES, Catalog

CATALOG = Catalog(BUILTIN_REGISTRIES)
CWL = "cwlVersion: v1.2\nclass: CommandLineTool\nbaseCommand: [tool]\ninputs: []\noutputs: []\n"


def seed(engine: Engine, tools: int) -> list[str]:
    """Published tools with two versions, images and a descriptor each; returns their ids."""
    digest = hashlib.sha256(CWL.encode()).hexdigest()
    paths: list[str] = []
    with engine.begin() as connection:
        user_id = connection.execute(
            insert(User).values(username="bench", email="bench@example.org").returning(User.id)
        ).scalar_one()
        for start in range(0, tools, 2000):
            numbers = range(start, min(tools, start + 2000))
            rows = []
            for n in numbers:
                repository = f"lab{n % 50}/tool{n}"
                path = rules.tool_path("quay.io", repository, None)
                paths.append(path)
                description = f"Tool number {n} for sequence analysis"
                rows.append(
                    {
                        "id": n + 1,
                        "path": path,
                        "registry_id": "quay",
                        "host": "quay.io",
                        "repository": repository,
                        "namespace": f"lab{n % 50}",
                        "name": f"tool{n}",
                        "private": False,
                        "published": True,
                        "description": description,
                        "search_text": rules.search_text(path, CATALOG.get("quay"), description),
                        "descriptor_types": ",CWL,",
                    }
                )
            connection.execute(insert(Tool), rows)
            connection.execute(
                insert(ToolMaintainer), [{"tool_id": n + 1, "user_id": user_id} for n in numbers]
            )
            versions: list[dict[str, Any]] = [
                {"id": 2 * n + k + 1, "tool_id": n + 1, "name": name}
                for n in numbers
                for k, name in enumerate(("1.0", "1.1"))
            ]
            connection.execute(insert(ToolVersion), versions)
            connection.execute(
                insert(VersionImage),
                [
                    {
                        "version_id": v["id"],
                        "digest": f"sha256:{v['id']:064x}",
                        "os": "linux",
                        "architecture": arch,
                        "size": 50_000_000 + v["id"],
                    }
                    for v in versions
                    for arch in ("amd64", "arm64")
                ],
            )
            connection.execute(
                insert(VersionFile),
                [
                    {
                        "version_id": v["id"],
                        "path": "tool.cwl",
                        "file_type": "PRIMARY_DESCRIPTOR",
                        "descriptor_type": "CWL",
                        "content": CWL,
                        "sha256": digest,
                        "size": len(CWL),
                    }
                    for v in versions
                ],
            )
            connection.execute(
                update(Tool)
                .where(Tool.id.in_([n + 1 for n in numbers]))
                .values(default_version_id=Tool.id * 2 - 1)
            )
    return paths


@contextmanager
def database(kind: str, workdir: Path, postgresql: str) -> Iterator[str]:
    """A fresh database of this kind, migrated like production; its URL."""
    if kind == "sqlite":
        yield f"sqlite:///{workdir}/bench.db"
        return
    import psycopg

    name = f"dockyard_bench_{os.getpid()}"
    admin = psycopg.connect(f"{postgresql}/postgres", autocommit=True)
    admin.execute(f"DROP DATABASE IF EXISTS {name}")
    admin.execute(f"CREATE DATABASE {name}")
    try:
        yield f"postgresql+psycopg://{postgresql.removeprefix('postgresql://')}/{name}"
    finally:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()
