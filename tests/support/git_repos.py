"""Local git repositories for the tests: built with the git command, served by `git daemon`
or over git's smart HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from dockyard.sources.git import GitReader

ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.org",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.org",
    "GIT_CONFIG_GLOBAL": "/dev/null",
}


class Repo:
    """A work tree whose commits the tests make, file by file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "--quiet", "--initial-branch=main")

    def git(self, *args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(self.path), *args],
            env=ENV,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()

    def write(self, files: Mapping[str, str | bytes]) -> None:
        for name, content in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content)

    def commit(self, files: Mapping[str, str | bytes], message: str = "change") -> str:
        self.write(files)
        self.git("add", "--all")
        self.git("commit", "--quiet", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")

    def tag(self, name: str, *, annotated: bool = False) -> None:
        if annotated:
            self.git("tag", "-a", name, "-m", f"release {name}")
        else:
            self.git("tag", name)

    @property
    def url(self) -> str:
        return f"file://{self.path}"


@contextmanager
def git_daemon(base: Path) -> Iterator[int]:
    """`git daemon` on 127.0.0.1 exporting every repository under `base`; its port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    log = (base / "daemon.log").open("wb")
    process = subprocess.Popen(
        [
            "git",
            "daemon",
            "--reuseaddr",
            "--export-all",
            f"--base-path={base}",
            "--listen=127.0.0.1",
            f"--port={port}",
            str(base),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            with socket.socket() as client:
                if client.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("git daemon did not start")
            time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


class _GitHttpBackend(BaseHTTPRequestHandler):
    """git's smart HTTP protocol, answered by `git http-backend` as a CGI program."""

    root = ""

    def do_GET(self) -> None:
        self._backend()

    def do_POST(self) -> None:
        self._backend()

    def _backend(self) -> None:
        path, _, query = self.path.partition("?")
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": self.root,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_PROJECT_ROOT": self.root,
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "REQUEST_METHOD": self.command,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
            "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
        }
        output = subprocess.run(
            ["git", "http-backend"], input=body, env=env, capture_output=True, check=False
        ).stdout
        separator = b"\r\n\r\n" if b"\r\n\r\n" in output else b"\n\n"
        head, _, payload = output.partition(separator)
        status = 200
        headers = []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def git_http(base: Path) -> Iterator[int]:
    """git's smart HTTP on 127.0.0.1 for every bare repository under `base`; its port."""
    handler = type("Handler", (_GitHttpBackend,), {"root": str(base)})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


WORKFLOW = """cwlVersion: v1.2
class: Workflow
inputs: []
outputs: []
requirements:
  - $import: types/common.yml
steps:
  align:
    run: tools/align.cwl
    in: []
    out: []
"""


ALIGN = """cwlVersion: v1.2
class: CommandLineTool
baseCommand: bwa
inputs: []
outputs: []
hints:
  sub:
    run: ../tools/sub/index.cwl
"""


INDEX = (
    "cwlVersion: v1.2\nclass: CommandLineTool\nbaseCommand: [bwa, index]\ninputs: []\noutputs: []\n"
)


TYPES = "- name: Sample\n  type: record\n"


WDL = 'version 1.0\nimport "tasks/align.wdl" as align\nworkflow main { call align.run }\n'


WDL_TASK = 'version 1.0\nimport "../common/util.wdl"\ntask run { command <<< bwa >>> }\n'


WDL_UTIL = "version 1.0\ntask util { command <<< true >>> }\n"


DOCKERFILE = "FROM debian:12\nRUN apt-get update\n"


def full_repo(path: Path) -> Repo:
    repo = Repo(path)
    repo.commit(
        {
            "Dockstore.cwl": WORKFLOW,
            "tools/align.cwl": ALIGN,
            "tools/sub/index.cwl": INDEX,
            "types/common.yml": TYPES,
            "Dockstore.wdl": WDL,
            "tasks/align.wdl": WDL_TASK,
            "common/util.wdl": WDL_UTIL,
            "Dockerfile": DOCKERFILE,
            "README.md": "not a descriptor",
        }
    )
    repo.tag("1.0", annotated=True)
    return repo


def reader(tmp_path: Path, **options: Any) -> GitReader:
    return GitReader(tmp_path / "cache", allow_file_urls=True, **options)
