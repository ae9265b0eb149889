"""A real registry for the tests: Debian's `docker-registry` (CNCF distribution) on loopback.

Three modes: `open` (no auth), `htpasswd` (Basic challenge) and `token` (Bearer challenge,
tokens signed by a small token server of the tests' own, trusted through `rootcertbundle`).
Images are pushed over the registry's HTTP API, built in memory: single-platform images,
multi-platform indexes, and broken or schema-1-like manifests.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import bcrypt
import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from tests.support.network import free_port

REGISTRY_BINARY = shutil.which("docker-registry") or "/usr/bin/docker-registry"
USERNAME, PASSWORD = "robot", "s3cret-pull-password"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """Signs registry tokens (ES256, x5c) for anyone, or only for the test robot."""

    def __init__(self, directory: Path, service: str) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dockyard-test-token-issuer")])
        now = datetime.now(UTC)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=1))
            .sign(self.key, hashes.SHA256())
        )
        self.bundle = directory / "token-ca.pem"
        self.bundle.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))
        self.service = service
        self.issuer = "dockyard-test-issuer"
        self.anonymous_pull = False
        self.failing = False
        self.requests = 0
        self.port = free_port()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests += 1
                if server.failing:
                    self.send_response(500)
                    self.end_headers()
                    return
                query = parse_qs(urlsplit(self.path).query)
                user = server.user(self.headers.get("Authorization"))
                if self.headers.get("Authorization") and user is None:
                    self.send_response(401)
                    self.end_headers()
                    return
                access = []
                for scope in query.get("scope", []):
                    kind, name, actions = scope.split(":", 2)
                    allowed = (
                        ["pull", "push", "delete", "*"]
                        if user
                        else (["pull"] if server.anonymous_pull else [])
                    )
                    access.append(
                        {
                            "type": kind,
                            "name": name,
                            "actions": [a for a in actions.split(",") if a in allowed],
                        }
                    )
                body = json.dumps(
                    {"token": server.sign(user or "", access), "expires_in": 300}
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    def user(self, header: str | None) -> str | None:
        if not header or not header.startswith("Basic "):
            return None
        username, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return username if (username, password) == (USERNAME, PASSWORD) else None

    def sign(self, subject: str, access: list[dict[str, Any]]) -> str:
        der = self.certificate.public_bytes(serialization.Encoding.DER)
        header = {"typ": "JWT", "alg": "ES256", "x5c": [base64.b64encode(der).decode()]}
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        signing_input = (
            f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        )
        r, s = decode_dss_signature(
            self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        )
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return f"{signing_input}.{_b64url(signature)}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@dataclass
class LocalRegistry:
    """A running `docker-registry` and how to push to it."""

    mode: str
    port: int
    process: subprocess.Popen[bytes]
    token_server: TokenServer | None = None
    pushed: list[str] = field(default_factory=list)
    #: The certificate the registry serves HTTPS with (None: plain HTTP).
    certificate: Path | None = None
    #: Where its output (and access log, when asked for) goes.
    log: Path | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.certificate else 'http'}://{self.host}"

    @property
    def verify(self) -> ssl.SSLContext | bool:
        return ssl.create_default_context(cafile=self.certificate) if self.certificate else True

    @property
    def pull_credentials(self) -> tuple[str, str] | None:
        return None if self.mode == "open" else (USERNAME, PASSWORD)

    def push_client(self, repository: str) -> httpx.Client:
        headers: dict[str, str] = {}
        if self.mode == "htpasswd":
            headers["Authorization"] = (
                "Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
            )
        elif self.mode == "token":
            assert self.token_server is not None
            access = [
                {"type": "repository", "name": repository, "actions": ["pull", "push", "delete"]}
            ]
            headers["Authorization"] = f"Bearer {self.token_server.sign(USERNAME, access)}"
        return httpx.Client(
            base_url=self.url, headers=headers, timeout=30, verify=self.verify, trust_env=False
        )

    def push_blob(self, repository: str, data: bytes, http: httpx.Client | None = None) -> str:
        if http is None:
            with self.push_client(repository) as own:
                return self.push_blob(repository, data, own)
        digest = digest_of(data)
        if http.head(f"/v2/{repository}/blobs/{digest}").status_code == 200:
            return digest
        start = http.post(f"/v2/{repository}/blobs/uploads/")
        assert start.status_code == 202, start.text
        location = start.headers["location"]
        separator = "&" if "?" in location else "?"
        done = http.put(
            f"{location}{separator}digest={digest}",
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert done.status_code == 201, done.text
        return digest

    def push_manifest(self, repository: str, reference: str, body: bytes, media_type: str) -> str:
        with self.push_client(repository) as http:
            response = http.put(
                f"/v2/{repository}/manifests/{reference}",
                content=body,
                headers={"Content-Type": media_type},
            )
            assert response.status_code == 201, response.text
        return digest_of(body)

    def image_manifest(
        self,
        repository: str,
        os: str = "linux",
        architecture: str = "amd64",
        variant: str | None = None,
        created: str = "2024-05-01T12:00:00.123456789Z",
        layers: int = 2,
        salt: str = "",
    ) -> tuple[bytes, int]:
        """Upload a config and layers; return the manifest bytes and the image's size."""
        config = {
            "architecture": architecture,
            "os": os,
            "created": created,
            "rootfs": {"type": "layers", "diff_ids": []},
            "config": {"Labels": {"salt": salt}},
        }
        if variant:
            config["variant"] = variant
        config_bytes = json.dumps(config, sort_keys=True).encode()
        layer_refs: list[dict[str, Any]] = []
        with self.push_client(repository) as http:
            config_digest = self.push_blob(repository, config_bytes, http)
            for n in range(layers):
                data = f"layer {n} {os}/{architecture}/{variant} {salt}".encode() * (n + 1)
                layer_refs.append(
                    {
                        "mediaType": OCI_LAYER,
                        "digest": self.push_blob(repository, data, http),
                        "size": len(data),
                    }
                )
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config_bytes)},
            "layers": layer_refs,
        }
        return json.dumps(manifest, sort_keys=True).encode(), len(config_bytes) + sum(
            ref["size"] for ref in layer_refs
        )

    def push_image(self, repository: str, tag: str, **kwargs: Any) -> str:
        body, _ = self.image_manifest(repository, **kwargs)
        return self.push_manifest(repository, tag, body, OCI_MANIFEST)

    def push_index(
        self,
        repository: str,
        tag: str,
        platforms: list[tuple[str, str, str | None]],
        salt: str = "",
        attestation: bool = False,
    ) -> str:
        entries = []
        for os, architecture, variant in platforms:
            body, _ = self.image_manifest(repository, os, architecture, variant, salt=salt)
            digest = self.push_manifest(repository, digest_of(body), body, OCI_MANIFEST)
            platform = {
                "os": os,
                "architecture": architecture,
                **({"variant": variant} if variant else {}),
            }
            entries.append(
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": digest,
                    "size": len(body),
                    "platform": platform,
                }
            )
        if attestation:
            body, _ = self.image_manifest(
                repository, "unknown", "unknown", salt="attestation" + salt, layers=1
            )
            digest = self.push_manifest(repository, digest_of(body), body, OCI_MANIFEST)
            entries.append(
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": digest,
                    "size": len(body),
                    "platform": {"os": "unknown", "architecture": "unknown"},
                }
            )
        index = json.dumps(
            {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}, sort_keys=True
        ).encode()
        return self.push_manifest(repository, tag, index, OCI_INDEX)

    def delete_tag(self, repository: str, tag: str) -> None:
        """Delete the manifest a tag points to (distribution deletes by digest)."""
        with self.push_client(repository) as http:
            head = http.head(
                f"/v2/{repository}/manifests/{tag}",
                headers={"Accept": f"{OCI_MANIFEST}, {OCI_INDEX}"},
            )
            digest = head.headers["docker-content-digest"]
            response = http.delete(f"/v2/{repository}/manifests/{digest}")
            assert response.status_code == 202, response.text

    def raw_manifest(self, repository: str, tag: str) -> bytes:
        with self.push_client(repository) as http:
            return http.get(
                f"/v2/{repository}/manifests/{tag}",
                headers={"Accept": f"{OCI_MANIFEST}, {OCI_INDEX}"},
            ).content

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


@contextmanager
def run_registry(
    mode: str,
    directory: Path,
    *,
    tls: tuple[Path, Path] | None = None,
    realm: str | None = None,
    access_log: bool = False,
    storage: Path | None = None,
) -> Iterator[LocalRegistry]:
    """Start `docker-registry` with a config of our own (its systemd unit never runs).

    `tls` is a certificate and its key: the registry then answers HTTPS only. `realm`, in
    the token mode, is the token service's address the challenge names (the token server's
    own by default; a proxy before it in the benchmarks). `access_log` writes a line per
    request to `LocalRegistry.log`. `storage` shares another registry's images (by default
    the registry has its own, in `directory`).
    """
    port = free_port()
    directory.mkdir(parents=True, exist_ok=True)
    storage = storage or directory / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    lines = [
        "version: 0.1",
        "log:",
        "  level: error",
        "  accesslog:",
        f"    disabled: {'false' if access_log else 'true'}",
        "storage:",
        "  cache:",
        "    blobdescriptor: inmemory",
        "  filesystem:",
        f"    rootdirectory: {storage}",
        "  delete:",
        "    enabled: true",
        "http:",
        f"  addr: 127.0.0.1:{port}",
        "  secret: dockyard-tests",
    ]
    if tls is not None:
        lines += ["  tls:", f"    certificate: {tls[0]}", f"    key: {tls[1]}"]
    token_server = None
    if mode == "htpasswd":
        htpasswd = directory / "htpasswd"
        htpasswd.write_bytes(
            USERNAME.encode()
            + b":"
            + bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4))
            + b"\n"
        )
        lines += ["auth:", "  htpasswd:", "    realm: dockyard-tests", f"    path: {htpasswd}"]
    elif mode == "token":
        token_server = TokenServer(directory, service=f"127.0.0.1:{port}")
        lines += [
            "auth:",
            "  token:",
            f"    realm: {realm or token_server.realm}",
            f"    service: {token_server.service}",
            f"    issuer: {token_server.issuer}",
            f"    rootcertbundle: {token_server.bundle}",
        ]
    config = directory / "config.yml"
    config.write_text("\n".join(lines) + "\n")
    # The log goes to a file: a pipe nobody reads fills up and stalls the registry.
    log_path = directory / "registry.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [REGISTRY_BINARY, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT
    )
    registry = LocalRegistry(
        mode=mode,
        port=port,
        process=process,
        token_server=token_server,
        certificate=tls[0] if tls else None,
        log=log_path,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{registry.url}/v2/", timeout=1, verify=registry.verify)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    error = log_path.read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"docker-registry did not start: {error}") from None
                time.sleep(0.05)
        yield registry
    finally:
        registry.stop()
        log.close()
        if token_server is not None:
            token_server.close()
