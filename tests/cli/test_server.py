"""`dockyard serve` on a fresh data dir: the README's first command, as a real process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_creates_the_embedded_database_loads_the_demo_and_becomes_ready(
    tmp_path: Path,
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
    env["DOCKYARD_DATA_DIR"] = str(tmp_path / "data")
    process = subprocess.Popen(
        [sys.executable, "-m", "dockyard", "serve", "--port", str(port), "--demo"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        ready = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert ready is not None, process.communicate(timeout=5)[0].decode()
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "database": "sqlite"}
        assert httpx.get(f"http://127.0.0.1:{port}/registries").status_code == 200
        demo = httpx.get(f"http://127.0.0.1:{port}/api/tools", params={"q": "samtools"}).json()
        assert [tool["path"] for tool in demo["items"]] == ["quay.io/biocontainers/samtools"]
        assert (tmp_path / "data" / "dockyard.db").exists()
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout:
            process.stdout.close()


def test_serve_with_a_bad_setting_exits_with_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
    env |= {"DOCKYARD_DATA_DIR": str(tmp_path), "DOCKYARD_DATABASE_URL": "oracle://x/y"}
    result = subprocess.run(
        [sys.executable, "-m", "dockyard", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "dockyard: error: DOCKYARD_DATABASE_URL uses 'oracle'; dockyard supports sqlite:// and postgresql://"
    ]
