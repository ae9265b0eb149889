"""Reading files of one commit from a git repository, safely and within bounds.

dockyard never checks a repository out. It keeps one bare repository per URL in a cache
directory, fetches the one reference it needs shallowly (`--depth 1`) into it, and reads
blobs from git's object store by path. So nothing is ever written outside the cache, and a
symlink in a repository is a blob like any other: it is refused, never followed. Each fetch
is bounded in time and in the bytes it may add to the cache (a watchdog stops git when either
runs out); each file in size; each tree in entries.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from dockyard.errors import DockyardError

FETCH_TIMEOUT = 60.0
MAX_FETCH_BYTES = 64 * 1024 * 1024
MAX_TREE_ENTRIES = 10_000
MAX_FILE_BYTES = 1024 * 1024
#: What `export` writes out of one commit, at most (files past MAX_FILE_BYTES are left out).
MAX_EXPORT_BYTES = 128 * 1024 * 1024
#: Git's own output is read only this far (a hostile server cannot flood memory).
MAX_OUTPUT_BYTES = 4 * 1024 * 1024
SCHEMES = frozenset({"https", "http", "git", "ssh", "file"})
_SCP_LIKE = re.compile(r"^[\w.-]+@[\w.-]+:(?!//)")
_COMMIT_ID = re.compile(r"^[0-9a-f]{40}$")


class SourceError(DockyardError):
    """A git repository could not be read, or holds something dockyard refuses to read."""

    code = "source_error"


@dataclass(frozen=True)
class Entry:
    """A path in a commit's tree: its mode, object id and size in bytes."""

    mode: str
    object_id: str
    size: int | None

    @property
    def is_file(self) -> bool:
        """True for regular (and executable) files; symlinks and submodules are not."""
        return self.mode in {"100644", "100755"}


def is_commit_id(text: str) -> bool:
    """True for a full (SHA-1) commit id as git prints it."""
    return _COMMIT_ID.match(text) is not None


def url_host(url: str) -> tuple[str, str]:
    """The scheme and host of a git URL (scp-like `user@host:path` is ssh)."""
    if _SCP_LIKE.match(url):
        return "ssh", url.split("@", 1)[1].split(":", 1)[0]
    parts = urlsplit(url)
    return parts.scheme.lower(), (parts.hostname or "")


class GitReader:
    """Shallow fetches into a cache of bare repositories, and bounded reads from them."""

    def __init__(
        self,
        cache: Path,
        *,
        timeout: float = FETCH_TIMEOUT,
        max_fetch_bytes: int = MAX_FETCH_BYTES,
        allow_file_urls: bool = False,
    ) -> None:
        self.cache = cache
        self.timeout = timeout
        self.max_fetch_bytes = max_fetch_bytes
        self.allow_file_urls = allow_file_urls

    # --- remote ----------------------------------------------------------------------------

    def remote_refs(self, url: str, *, pins: Sequence[str] = ()) -> dict[str, str]:
        """Every branch and tag of the repository and the commit it names.

        `pins` are the addresses the host was checked at: over HTTP(S), git connects to
        them instead of resolving the name again (which could answer otherwise by then).
        """
        return self.remote(url, pins=pins)[0]

    def remote(self, url: str, *, pins: Sequence[str] = ()) -> tuple[dict[str, str], str | None]:
        """`remote_refs`, and the branch the repository's HEAD names (`main`, `master`; None if
        it names none), from one `ls-remote`."""
        output = self._git(
            None,
            "ls-remote",
            "--symref",
            "--",
            url,
            "HEAD",
            "refs/heads/*",
            "refs/tags/*",
            what=url,
            pins=_pinned(url, pins),
        )
        refs: dict[str, str] = {}
        default = None
        for line in output.splitlines():
            if line.startswith("ref: refs/heads/") and line.endswith("\tHEAD"):
                default = line[len("ref: refs/heads/") : -len("\tHEAD")]
                continue
            sha, _, name = line.partition("\t")
            if not name.startswith(("refs/heads/", "refs/tags/")):
                continue  # HEAD itself
            if name.endswith("^{}"):
                refs[name[: -len("^{}")]] = sha  # an annotated tag: the commit it points to
            else:
                refs.setdefault(name, sha)
        return refs, default

    def fetch(self, url: str, reference: str, *, pins: Sequence[str] = ()) -> str:
        """Fetch `reference` (branch, tag or commit) shallowly; the commit's id. `pins` as
        for `remote_refs`."""
        repository = self._repository(url)
        with self._locked(repository):
            self._bounded_fetch(repository, url, reference, _pinned(url, pins))
            commit = self._git(repository, "rev-parse", "--verify", "FETCH_HEAD^{commit}").strip()
        if not is_commit_id(commit):
            raise SourceError(f"{url}: {reference} is not a commit")
        return commit

    # --- the fetched commit -------------------------------------------------------------------

    def tree(self, url: str, commit: str) -> dict[str, Entry]:
        """Every path of the commit; `SourceError` when there are too many."""
        repository = self._repository(url)
        output = self._git(repository, "ls-tree", "-r", "-l", "-z", "--full-tree", commit)
        entries: dict[str, Entry] = {}
        for record in output.split("\0"):
            if not record:
                continue
            meta, _, path = record.partition("\t")
            mode, _kind, object_id, size = meta.split()
            entries[path] = Entry(mode, object_id, int(size) if size.isdigit() else None)
            if len(entries) > MAX_TREE_ENTRIES:
                raise SourceError(
                    f"{url} at {commit[:12]} has more than {MAX_TREE_ENTRIES:,} files; dockyard "
                    "reads descriptors only from repositories smaller than that"
                )
        return entries

    def read(self, url: str, path: str, entry: Entry) -> str:
        """The text of one file; refused when it is a symlink, a submodule, huge or binary."""
        if entry.mode == "120000":
            raise SourceError(f"{path} is a symbolic link; dockyard does not follow links")
        if not entry.is_file:
            raise SourceError(f"{path} is not a file (git mode {entry.mode})")
        if entry.size is None or entry.size > MAX_FILE_BYTES:
            raise SourceError(
                f"{path} is {entry.size or 0:,} bytes; descriptors and Dockerfiles may have at "
                f"most {MAX_FILE_BYTES:,}"
            )
        data = self._git_bytes(self._repository(url), "cat-file", "blob", entry.object_id)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise SourceError(f"{path} is not UTF-8 text") from None

    def export(self, url: str, commit: str, directory: Path) -> list[str]:
        """Write the fetched commit's regular files into `directory` (for parsers that read
        files); the paths left out: symlinks, submodules, files past MAX_FILE_BYTES.

        The tree is read from git's own archive (never a checkout), and only regular files
        inside `directory` are written: tar's `data` filter refuses anything else.
        """
        self.tree(url, commit)  # refuses trees with too many entries before anything is written
        command = self._command(self._repository(url), "archive", "--format=tar", commit)
        left_out: list[str] = []
        written = 0
        with subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=self._env()
        ) as process:
            assert process.stdout is not None
            with tarfile.open(fileobj=process.stdout, mode="r|") as archive:
                for member in archive:
                    if member.isdir():
                        continue
                    if not member.isfile() or member.size > MAX_FILE_BYTES:
                        left_out.append(member.name)
                        continue
                    written += member.size
                    if written > MAX_EXPORT_BYTES:
                        process.kill()
                        raise SourceError(
                            f"{url} at {commit[:12]} holds more than "
                            f"{MAX_EXPORT_BYTES // (1024 * 1024)} MiB of files"
                        )
                    archive.extract(member, directory, filter="data")
        if process.returncode != 0:
            raise SourceError(f"{url}: commit {commit[:12]} could not be read")
        return left_out

    # --- plumbing -----------------------------------------------------------------------------

    def _repository(self, url: str) -> Path:
        scheme, _ = url_host(url)
        if scheme not in SCHEMES:
            raise SourceError(
                f"{url} is not a git URL dockyard reads: use https://, git://, ssh:// or "
                "user@host:path"
            )
        if scheme == "file" and not self.allow_file_urls:
            raise SourceError(
                "file:// repositories are on this server's own disk and are refused; the "
                "operator can allow them with DOCKYARD_ALLOW_PRIVATE_NETWORK_REGISTRIES"
            )
        path = self.cache / hashlib.sha256(url.encode()).hexdigest()[:32]
        if not (path / "HEAD").exists():
            path.mkdir(parents=True, exist_ok=True)
            self._git(path, "init", "--bare", "--quiet")
        return path

    @contextmanager
    def _locked(self, repository: Path) -> Iterator[None]:
        with open(repository / "dockyard.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _bounded_fetch(self, repository: Path, url: str, reference: str, pins: list[str]) -> None:
        before = _size(repository)
        command = self._command(
            repository,
            *pins,
            "fetch",
            "--depth",
            "1",
            "--no-tags",
            "--no-recurse-submodules",
            "--quiet",
            "--",
            url,
            reference,
        )
        with (
            tempfile.TemporaryFile() as stderr,
            subprocess.Popen(
                command,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env=self._env(),
                start_new_session=True,
            ) as process,
        ):
            deadline = time.monotonic() + self.timeout
            reason = None
            while process.poll() is None:
                if time.monotonic() > deadline:
                    reason = f"fetching {reference} took longer than {self.timeout:.0f} s"
                elif _size(repository) - before > self.max_fetch_bytes:
                    reason = self._too_big(reference)
                if reason is not None:
                    process.kill()
                    break
                time.sleep(0.05)
            process.wait()
            stderr.seek(0)
            errors = stderr.read(MAX_OUTPUT_BYTES).decode("utf-8", "replace")
        if reason is None and _size(repository) - before > self.max_fetch_bytes:
            reason = self._too_big(reference)  # a fetch faster than the watchdog's look
        if reason is not None:
            shutil.rmtree(repository, ignore_errors=True)  # drop whatever half came in
            raise SourceError(f"{url}: {reason}")
        if process.returncode != 0:
            raise SourceError(f"{url}: {_explain(errors, reference)}")

    def _too_big(self, reference: str) -> str:
        return (
            f"{reference} brings more than {self.max_fetch_bytes // (1024 * 1024)} MiB; dockyard "
            "reads descriptors only from smaller repositories"
        )

    def _git(
        self, repository: Path | None, *args: str, what: str = "", pins: Sequence[str] = ()
    ) -> str:
        return self._git_bytes(repository, *pins, *args, what=what).decode("utf-8", "replace")

    def _git_bytes(self, repository: Path | None, *args: str, what: str = "") -> bytes:
        try:
            done = subprocess.run(
                self._command(repository, *args),
                capture_output=True,
                env=self._env(),
                timeout=self.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise SourceError(f"{what or 'git'}: no answer within {self.timeout:.0f} s") from None
        if done.returncode != 0:
            message = done.stderr[:MAX_OUTPUT_BYTES].decode("utf-8", "replace")
            raise SourceError(f"{what or 'git'}: {_explain(message, '')}")
        return done.stdout[:MAX_OUTPUT_BYTES]

    def _command(self, repository: Path | None, *args: str) -> list[str]:
        options = [
            "-c",
            "http.followRedirects=false",
            "-c",
            "core.hooksPath=/dev/null",
            "-c",
            "fetch.fsckObjects=true",
            "-c",
            "protocol.file.allow=" + ("always" if self.allow_file_urls else "never"),
        ]
        location = ["--git-dir", str(repository)] if repository is not None else []
        return ["git", *options, *location, *args]

    def _env(self) -> dict[str, str]:
        protocols = "file:git:http:https:ssh" if self.allow_file_urls else "git:http:https:ssh"
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.cache),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": "/dev/null",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ASKPASS": "/bin/false",
            "SSH_ASKPASS": "/bin/false",
            "GIT_SSH_COMMAND": "ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new",
            "GIT_ALLOW_PROTOCOL": protocols,
            "LC_ALL": "C",
        }


def _pinned(url: str, addresses: Sequence[str]) -> list[str]:
    """git options that make an HTTP(S) URL's host resolve to these addresses only.

    Other transports (git://, ssh) resolve the name themselves; only the guard's check
    before them applies.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if not addresses or scheme not in ("http", "https") or not parts.hostname:
        return []
    if parts.hostname in addresses:  # an address, not a name: nothing to resolve or pin
        return []
    port = parts.port or (443 if scheme == "https" else 80)
    listed = ",".join(f"[{a}]" if ":" in a else a for a in dict.fromkeys(addresses))
    return ["-c", f"http.curloptResolve={parts.hostname}:{port}:{listed}"]


def _size(directory: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(directory):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total


def _explain(stderr: str, reference: str) -> str:
    lowered = stderr.lower()
    if "couldn't find remote ref" in lowered or "not our ref" in lowered:
        return f"the repository has no branch, tag or commit {reference!r}"
    if "could not resolve host" in lowered or "unable to access" in lowered:
        return "the repository cannot be reached"
    if "does not appear to be a git repository" in lowered or "not found" in lowered:
        return "no git repository at this URL"
    if "authentication" in lowered or "terminal prompts disabled" in lowered:
        return "the repository asks for credentials; dockyard reads public repositories only"
    last = [line for line in stderr.strip().splitlines() if line.strip()]
    return last[-1][:300] if last else "git failed"
