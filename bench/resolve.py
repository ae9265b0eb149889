"""How fast dockyard resolves image references: in-process, and over HTTP as the form calls it.

Run: .venv-test/bin/python bench/resolve.py [--requests 2000]
Prints parse throughput, then median and p95 latency of GET /api/registries/resolve against a
real `dockyard serve` process on loopback (one client, sequential, like a user typing).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import httpx

from dockyard.registries.catalog import BUILTIN_REGISTRIES, Catalog
from dockyard.registries.services import resolve

SAMPLES = [
    "ubuntu",
    "quay.io/biocontainers/samtools:1.17--h00cdaf9_0",
    "312767926603.dkr.ecr.us-west-2.amazonaws.com/test_namespace/test_image:latest",
    "ghcr.io/nf-core/rnaseq@sha256:" + "a" * 64,
    "registry.lab.example.org:5000/group/tool:2.1",
    "Biocontainers/Samtools",
]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def bench_in_process(rounds: int) -> None:
    catalog = Catalog(BUILTIN_REGISTRIES)
    started = time.perf_counter()
    for _ in range(rounds):
        for image in SAMPLES:
            try:
                resolve(catalog, image)
            except Exception:  # noqa: S112 (invalid samples are part of the load)
                continue
    elapsed = time.perf_counter() - started
    count = rounds * len(SAMPLES)
    print(f"in-process resolve: {count} references in {elapsed:.3f}s = {count / elapsed:,.0f}/s")


def bench_http(requests: int) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data_dir = tempfile.mkdtemp(prefix="dockyard-bench-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
    env["DOCKYARD_DATA_DIR"] = data_dir
    server = subprocess.Popen(
        [sys.executable, "-m", "dockyard", "serve", "--port", str(port), "--log-level", "warning"],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base) as client:
            for _ in range(100):
                try:
                    client.get("/healthz")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            for _ in range(50):
                client.get("/api/registries/resolve", params={"image": "warmup"})
            latencies = []
            for n in range(requests):
                image = SAMPLES[n % len(SAMPLES)]
                started = time.perf_counter()
                response = client.get("/api/registries/resolve", params={"image": image})
                latencies.append((time.perf_counter() - started) * 1000)
                assert response.status_code in (200, 422)
    finally:
        server.terminate()
        server.wait(timeout=10)
    median, p95 = statistics.median(latencies), percentile(latencies, 0.95)
    print(
        f"HTTP resolve ({requests} sequential requests): median {median:.2f} ms, "
        f"p95 {p95:.2f} ms, max {max(latencies):.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    bench_in_process(args.rounds)
    bench_http(args.requests)


if __name__ == "__main__":
    main()
