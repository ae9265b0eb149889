"""Token-authenticated reads while a refresh writes 3,000 versions, on the embedded SQLite.

Run: .venv-test/bin/python bench/locked_reads.py [--tags 3000] [--connections 64] [--seconds 40]
Needs `wrk` (Debian: `apt-get install wrk`).

Pushes one repository with `--tags` tags to Debian's docker-registry on loopback (not
timed), starts `dockyard serve` on a fresh data dir, registers the repository as a tool and
makes an API token. Then wrk reads, over `--connections` connections with the token, the
TRS tool list, the API's tool list and the tool itself, while the tool's refresh (started
through the API two seconds in) writes every version. It prints the refresh's time, and
wrk's requests per second, p50 and p99 and its count of answers that were not 2xx: reads
that met SQLite's write lock used to fail with `database is locked`. The same reads then run
again with nothing writing, so what the refresh adds is seen beside what the reads cost.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.network import free_port
from tests.support.registry import run_registry

from trs import server, wrk

SHM = "/dev/shm"  # noqa: S108 - a private TemporaryDirectory is made inside it


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tags", type=int, default=3000)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=int, default=40)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(dir=SHM if Path(SHM).is_dir() else None) as where,
        run_registry("open", Path(where) / "registry") as registry,
    ):
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(
                pool.map(
                    lambda n: registry.push_image("bench/big", f"1.{n}", salt=f"big{n}"),
                    range(args.tags),
                )
            )
        print(f"pushed {args.tags:,} tags in {time.perf_counter() - started:.0f} s (not timed)")
        port = free_port()
        env = {
            **os.environ,
            "DOCKYARD_DATA_DIR": str(Path(where) / "data"),
            "DOCKYARD_ALLOW_PRIVATE_NETWORK_REGISTRIES": "true",
            "DOCKYARD_BACKGROUND_REFRESH": "false",
        }
        dockyard = str(Path(sys.executable).with_name("dockyard"))
        command = [dockyard, "serve", "--port", str(port), "--log-level", "warning"]
        with server(command, env, port, Path(where) / "serve.log") as url:

            def run(*arguments: str) -> subprocess.CompletedProcess[str]:
                return subprocess.run(
                    [dockyard, *arguments], env=env, check=True, capture_output=True, text=True
                )

            run("users", "create", "bench", "--email", "bench@example.org")
            token = next(
                word
                for word in run("tokens", "create", "bench", "--name", "b").stdout.split()
                if word.startswith("dy_")
            )
            auth = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=url, headers=auth, timeout=600) as http:
                tool = http.post("/api/tools", json={"image": f"{registry.host}/bench/big"})
                tool_id = tool.json()["id"]
                refreshed: dict[str, float | int | str] = {}

                def refresh() -> None:
                    time.sleep(2)
                    began = time.perf_counter()
                    answer = http.post(f"/api/tools/{tool_id}/refresh")
                    refreshed["seconds"] = time.perf_counter() - began
                    refreshed["status"] = answer.status_code
                    refreshed["added"] = len(answer.json().get("added", []))

                writer = threading.Thread(target=refresh)
                writer.start()
                paths = ["/ga4gh/trs/v2/tools", "/api/tools", f"/api/tools/{tool_id}"]
                figures = wrk(url, paths, args.seconds, args.connections, Path(where), headers=auth)
                writer.join()
                # The same reads of the same 3,000-version tool with nothing writing: what the
                # reads cost by themselves, beside what the refresh adds.
                quiet = wrk(url, paths, args.seconds, args.connections, Path(where), headers=auth)
        print(
            f"refresh: {refreshed.get('status')} in {refreshed.get('seconds', 0):.1f} s, "
            f"{refreshed.get('added')} versions written"
        )
        for label, seen in (("during the refresh", figures), ("after it, nothing writing", quiet)):
            print(
                f"reads with a token, {args.connections} connections, {args.seconds} s, "
                f"{label}: {seen['rps']:.0f} requests/s, p50 {seen['p50_ms']:.1f} ms, "
                f"p99 {seen['p99_ms']:.1f} ms, not 2xx: {seen['non_2xx']:.0f}, socket "
                f"errors: {seen['socket_errors']:.0f}"
            )


if __name__ == "__main__":
    main()
