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
- `GET /ga4gh/trs/v2/tools/{id}/versions/1.1/CWL/descriptor`, the same (a use of the tool:
  `no-cache`, so the cache revalidates it),
- `GET /api/tools/{id}`, the REST tool page (neither cached nor a fast read: the same code
  in every mode but the ceiling),
- `GET /ga4gh/trs/v2/tools?limit=100`, cycling over every page offset,

with the response cache warm and with it turned off (`DOCKYARD_TRS_CACHE_MB=0`, every
request reads the database), next to a bare ASGI app on the same server (uvicorn, one
process) that answers the same paths with the same bytes from a dict in memory: the
ceiling for a Python server on this machine. Every answer is checked first; wrk's error
and non-2xx counts are printed.
"""

from __future__ import annotations

import argparse
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
from urllib.parse import quote

import httpx

from dockyard import db
from dockyard.registries.catalog import BUILTIN_REGISTRIES, Catalog

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from seeding import database, seed
from tests.support.network import free_port

BASE = "/ga4gh/trs/v2"
CATALOG = Catalog(BUILTIN_REGISTRIES)
CWL = "cwlVersion: v1.2\nclass: CommandLineTool\nbaseCommand: [tool]\ninputs: []\noutputs: []\n"
PAGE = 100


def scenarios(paths: list[str], step: int = 1) -> dict[str, list[str]]:
    """The request paths of each measured endpoint: every `step`-th tool and page."""
    encoded = [quote(path, safe="") for path in paths[::step]]
    return {
        "GET /tools/{id}": [f"{BASE}/tools/{tool}" for tool in encoded],
        "GET /tools/{id}/versions": [f"{BASE}/tools/{tool}/versions" for tool in encoded],
        "GET …/1.1/CWL/descriptor": [
            f"{BASE}/tools/{tool}/versions/1.1/CWL/descriptor" for tool in encoded
        ],
        "GET /api/tools/{id}": [f"/api/tools/{n + 1}" for n in range(0, len(paths), step)],
        "GET /tools?limit=100": [
            f"{BASE}/tools?limit={PAGE}&offset={offset}"
            for offset in range(0, len(paths), PAGE * step)
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
            f"-t{min(2, connections)}",
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
                server_header=False, loop="asyncio")  # the loop `dockyard serve` runs
"""


#: The servers measured: name, the environment they add, what they are.
MODES = [
    ("cached", {}, "the response cache warm (every path read once before the run)"),
    (
        "uncached",
        {"DOCKYARD_TRS_CACHE_MB": "0"},
        "DOCKYARD_TRS_CACHE_MB=0: every request reads the database (through trs.fast)",
    ),
    (
        "app path",
        {"DOCKYARD_TRS_CACHE_MB": "0", "DOCKYARD_TRS_FAST_READS": "false"},
        "uncached, and DOCKYARD_TRS_FAST_READS=false: FastAPI routing and the ORM, as before",
    ),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tools", type=int, default=10_000)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", default="1,8,64", help="comma-separated")
    parser.add_argument(
        "--paths",
        type=int,
        default=0,
        help="cycle over this many tools (and pages), spread over the catalogue (0: all)",
    )
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument(
        "--postgresql",
        default=os.environ.get(
            "DOCKYARD_TEST_POSTGRESQL_SERVER", "postgresql://postgres@127.0.0.1:5432"
        ),
        help="the server to make a scratch database on (trust auth)",
    )
    args = parser.parse_args()
    connections = [int(c) for c in args.connections.split(",")]
    if shutil.which("wrk") is None:
        raise SystemExit("bench/trs.py needs wrk, the load generator: apt-get install wrk")
    with (
        tempfile.TemporaryDirectory() as directory,
        database(args.database, Path(directory), args.postgresql) as url_of_database,
    ):
        workdir = Path(directory)
        engine = db.make_engine(url_of_database)
        db.upgrade(engine)
        started = time.perf_counter()
        seeded = seed(engine, args.tools)
        step = max(1, len(seeded) // args.paths) if args.paths else 1
        requests = scenarios(seeded, step)
        if args.database == "postgresql":
            with engine.begin() as connection:
                connection.exec_driver_sql("ANALYZE")
        engine.dispose()
        print(
            f"{args.tools:,} published tools seeded in {time.perf_counter() - started:.1f}s "
            f"({args.database})"
        )
        env = {
            **os.environ,
            "DOCKYARD_DATABASE_URL": url_of_database,
            "DOCKYARD_DATA_DIR": str(workdir),
            "DOCKYARD_BACKGROUND_REFRESH": "false",
            "DOCKYARD_SECRET_KEY": "bench-secret-key-" + "x" * 32,
        }
        results: dict[tuple[str, str, int], dict[str, float]] = {}
        answers: dict[str, dict[str, bytes]] = {}
        for mode, extra, _ in MODES:
            port = free_port()
            command = [sys.executable, "-m", "dockyard", "serve", "--port", str(port)]
            command += ["--log-level", "warning"]
            with server(command, {**env, **extra}, port, workdir / f"{mode}.log") as url:
                # Also fills the response cache; links name the server, so they are set aside.
                answers[mode] = {
                    path: body.replace(url.encode(), b"http://dockyard")
                    for path, body in fetch_all(url, requests).items()
                }
                for name, paths in requests.items():
                    for count in connections:
                        results[(name, mode, count)] = wrk(url, paths, args.seconds, count, workdir)
        # The REST page shows `uses`, which the TRS descriptor reads of the earlier runs
        # counted up; the fast reads do not answer it anyway: only TRS answers are compared.
        different = [
            p
            for p in answers["cached"]
            if p.startswith(BASE) and answers["app path"][p] != answers["uncached"][p]
        ]
        (workdir / "answers.json").write_text(
            json.dumps({path: body.decode() for path, body in answers["cached"].items()})
        )  # the ceiling serves them as they are: the same length, give or take the port
        (workdir / "ceiling.py").write_text(CEILING_APP)
        port = free_port()
        ceiling_command = [
            sys.executable,
            str(workdir / "ceiling.py"),
            str(workdir / "answers.json"),
            str(port),
        ]
        with server(ceiling_command, env, port, workdir / "ceiling.log") as url:
            sample = list(answers["cached"].items())
            for path, body in sample[:: max(1, len(sample) // 50)]:
                assert httpx.get(f"{url}{path}").content == body, path
            for name, paths in requests.items():
                for count in connections:
                    results[(name, "ceiling", count)] = wrk(
                        url, paths, args.seconds, count, workdir
                    )
    _report(args, connections, requests, results, different)


def _report(
    args: argparse.Namespace,
    connections: list[int],
    requests: dict[str, list[str]],
    results: dict[tuple[str, str, int], dict[str, float]],
    different: list[str],
) -> None:
    print(
        f"\nwrk: {args.seconds}s per run, cycling over {len(requests['GET /tools/{id}']):,} "
        f"of {args.tools:,} tool ids "
        f"({args.database}); r/s, p99 ms, errors (non-2xx and socket)\n"
    )
    modes = ["ceiling", *(m for m, _, _ in MODES)]
    print(f"{'endpoint':<26} {'conns':>5} " + " ".join(f"{m:>24}" for m in modes))
    for name in requests:
        for count in connections:
            cells = []
            for mode in modes:
                run = results[(name, mode, count)]
                errors = int(run["non_2xx"] + run["socket_errors"])
                cells.append(f"{run['rps']:>9,.0f} {run['p99_ms']:>8.1f} {errors:>5}")
            print(f"{name:<26} {count:>5} " + " ".join(f"{c:>24}" for c in cells))
    if 1 in connections:
        print("\none keep-alive client, one request at a time: mean ms, and x the ceiling's")
        for name in requests:
            ceiling = 1000 / results[(name, "ceiling", 1)]["rps"]
            cells = []
            for mode in modes[1:]:
                mean = 1000 / results[(name, mode, 1)]["rps"]
                cells.append(f"{mode} {mean:.3f} ms ({mean / ceiling:.1f}x)")
            print(f"{name:<26} ceiling {ceiling:.3f} ms; " + "; ".join(cells))
    print()
    for mode, _, what in MODES:
        print(f"{mode}: {what}")
    print("ceiling: a bare ASGI app on uvicorn answering the same bytes from a dict")
    verdict = "the same bytes" if not different else f"{len(different)} DIFFERENT answers"
    print(f"uncached and app path answered {verdict} for every TRS path")


if __name__ == "__main__":
    main()
