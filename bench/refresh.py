"""Refreshing tools from a registry that is as far away as real ones, next to what a user
would otherwise script.

Run: .venv-test/bin/python bench/refresh.py [--tools 200] [--tags 10] [--rtt 80] [--in-flight 32]
     [--rate-limit 0] [--skopeo-sample 20] [--httpx-sample 50]
     [--postgresql-url postgresql://postgres@127.0.0.1:5432/postgres]

Starts Debian's docker-registry on loopback (token authentication, TLS with the bench's own
CA, storage in /dev/shm) and, in a process of its own, `bench/registry_front.py` before it
and its token server: every read held RTT/2 each way (so the challenge's realm is as far as
the registry), requests counted from the registry's access log; with `--rate-limit N`, an
HTTPS server behind the delay counts and answers 429 past N requests a second. It pushes the
images (not timed), registers the tools (on a registry with `max_in_flight = --in-flight`) in
a fresh embedded database (or PostgreSQL with `--postgresql-url`), then times in one run:

1. a full refresh of every tool, all started at once as the scheduler does, and checks that
   every stored digest is the one pushed;
2. an unchanged re-refresh with a new client (as hours later: no token kept), which must
   make no manifest GET;
3. the registry client alone, with no database: on loopback against a second, open,
   plain-HTTP registry on the same images (its CPU per request), and through the delay;
4. a `skopeo inspect` loop and a sequential httpx script over samples of the same tags,
   through the same delay, each extrapolated to all tags.

For each refresh it prints the requests on the wire, the least wall time that many requests
need at the concurrency allowed (requests / in flight x RTT, or requests / rate limit), the
wall time and its ratio to that, and dockyard's CPU per request and per tag. It also runs on
the code before the registry client moved to aiohttp (for side-by-side figures).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import json
import math
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from sqlalchemy import Engine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from databases import postgresql_engine, sqlite_engine
from registry_front import kind
from tests.support.network import free_port
from tests.support.registry import LocalRegistry, run_registry
from tests.support.tls import self_signed

import dockyard.refresh.services as refresh_module
from dockyard import db
from dockyard.accounts import services as accounts
from dockyard.catalog import services
from dockyard.egress import HostGuard
from dockyard.refresh.services import Refresher
from dockyard.registries import manifests, oci
from dockyard.registries.catalog import BUILTIN_REGISTRIES, Catalog, Registry, Source
from dockyard.registries.credentials import CredentialResolver
from dockyard.registries.repository import Repository

SHM = "/dev/shm"  # noqa: S108 - a private TemporaryDirectory is made inside it
FRONT = Path(__file__).with_name("registry_front.py")
#: Docker's media types, which every client reads (Debian's skopeo refuses OCI on inspect).
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
LAYER = b"a shared layer of the benchmark images" * 100


def seed(registry: LocalRegistry, tools: int, tags: int) -> dict[str, dict[str, str]]:
    """Push every tag (its own config blob and one small layer); repository -> tag -> digest."""
    repositories = [f"bench/tool{n}" for n in range(tools)]
    digests: dict[str, dict[str, str]] = {name: {} for name in repositories}

    def push(repository: str) -> None:
        with registry.push_client(repository) as http:
            layer_digest = registry.push_blob(repository, LAYER, http)
            for tag in range(tags):
                config = json.dumps(
                    {
                        "os": "linux",
                        "architecture": "amd64",
                        "created": "2024-05-01T00:00:00Z",
                        "config": {"Labels": {"tag": f"{repository}:{tag}"}},
                    }
                ).encode()
                config_digest = registry.push_blob(repository, config, http)
                manifest = json.dumps(
                    {
                        "schemaVersion": 2,
                        "mediaType": DOCKER_MANIFEST,
                        "config": {
                            "mediaType": "application/vnd.docker.container.image.v1+json",
                            "digest": config_digest,
                            "size": len(config),
                        },
                        "layers": [
                            {
                                "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                                "digest": layer_digest,
                                "size": len(LAYER),
                            }
                        ],
                    }
                ).encode()
                answer = http.put(
                    f"/v2/{repository}/manifests/1.{tag}",
                    content=manifest,
                    headers={"Content-Type": DOCKER_MANIFEST},
                )
                assert answer.status_code == 201, answer.text
                digests[repository][f"1.{tag}"] = "sha256:" + hashlib.sha256(manifest).hexdigest()

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(push, repositories))
    print(f"pushed {tools * tags:,} tags in {time.perf_counter() - started:.0f}s (not timed below)")
    return digests


class Front:
    """`registry_front.py` in its own process, and the requests it saw.

    Without a rate limit, TCP proxies that only add round trips before the TLS registry and
    its token server; requests are counted from the registry's access log and the token
    server. With one, an HTTPS server that counts and limits sits behind the delay.
    """

    def __init__(
        self, registry: LocalRegistry, rtt: float, rate_limit: int, cert: Path, ports: Ports
    ) -> None:
        token = registry.token_server
        assert token is not None
        self.registry, self.cert, self.rtt, self.rate_limit = registry, cert, rtt, rate_limit
        self.host = f"127.0.0.1:{ports.outer}"
        self.inner = ports.inner
        self.realm = f"https://{self.host}/token" if rate_limit else ports.realm
        if rate_limit:
            arguments = [
                "front",
                str(ports.outer),
                str(ports.inner),
                registry.url,
                f"http://127.0.0.1:{token.port}",
                str(rtt),
                str(rate_limit),
                str(cert),
            ]
        else:
            arguments = [
                "delay",
                str(rtt),
                f"{ports.outer}:{registry.port}",
                f"{ports.token}:{token.port}",
            ]
        self.process = subprocess.Popen(
            [sys.executable, str(FRONT), *arguments], stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "ready", "the front did not start"
        self._log_offset = 0
        self._tokens = 0
        self.reset()

    def counts(self) -> dict[str, int]:
        """Requests on the wire since the last reset, by kind."""
        if self.rate_limit:
            url = f"https://127.0.0.1:{self.inner}/_bench/stats"
            counts: dict[str, int] = httpx.get(url, verify=str(self.cert), trust_env=False).json()
            return counts
        assert self.registry.log is not None
        assert self.registry.token_server is not None
        with self.registry.log.open("rb") as log:
            log.seek(self._log_offset)
            lines = log.read().decode(errors="replace")
        found: collections.Counter[str] = collections.Counter()
        for method, path in re.findall(r'"(GET|HEAD) (\S+) HTTP/', lines):
            found[kind(method, urlsplit(path).path)] += 1
        found["GET token"] = self.registry.token_server.requests - self._tokens
        return dict(found)

    def reset(self) -> None:
        if self.rate_limit:
            url = f"https://127.0.0.1:{self.inner}/_bench/reset"
            httpx.post(url, verify=str(self.cert), trust_env=False)
            return
        assert self.registry.log is not None
        assert self.registry.token_server is not None
        self._log_offset = self.registry.log.stat().st_size
        self._tokens = self.registry.token_server.requests

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@dataclass(frozen=True)
class Ports:
    """The front's ports: the registry as clients see it, the token service's, and the
    counting server's behind the delay (rate-limit mode)."""

    outer: int
    token: int
    inner: int

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.token}/token"


def stored_differences(engine: Engine, host: str, pushed: dict[str, dict[str, str]]) -> list[str]:
    """Tags whose stored digest is not the one pushed (or that are missing), as text."""
    from sqlalchemy import select

    from dockyard.catalog.models import Tool, ToolVersion

    stored: dict[str, dict[str, str | None]] = {}
    with db.unit_of_work(db.make_sessionmaker(engine), write=False) as session:
        rows = session.execute(
            select(Tool.repository, ToolVersion.name, ToolVersion.digest).join(
                ToolVersion, ToolVersion.tool_id == Tool.id
            )
        )
        for repository, tag, digest in rows:
            stored.setdefault(repository, {})[tag] = digest
    return [
        f"{repository}:{tag}"
        for repository, tags in pushed.items()
        for tag, digest in tags.items()
        if stored.get(repository, {}).get(tag) != digest
    ]


def on_the_wire(counts: dict[str, int]) -> int:
    return sum(n for kind, n in counts.items() if not kind.startswith(("answered", "429")))


async def refresh_all(refresher: Refresher, tool_ids: list[int]) -> list[str]:
    """Every tool at once, as the scheduler starts them; the refresher's limits apply."""
    reports = await asyncio.gather(*(refresher.refresh(tool_id) for tool_id in tool_ids))
    return [report.status for report in reports]


async def measure(
    engine: Engine, catalog: Catalog, tool_ids: list[int], tags: int, front: Front, in_flight: int
) -> dict[str, float]:
    """The full and the unchanged refresh, each with a new client, as printed lines."""
    sessions = db.make_sessionmaker(engine)
    figures: dict[str, float] = {}
    for label in ("full refresh", "unchanged re-refresh"):
        front.reset()
        async with oci.RegistryClient(guard=HostGuard(allow_private=True)) as registry_client:
            refresher = Refresher(
                sessions=sessions,
                catalog=catalog,
                client=registry_client,
                credentials=CredentialResolver(environ={}, box=None),
            )
            started = time.perf_counter()
            own_cpu = time.process_time()
            statuses = await refresh_all(refresher, tool_ids)
            seconds = time.perf_counter() - started
            own_cpu = time.process_time() - own_cpu
        counts = front.counts()
        requests = on_the_wire(counts)
        least = math.ceil(requests / in_flight) * front.rtt
        if front.rate_limit:  # the registry's allowance is then the bound
            least = max(least, requests / front.rate_limit)
        total_tags = len(tool_ids) * tags
        print(
            f"{label}: {len(tool_ids):,} tools, {total_tags:,} tags in {seconds:.2f} s; "
            f"statuses {sorted(set(statuses))}"
        )
        print(
            f"  on the wire: {requests:,} requests {dict(sorted(counts.items()))}; the least "
            f"for that many at {in_flight} in flight and {front.rtt * 1000:.0f} ms: "
            f"{least:.2f} s; wall time / least = {seconds / least:.2f}"
        )
        print(
            f"  dockyard's CPU: {own_cpu / max(requests, 1) * 1000:.2f} ms per request, "
            f"{own_cpu / total_tags * 1000:.2f} ms per tag ({own_cpu:.1f} s)"
        )
        if front.rate_limit:
            print(
                f"  answered 429: {counts.get('answered 429', 0):,}; requests answered 429 twice "
                f"within one Retry-After: {counts.get('429 twice within its Retry-After', 0)}"
            )
        figures[label] = seconds
        if label == "unchanged re-refresh":
            figures["unchanged GETs"] = counts.get("GET manifest", 0)
            figures["unchanged tokens"] = counts.get("GET token", 0)
    return figures


async def client_alone(
    label: str, host: str, base_url: str, repositories: list[str], in_flight: int, rtt: float
) -> float:
    """The registry client with no database around it: every repository's tag list, then
    each tag's manifest and config, all at once; its CPU per request and, through the
    delay, its wall time against the least for its requests."""
    async with oci.RegistryClient(guard=HostGuard(allow_private=True)) as alone:
        targets = [
            Repository(host=host, name=name, base_url=base_url, max_in_flight=in_flight)
            for name in repositories
        ]

        async def one(repository: Repository) -> None:
            tags = await alone.list_tags(repository)
            await asyncio.gather(*(alone.platform_images(repository, tag) for tag in tags))

        cpu = time.process_time()
        started = time.perf_counter()
        await asyncio.gather(*(one(target) for target in targets))
        cpu = time.process_time() - cpu
        seconds = time.perf_counter() - started
        requests = sum(alone.stats.values())
    line = (
        f"registry client alone, {label}: {requests:,} requests in {seconds:.2f} s, "
        f"{cpu / requests * 1000:.3f} ms of CPU per request"
    )
    if rtt:
        least = math.ceil(requests / in_flight) * rtt
        line += f"; wall time / least = {seconds / least:.2f}"
    print(line)
    return cpu / requests


def skopeo_loop(front: Front, chosen: list[tuple[str, str]]) -> float:
    started = time.perf_counter()
    for repository, tag in chosen:
        done = subprocess.run(
            [
                "skopeo",
                "inspect",
                "--tls-verify=false",
                f"docker://{front.host}/{repository}:{tag}",
            ],
            check=False,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise SystemExit(f"skopeo inspect failed: {done.stderr.strip()}")
    per_tag = (time.perf_counter() - started) / len(chosen)
    print(f"skopeo inspect loop: {len(chosen)} tags, {per_tag:.2f} s per tag")
    return per_tag


def httpx_script(front: Front, chosen: list[tuple[str, str]]) -> float:
    """What a careful user scripts: one keep-alive client, a token per repository, then the
    manifest and the config of each tag, one after another."""
    accept = ", ".join(
        [
            manifests.OCI_INDEX,
            manifests.DOCKER_LIST,
            manifests.OCI_MANIFEST,
            manifests.DOCKER_MANIFEST,
        ]
    )
    tokens: dict[str, str] = {}
    started = time.perf_counter()
    with httpx.Client(base_url=f"https://{front.host}", verify=str(front.cert)) as http:
        for repository, tag in chosen:
            if repository not in tokens:
                scope = {"scope": f"repository:{repository}:pull"}
                answer = http.get(front.realm, params=scope)
                tokens[repository] = answer.json()["token"]
            headers = {"Authorization": f"Bearer {tokens[repository]}", "Accept": accept}
            manifest = http.get(f"/v2/{repository}/manifests/{tag}", headers=headers).json()
            config = manifest["config"]["digest"]
            http.get(f"/v2/{repository}/blobs/{config}", headers=headers).raise_for_status()
    per_tag = (time.perf_counter() - started) / len(chosen)
    print(f"sequential httpx script: {len(chosen)} tags, {per_tag:.3f} s per tag")
    return per_tag


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tools", type=int, default=200)
    parser.add_argument("--tags", type=int, default=10)
    parser.add_argument("--rtt", type=float, default=80.0, help="round trip in milliseconds")
    parser.add_argument("--in-flight", type=int, default=32, help="the registry's max_in_flight")
    parser.add_argument("--rate-limit", type=int, default=0, help="requests a second (0: none)")
    parser.add_argument("--skopeo-sample", type=int, default=20)
    parser.add_argument("--httpx-sample", type=int, default=50)
    parser.add_argument(
        "--postgresql-url",
        help="store in a fresh database on this PostgreSQL server instead of embedded SQLite",
    )
    args = parser.parse_args()
    with (
        # In memory where the machine allows: the registry's disk is not what is measured.
        tempfile.TemporaryDirectory(dir=SHM if Path(SHM).is_dir() else None) as directory,
        postgresql_engine(args.postgresql_url)
        if args.postgresql_url
        else sqlite_engine(Path(directory)) as engine,
    ):
        cert, key = self_signed(Path(directory))
        ports = Ports(outer=free_port(), token=free_port(), inner=free_port())
        realm = f"https://127.0.0.1:{ports.outer}/token" if args.rate_limit else ports.realm
        with run_registry(
            "token",
            Path(directory) / "registry",
            tls=(cert, key),
            realm=realm,
            access_log=not args.rate_limit,
        ) as registry:
            assert registry.token_server is not None
            registry.token_server.anonymous_pull = True  # public images, as on Docker Hub
            front = Front(registry, args.rtt / 1000, args.rate_limit, cert, ports)
            try:
                run(args, engine, registry, front, cert, Path(directory))
            finally:
                front.close()


def run(
    args: argparse.Namespace,
    engine: Engine,
    registry: LocalRegistry,
    front: Front,
    cert: Path,
    directory: Path,
) -> None:
    print(
        f"database: {db.describe(engine)}; registry {args.rtt:.0f} ms away over TLS, "
        f"{args.in_flight} requests in flight allowed"
        + (f", rate limit {args.rate_limit}/s" if args.rate_limit else "")
    )
    pushed = seed(registry, args.tools, args.tags)
    repositories = list(pushed)
    front.reset()
    os.environ["SSL_CERT_FILE"] = str(cert)  # the bench's CA, as an institute's would be
    fields = getattr(Registry, "__dataclass_fields__", {})
    bench_registry = Registry(
        id="bench",
        name="A registry 80 ms away",
        hosts=(front.host,),
        source=Source.OPERATOR,
        **({"max_in_flight": args.in_flight} if "max_in_flight" in fields else {}),
    )
    if "max_in_flight" not in fields:  # the code before: one limit for every registry
        oci.MAX_IN_FLIGHT = args.in_flight  # type: ignore[attr-defined]
    catalog = Catalog((bench_registry, *BUILTIN_REGISTRIES))
    # dockyard talks plain HTTP to loopback registries (as Docker does); this one stands for
    # a remote registry, so it is asked over HTTPS.
    loopback_rule = getattr(refresh_module, "base_url_for")  # noqa: B009 - replaced below
    setattr(  # noqa: B010 - the module's own name for it, replaced for this run
        refresh_module,
        "base_url_for",
        lambda host, **kw: f"https://{host}" if host == front.host else loopback_rule(host, **kw),
    )
    db.upgrade(engine)
    with db.unit_of_work(db.make_sessionmaker(engine)) as session:
        user = accounts.create_user(session, username="bench", email="bench@example.org")
        tool_ids = [
            services.register_tool(
                session, catalog, user, services.Registration(image=f"{front.host}/{name}")
            ).id
            for name in repositories
        ]
    figures = asyncio.run(measure(engine, catalog, tool_ids, args.tags, front, args.in_flight))
    wrong = stored_differences(engine, front.host, pushed)
    print(f"every tag right: {'yes' if not wrong else f'no, {len(wrong)} differ: {wrong[:3]}'}")
    # The same images from a second, open, plain-HTTP registry on loopback: the client alone.
    storage = directory / "registry" / "storage"
    with run_registry("open", directory / "plain", storage=storage) as plain:
        asyncio.run(client_alone("on loopback", plain.host, plain.url, repositories, 32, 0))
    asyncio.run(
        client_alone(
            f"{args.rtt:.0f} ms away",
            front.host,
            f"https://{front.host}",
            repositories,
            args.in_flight,
            front.rtt,
        )
    )
    rng = random.Random(3)
    tags = [(name, f"1.{n}") for name in repositories for n in range(args.tags)]
    skopeo = skopeo_loop(front, rng.sample(tags, min(args.skopeo_sample, len(tags))))
    script = httpx_script(front, rng.sample(tags, min(args.httpx_sample, len(tags))))
    total = len(tags)
    full = figures["full refresh"]
    print(
        f"all {total:,} tags: skopeo loop {skopeo * total:,.0f} s, httpx script "
        f"{script * total:,.0f} s, dockyard's full refresh {full:.2f} s: "
        f"{skopeo * total / full:,.0f}x the skopeo loop, {script * total / full:,.1f}x the "
        f"httpx script; unchanged re-refresh {figures['unchanged re-refresh']:.2f} s with "
        f"{figures['unchanged GETs']:.0f} manifest GETs and {figures['unchanged tokens']:.0f} "
        "token requests"
    )


if __name__ == "__main__":
    main()
