"""Refreshing 1,000 tools x 20 tags from a local registry, next to a `skopeo inspect` loop.

Run: .venv/bin/python bench/refresh.py [--tools 1000] [--tags 20] [--skopeo-sample 400]
     [--postgresql-url postgresql://postgres@127.0.0.1:5432/postgres]

Starts Debian's docker-registry on loopback (storage in /dev/shm), pushes the images (not
timed), registers the tools in a fresh embedded database (or a fresh database on a
PostgreSQL server with `--postgresql-url`), then times in one run:

1. a full refresh of every tool (dockyard's refresher, 8 tools at once);
2. an unchanged re-refresh (which must issue no manifest GETs);
3. `skopeo inspect` over a sample of the same tags, one after another, which is what a user
   would otherwise script to learn each tag's digest and platform; its per-tag time gives
   the estimate for all tags, and the ratio.

Each refresh also prints the CPU time per tag of this process and of the registry. The
last two lines are derived from those: the most the registry could serve on this machine's
cores to a client that cost nothing (the registry and dockyard share the same cores here),
the CPU per tag dockyard would have to stay under for 10x on this machine, and what its own
CPU per tag allows against a registry on cores of its own (an upper bound, not measured).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from sqlalchemy import Engine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from databases import postgresql_engine, sqlite_engine
from tests.registries.local_registry import LocalRegistry, run_registry

from dockyard import db
from dockyard.accounts import services as accounts
from dockyard.registries.catalog import BUILTIN_REGISTRIES, Catalog
from dockyard.registries.credentials import CredentialResolver
from dockyard.registries.oci import HostGuard, RegistryClient
from dockyard.tools import services
from dockyard.tools.refresh import Refresher

CATALOG = Catalog(BUILTIN_REGISTRIES)
TOOLS_AT_ONCE = 8
SHM = "/dev/shm"  # noqa: S108 - a private TemporaryDirectory is made inside it


def seed(registry: LocalRegistry, tools: int, tags: int) -> list[str]:
    """Push every tag: its own config blob, one layer shared by cross-repository mounts."""
    repositories = [f"bench/tool{n}" for n in range(tools)]
    layer = b"a shared layer of the benchmark images" * 100
    layer_digest = registry.push_blob("bench/base", layer)

    def push(repository: str) -> None:
        with httpx.Client(base_url=registry.url, timeout=60) as http:
            mounted = http.post(
                f"/v2/{repository}/blobs/uploads/",
                params={"mount": layer_digest, "from": "bench/base"},
            )
            assert mounted.status_code == 201, mounted.text
            for tag in range(tags):
                config = json.dumps(
                    {
                        "os": "linux",
                        "architecture": "amd64",
                        "created": "2024-05-01T00:00:00Z",
                        "config": {"Labels": {"tag": f"{repository}:{tag}"}},
                    }
                ).encode()
                config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
                start = http.post(f"/v2/{repository}/blobs/uploads/")
                location = start.headers["location"]
                separator = "&" if "?" in location else "?"
                http.put(f"{location}{separator}digest={config_digest}", content=config)
                manifest = json.dumps(
                    {
                        "schemaVersion": 2,
                        "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "config": {
                            "mediaType": "application/vnd.oci.image.config.v1+json",
                            "digest": config_digest,
                            "size": len(config),
                        },
                        "layers": [
                            {
                                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                "digest": layer_digest,
                                "size": len(layer),
                            }
                        ],
                    }
                ).encode()
                answer = http.put(
                    f"/v2/{repository}/manifests/1.{tag}",
                    content=manifest,
                    headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
                )
                assert answer.status_code == 201, answer.text

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(push, repositories))
    print(f"pushed {tools * tags:,} tags in {time.perf_counter() - started:.0f}s (not timed below)")
    return repositories


async def refresh_all(refresher: Refresher, tool_ids: list[int]) -> list[str]:
    limit = asyncio.Semaphore(TOOLS_AT_ONCE)

    async def one(tool_id: int) -> str:
        async with limit:
            return (await refresher.refresh(tool_id)).status

    return list(await asyncio.gather(*(one(tool_id) for tool_id in tool_ids)))


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(
    engine: Engine, tool_ids: list[int], tags: int, registry: LocalRegistry
) -> tuple[float, float, float]:
    """Time a full and an unchanged refresh: the full refresh's seconds, and the registry's
    and dockyard's CPU seconds per tag in it."""
    sessions = db.make_sessionmaker(engine)
    full_seconds = registry_per_tag = own_per_tag = 0.0
    for label in ("full refresh", "unchanged re-refresh"):
        async with RegistryClient(guard=HostGuard(allow_private=True)) as client:
            refresher = Refresher(
                sessions=sessions,
                catalog=CATALOG,
                client=client,
                credentials=CredentialResolver(environ={}, box=None),
                tools_per_host=TOOLS_AT_ONCE,
            )
            started = time.perf_counter()
            own_cpu, registry_cpu = time.process_time(), cpu_seconds(registry.process.pid)
            statuses = await refresh_all(refresher, tool_ids)
            seconds = time.perf_counter() - started
            own_cpu = time.process_time() - own_cpu
            registry_cpu = cpu_seconds(registry.process.pid) - registry_cpu
            requests = sum(client.stats.values())
            total_tags = len(tool_ids) * tags
            print(
                f"{label}: {len(tool_ids):,} tools, {total_tags:,} tags in {seconds:.1f}s = "
                f"{total_tags / seconds:,.0f} tags/s; {requests / len(tool_ids):.1f} requests per "
                f"tool; {dict(sorted(client.stats.items()))}; statuses {sorted(set(statuses))}"
            )
            print(
                f"  CPU per tag: dockyard {own_cpu / total_tags * 1000:.2f} ms, registry "
                f"{registry_cpu / total_tags * 1000:.2f} ms"
            )
            if label == "full refresh":
                full_seconds, registry_per_tag = seconds, registry_cpu / total_tags
                own_per_tag = own_cpu / total_tags
            else:
                assert client.stats.get("GET manifest", 0) == 0, "an unchanged refresh made GETs"
    return full_seconds, registry_per_tag, own_per_tag


def skopeo_loop(registry: LocalRegistry, repositories: list[str], tags: int, sample: int) -> float:
    rng = random.Random(3)
    chosen = [(rng.choice(repositories), f"1.{rng.randrange(tags)}") for _ in range(sample)]
    started = time.perf_counter()
    for repository, tag in chosen:
        subprocess.run(
            [
                "skopeo",
                "inspect",
                "--tls-verify=false",
                f"docker://{registry.host}/{repository}:{tag}",
            ],
            check=True,
            capture_output=True,
        )
    per_tag = (time.perf_counter() - started) / sample
    print(
        f"skopeo inspect loop: {sample} tags in {per_tag * sample:.1f}s = {1 / per_tag:.1f} tags/s"
    )
    return per_tag


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tools", type=int, default=1000)
    parser.add_argument("--tags", type=int, default=20)
    parser.add_argument("--skopeo-sample", type=int, default=400)
    parser.add_argument(
        "--postgresql-url",
        help="store in a fresh database on this PostgreSQL server instead of embedded SQLite "
        "(the server's own CPU is not in dockyard's figures)",
    )
    args = parser.parse_args()
    with (
        # In memory where the machine allows: the registry's disk is not what is measured.
        tempfile.TemporaryDirectory(dir=SHM if Path(SHM).is_dir() else None) as directory,
        run_registry("open", Path(directory) / "registry") as registry,
        postgresql_engine(args.postgresql_url)
        if args.postgresql_url
        else sqlite_engine(Path(directory)) as engine,
    ):
        print(f"database: {db.describe(engine)}")
        if engine.dialect.name == "postgresql":
            print("  (the PostgreSQL server's own CPU is not in dockyard's figures below)")
        repositories = seed(registry, args.tools, args.tags)
        db.upgrade(engine)
        with db.unit_of_work(db.make_sessionmaker(engine)) as session:
            user = accounts.create_user(session, username="bench", email="bench@example.org")
            tool_ids = [
                services.register_tool(
                    session,
                    CATALOG,
                    user,
                    services.Registration(image=f"{registry.host}/{repository}"),
                ).id
                for repository in repositories
            ]
        full, registry_per_tag, own_per_tag = asyncio.run(
            measure(engine, tool_ids, args.tags, registry)
        )
        per_tag = skopeo_loop(registry, repositories, args.tags, args.skopeo_sample)
        total_tags = args.tools * args.tags
        estimate = per_tag * total_tags
        print(
            f"skopeo loop over all {total_tags:,} tags (from the sample): {estimate:,.0f}s; "
            f"dockyard's full refresh is {estimate / full:.1f}x faster"
        )
        cores = os.cpu_count() or 1
        ceiling = cores / registry_per_tag
        print(
            f"the registry itself used {registry_per_tag * 1000:.2f} ms of CPU per tag in the "
            f"full refresh: on this machine's {cores} cores it cannot serve more than "
            f"{ceiling:,.0f} tags/s even to a client that costs nothing, "
            f"{ceiling * per_tag:.1f}x the skopeo loop"
        )
        target = 10 / per_tag  # tags/s
        budget = cores / target
        print(
            f"10x the skopeo loop means {target:,.0f} tags/s: both processes together under "
            f"{budget * 1000:.2f} ms of CPU per tag, dockyard under "
            f"{(budget - registry_per_tag) * 1000:.2f} ms with the cores busy all the time; it "
            f"used {own_per_tag * 1000:.2f} ms. Against a registry on cores of its own, that "
            f"is up to {1 / own_per_tag:,.0f} tags/s per dockyard process "
            f"({per_tag / own_per_tag:.1f}x the skopeo loop)"
        )


if __name__ == "__main__":
    main()
