"""TRS read throughput on a catalog of 10,000 tools, next to the ceiling for Python here.

Run: .venv-test/bin/python bench/trs.py [--tools 10000] [--seconds 10] [--connections 64]
Needs `wrk` (Debian: `apt-get install wrk`), the load generator, which runs as its own
process so that it does not share the server's interpreter.

Seeds a fresh embedded (SQLite) database, migrated like production: every tool published,
two versions each, two platform images and a CWL descriptor per version. Then starts
`dockyard serve` (one process, access log off) and measures with wrk, over 64 connections,
the requests per second of

- `GET /ga4gh/trs/v2/tools/{id}`, cycling over every tool id,
- `GET /ga4gh/trs/v2/tools/{id}/versions`, the same,
- `GET /ga4gh/trs/v2/tools?limit=100`, cycling over every page offset,

with the response cache warm and with it turned off (`DOCKYARD_TRS_CACHE_MB=0`, every
request reads the database), next to a bare ASGI app on the same server (uvicorn, one
process) that answers the same paths with the same bytes from a dict in memory: the
ceiling for a Python server on this machine. Every answer is checked first; wrk's error
and non-2xx counts are printed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from sqlalchemy import Engine, insert, update

from dockyard import db
from dockyard.accounts.models import User
from dockyard.catalog import rules
from dockyard.catalog.models import Tool, ToolMaintainer, ToolVersion, VersionFile, VersionImage
from dockyard.registries.catalog import BUILTIN_REGISTRIES, Catalog

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.network import free_port

BASE = "/ga4gh/trs/v2"
CATALOG = Catalog(BUILTIN_REGISTRIES)
CWL = "cwlVersion: v1.2\nclass: CommandLineTool\nbaseCommand: [tool]\ninputs: []\noutputs: []\n"
PAGE = 100


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


def scenarios(paths: list[str]) -> dict[str, list[str]]:
    """The request paths of each measured endpoint."""
    encoded = [quote(path, safe="") for path in paths]
    return {
        "GET /tools/{id}": [f"{BASE}/tools/{tool}" for tool in encoded],
        "GET /tools/{id}/versions": [f"{BASE}/tools/{tool}/versions" for tool in encoded],
        "GET /tools?limit=100": [
            f"{BASE}/tools?limit={PAGE}&offset={offset}" for offset in range(0, len(paths), PAGE)
        ],
    }


@contextmanager
def server(command: list[str], env: dict[str, str], port: int, log: Path) -> Iterator[str]:
    """A server process on loopback, stopped on exit; yields its URL once it answers."""
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}{BASE}/service-info", timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    message = f"the server did not start; its log:\n{log.read_text()}"
                    raise SystemExit(message) from None
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            # Still answering what a load generator left queued: the figures are taken.
            print("the server took over 30 s to stop after SIGTERM; killed it", file=sys.stderr)
            process.kill()
            process.wait()


def fetch_all(url: str, requests: dict[str, list[str]]) -> dict[str, bytes]:
    """Every answer, checked, with the bytes the ceiling app will serve."""
    answers: dict[str, bytes] = {}
    with httpx.Client(base_url=url, timeout=30) as client:
        for path in (p for paths in requests.values() for p in paths):
            response = client.get(path)
            if response.status_code != 200:
                raise SystemExit(f"{path} answered {response.status_code}: {response.text}")
            answers[path] = response.content
    return answers


def wrk(
    url: str,
    paths: list[str],
    seconds: int,
    connections: int,
    workdir: Path,
    headers: dict[str, str] | None = None,
) -> dict[str, float]:
    """Requests per second and errors, from wrk cycling over the paths."""
    listing = workdir / "paths.txt"
    listing.write_text("\n".join(paths) + "\n")
    script = workdir / "cycle.lua"
    sent = "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in (headers or {}).items())
    script.write_text(
        sent + "local paths = {}\n"
        f'for line in io.lines("{listing}") do paths[#paths + 1] = line end\n'
        "local i = 0\n"
        "request = function()\n"
        "  i = i % #paths + 1\n"
        '  return wrk.format("GET", paths[i])\n'
        "end\n"
        "done = function(summary, latency, requests)\n"
        '  io.write(string.format("p50_ms %.3f\\np99_ms %.3f\\n", '
        "latency:percentile(50) / 1000, latency:percentile(99) / 1000))\n"
        "end\n"
    )
    result = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    text = result.stdout

    def number(pattern: str) -> float:
        found = re.search(pattern, text)
        return float(found.group(1)) if found else 0.0

    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    return {
        "rps": number(r"Requests/sec:\s+([\d.]+)"),
        "p50_ms": number(r"p50_ms ([\d.]+)"),
        "p99_ms": number(r"p99_ms ([\d.]+)"),
        "non_2xx": number(r"Non-2xx or 3xx responses: (\d+)"),
        "socket_errors": float(sum(int(g) for g in errors.groups())) if errors else 0.0,
    }


CEILING_APP = """
import json, sys
from pathlib import Path

ANSWERS = {path: body.encode() for path, body in json.loads(Path(sys.argv[1]).read_text()).items()}
HEADERS = [(b"content-type", b"application/json"), (b"access-control-allow-origin", b"*")]


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    raw = scope["raw_path"].decode("latin-1")
    query = scope["query_string"].decode("latin-1")
    body = ANSWERS.get(raw + ("?" + query if query else ""))
    if body is None:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": HEADERS + [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


if __name__ == "__main__":
    import uvicorn
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning",
                server_header=False)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tools", type=int, default=10_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench/trs.py needs wrk, the load generator: apt-get install wrk")
    with tempfile.TemporaryDirectory() as directory:
        workdir = Path(directory)
        database = f"sqlite:///{workdir}/bench.db"
        engine = db.make_engine(database)
        db.upgrade(engine)
        started = time.perf_counter()
        requests = scenarios(seed(engine, args.tools))
        engine.dispose()
        print(f"{args.tools:,} published tools seeded in {time.perf_counter() - started:.1f}s")
        env = {
            **os.environ,
            "DOCKYARD_DATABASE_URL": database,
            "DOCKYARD_DATA_DIR": str(workdir),
            "DOCKYARD_BACKGROUND_REFRESH": "false",
        }
        port = free_port()
        dockyard_command = [
            sys.executable,
            "-m",
            "dockyard",
            "serve",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ]
        results: dict[str, dict[str, dict[str, float]]] = {}
        with server(dockyard_command, env, port, workdir / "dockyard.log") as url:
            answers = fetch_all(url, requests)  # also fills the response cache
            for name, paths in requests.items():
                results.setdefault(name, {})["dockyard"] = wrk(
                    url, paths, args.seconds, args.connections, workdir
                )
        port = free_port()
        dockyard_command[dockyard_command.index("--port") + 1] = str(port)
        uncached_env = {**env, "DOCKYARD_TRS_CACHE_MB": "0"}
        with server(dockyard_command, uncached_env, port, workdir / "uncached.log") as url:
            for name, paths in requests.items():
                results[name]["uncached"] = wrk(url, paths, args.seconds, args.connections, workdir)
        (workdir / "answers.json").write_text(
            json.dumps({path: body.decode() for path, body in answers.items()})
        )
        (workdir / "ceiling.py").write_text(CEILING_APP)
        port = free_port()
        ceiling_command = [
            sys.executable,
            str(workdir / "ceiling.py"),
            str(workdir / "answers.json"),
            str(port),
        ]
        with server(ceiling_command, env, port, workdir / "ceiling.log") as url:
            for path, body in list(answers.items())[:: max(1, len(answers) // 50)]:
                assert httpx.get(f"{url}{path}").content == body, path
            for name, paths in requests.items():
                results[name]["ceiling"] = wrk(url, paths, args.seconds, args.connections, workdir)
    print(
        f"\nwrk: {args.connections} connections, {args.seconds}s per run, "
        f"cycling over {args.tools:,} tool ids\n"
    )
    print(
        f"{'endpoint':<26} {'dockyard':>12} {'ceiling':>12} {'ratio':>6} {'p99 ms':>7} "
        f"{'errors':>6}   {'uncached':>10} {'ratio':>6} {'p99 ms':>7} {'errors':>6}"
    )
    for name, runs in results.items():
        ceiling = runs["ceiling"]["rps"]
        cells = []
        for kind in ("dockyard", "uncached"):
            run = runs[kind]
            errors = int(run["non_2xx"] + run["socket_errors"])
            cells.append(
                f"{run['rps']:>8,.0f} r/s"
                + (f" {ceiling:>8,.0f} r/s" if kind == "dockyard" else "")
                + f" {run['rps'] / ceiling:>6.3f} {run['p99_ms']:>7.1f} {errors:>6}"
            )
        print(f"{name:<26} {cells[0]}   {cells[1]}")
    print(
        "\ndockyard: answers from its response cache (every path read once before the run); "
        "uncached: DOCKYARD_TRS_CACHE_MB=0, every request reads the database"
    )


if __name__ == "__main__":
    main()
