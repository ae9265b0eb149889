"""dockyard's commands as real processes, the way an operator runs them: `serve`, `worker` and
the one-shot ones, each with its own environment and a log file to read afterwards."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.network import free_port


def clean_environment(**settings: str) -> dict[str, str]:
    """This process's environment without any `DOCKYARD_` setting, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return env | settings


@dataclass
class Running:
    """A started dockyard process and where its output goes."""

    process: subprocess.Popen[bytes]
    log: Path
    url: str | None = None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def start(args: list[str], env: Mapping[str, str], log: Path) -> Running:
    """`python -m dockyard ARGS`, stdout and stderr into `log`."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "dockyard", *args],
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Running(process, log)


def run(args: list[str], env: Mapping[str, str], *, stdin: str = "") -> str:
    """A one-shot command; its output, or the test fails with it."""
    done = subprocess.run(
        [sys.executable, "-m", "dockyard", *args],
        env=dict(env),
        input=stdin.encode(),
        capture_output=True,
        timeout=120,
    )
    output = (done.stdout + done.stderr).decode(errors="replace")
    assert done.returncode == 0, f"dockyard {' '.join(args)} failed:\n{output}"
    return output


def wait_until_ready(running: Running, url: str, *, timeout: float = 60) -> None:
    """Until `url/readyz` answers 200; the test fails with the process's output if it dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if running.process.poll() is not None:
            pytest.fail(f"the process exited:\n{running.output()}", pytrace=False)
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"{url} was not ready in {timeout:g} s:\n{running.output()}", pytrace=False)


def stop(running: Running) -> str:
    """SIGTERM, as an orchestrator stops it (SIGKILL after 30 s); its output."""
    process = running.process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return running.output()


@contextmanager
def serving(
    env: Mapping[str, str], log: Path, *extra: str, port: int | None = None
) -> Iterator[Running]:
    """`dockyard serve` on a free loopback port until the block ends."""
    port = port or free_port()
    running = start(["serve", "--port", str(port), *extra], env, log)
    running.url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(running, running.url)
        yield running
    finally:
        stop(running)
