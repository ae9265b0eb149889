"""Debian's tinyproxy on loopback, as the forward proxy an institute puts before the internet."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.network import free_port


@dataclass
class Tinyproxy:
    """A running tinyproxy: its address and what it logged."""

    url: str
    log: Path

    def requests(self) -> list[str]:
        """The request lines it received, `GET http://...` or `CONNECT host:port`, in order."""
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            if "]: Request (file descriptor" in line:
                found.append(line.split("): ", 1)[1].rsplit(" HTTP/", 1)[0])
        return found


@contextlib.contextmanager
def run_tinyproxy(directory: Path) -> Iterator[Tinyproxy]:
    """Start tinyproxy on a free loopback port for the block (skips if it is not installed)."""
    binary = shutil.which("tinyproxy") or "/usr/bin/tinyproxy"
    if not Path(binary).exists():
        pytest.skip("tinyproxy is not installed (scripts/test installs it)")
    port = free_port()
    log = directory / "tinyproxy.log"
    config = directory / "tinyproxy.conf"
    config.write_text(
        f"Port {port}\nListen 127.0.0.1\nTimeout 60\nAllow 127.0.0.1\nMaxClients 200\n"
        f'LogLevel Info\nLogFile "{log}"\nPidFile "{directory / "tinyproxy.pid"}"\n'
    )
    process = subprocess.Popen(
        [binary, "-d", "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.1):
                break
            time.sleep(0.05)
        else:
            raise RuntimeError("tinyproxy did not start listening")
        yield Tinyproxy(url=f"http://127.0.0.1:{port}", log=log)
    finally:
        process.terminate()
        process.wait(timeout=10)
