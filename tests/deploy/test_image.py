"""The Containerfile builds with Debian's buildah on a Debian base made here by mmdebstrap
(Docker Hub is not reachable from this machine; the production default stays the official
Python image), and `dockyard serve` inside it answers /readyz, running as a non-root user.

buildah keeps its images for these tests in /var/tmp/dockyard-test-images (never the
machine's own container storage), so a second run reuses the base and the build's layers.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dockyard import __version__
from tests.support.network import free_port

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path("/var/tmp/dockyard-test-images")
BASE = "localhost/dockyard-test-base:bookworm"
IMAGE = "localhost/dockyard:test"
#: What the base holds besides Debian's minimal system: Python with venv, git, CA certificates.
BASE_PACKAGES = "python3,python3-venv,git,ca-certificates"
BUILD_MINUTES = 25


def buildah_command(*args: str) -> list[str]:
    """buildah on the tests' own storage (vfs: no kernel overlay needed)."""
    binary = shutil.which("buildah")
    assert binary, "buildah is needed (scripts/install installs Debian's package)"
    storage = ["--root", str(CACHE / "storage"), "--runroot", str(CACHE / "run")]
    return [binary, *storage, "--storage-driver", "vfs", *args]


def buildah(*args: str, timeout: float = 300) -> str:
    done = subprocess.run(
        buildah_command(*args),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"buildah {' '.join(args)} failed:\n{done.stderr[-4000:]}"
    return done.stdout


def _base_image() -> None:
    """Debian bookworm from Debian's mirror, imported as an image (once per machine)."""
    if BASE in buildah("images", "--format", "{{.Name}}:{{.Tag}}"):
        return
    binary = shutil.which("mmdebstrap")
    assert binary, "mmdebstrap is needed (scripts/install installs Debian's package)"
    tarball = CACHE / "base.tar"
    subprocess.run(
        [
            binary,
            "--quiet",
            "--variant=minbase",
            f"--include={BASE_PACKAGES}",
            "--format=tar",
            "bookworm",
            str(tarball),
        ],
        check=True,
        timeout=900,
    )
    container = buildah("from", "scratch").strip()
    buildah("add", container, str(tarball), "/")
    buildah("config", "--cmd", "/bin/bash", container)
    buildah("commit", "--quiet", container, BASE)
    buildah("rm", container)
    tarball.unlink()


def _this_machines_pip() -> list[str]:
    """This machine reaches PyPI through a TLS-inspecting proxy: the build's pip trusts the
    machine's CA bundle, mounted for the RUN steps only (never part of the image)."""
    bundle = Path("/etc/ssl/certs/ca-certificates.crt")
    if not bundle.exists():
        return []
    return ["--volume", f"{bundle}:/run/ca.crt:ro", "--build-arg", "PIP_CERT=/run/ca.crt"]


@pytest.fixture(scope="module")
def image() -> dict[str, Any]:
    """The image built from the Containerfile on the local base; its configuration."""
    CACHE.mkdir(parents=True, exist_ok=True)
    _base_image()
    buildah(
        "bud",
        "--isolation",
        "chroot",
        "--layers",
        "--format",  # OCI's image format has no HEALTHCHECK: Docker's keeps it
        "docker",
        "--build-arg",
        f"PYTHON_BASE={BASE}",
        *_this_machines_pip(),
        "--build-arg",
        f"VERSION={__version__}",
        "--file",
        str(ROOT / "Containerfile"),
        "--tag",
        IMAGE,
        str(ROOT),
        timeout=BUILD_MINUTES * 60,
    )
    inspected: dict[str, Any] = json.loads(buildah("inspect", "--type", "image", IMAGE))
    return inspected


@pytest.fixture
def container(image: dict[str, Any]) -> Iterator[str]:
    name = buildah("from", IMAGE).strip()
    yield name
    buildah("rm", name)


def test_the_image_runs_as_a_non_root_user_with_labels_and_a_health_check(
    image: dict[str, Any], container: str
) -> None:
    config = image["OCIv1"]["config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["dockyard"]
    assert config["Cmd"][0] == "serve"
    labels = config["Labels"]
    assert labels["org.opencontainers.image.title"] == "dockyard"
    assert labels["org.opencontainers.image.version"] == __version__
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert "/readyz" in " ".join(image["Docker"]["config"]["Healthcheck"]["Test"])
    environment = dict(variable.split("=", 1) for variable in config["Env"])
    assert environment["DOCKYARD_DATA_DIR"] == "/var/lib/dockyard"
    assert not {key for key in environment if "SECRET" in key or "PASSWORD" in key}
    assert buildah("run", "--isolation", "chroot", container, "--", "id", "-u").strip() == "10001"
    commands = buildah("run", "--isolation", "chroot", container, "--", "dockyard", "--help")
    for command in ("serve", "worker", "db", "check"):
        assert f"  {command}" in commands


def test_dockyard_serve_inside_the_image_answers_readyz_as_its_own_user(
    container: str,
) -> None:
    port = free_port()
    serve = subprocess.Popen(
        buildah_command(
            "run",
            "--isolation",
            "chroot",
            container,
            "--",
            "dockyard",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        ready = None
        while time.monotonic() < deadline and serve.poll() is None:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.5)
        assert ready is not None, serve.communicate(timeout=10)[0].decode()
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "database": "sqlite"}
        owners = buildah(
            "run",
            "--isolation",
            "chroot",
            container,
            "--",
            "stat",
            "-c",
            "%u %a",
            "/var/lib/dockyard/dockyard.db",
            "/var/lib/dockyard/secret_key",
        ).split("\n")
        assert owners[0].startswith("10001 ")  # written by the unprivileged user
        assert owners[1] == "10001 600"
    finally:
        if serve.poll() is None:
            os.killpg(serve.pid, signal.SIGTERM)
            try:
                serve.wait(timeout=30)
            except subprocess.TimeoutExpired:
                serve.kill()
                serve.wait()
        if serve.stdout:
            serve.stdout.close()
