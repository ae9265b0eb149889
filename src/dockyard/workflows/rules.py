"""A workflow's identity and settings, checked. Pure.

A workflow's TRS id is `#workflow/{host}/{namespace}/{repository}`, or
`…/{repository}/{name}` for one of several in a repository (as Dockstore writes them). Its
descriptor type, primary descriptor and test parameter files are given by the maintainer or
by the repository's `.dockstore.yml`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from dockyard.catalog.rules import DescriptorType
from dockyard.errors import InvalidInput
from dockyard.sources.git import SCHEMES, url_host
from dockyard.workflows.dockstore_yml import MAX_NAME, NAME, Filters

#: The TRS id prefix of workflows (tools have none).
TRS_PREFIX = "#workflow/"
#: The branches and tags one workflow keeps as versions, at most.
MAX_VERSIONS = 200
#: The test parameter files one version may name, at most.
MAX_TEST_FILES = 50
#: The descriptor each language's workflows usually start from, to say in errors.
TYPICAL_PRIMARY = {
    DescriptorType.CWL: "/workflow.cwl",
    DescriptorType.WDL: "/workflow.wdl",
    DescriptorType.NFL: "/nextflow.config",
    DescriptorType.GALAXY: "/workflow.ga",
    DescriptorType.SMK: "/workflow/Snakefile",
}


@dataclass(frozen=True)
class WorkflowSpec:
    """One workflow of a repository, as registered."""

    descriptor_type: DescriptorType
    primary_descriptor_path: str
    name: str | None = None
    test_parameter_files: tuple[str, ...] = ()
    filters: Filters = field(default_factory=Filters)


@dataclass(frozen=True)
class Location:
    """Where a git URL says the repository is: host, namespace and repository name."""

    host: str
    namespace: str
    repository: str

    def path(self, name: str | None) -> str:
        """The workflow's path (its TRS id after `#workflow/`)."""
        base = f"{self.host}/{self.namespace}/{self.repository}"
        return f"{base}/{name}" if name else base


def location(git_url: str) -> Location:
    """The host, namespace and repository a git URL names; `InvalidInput` for anything else."""
    url = git_url.strip()
    scheme, host = url_host(url)
    if scheme not in SCHEMES or (scheme != "file" and not host):
        raise InvalidInput(
            f"git_url {url!r} is not a git URL: use https://host/owner/repository.git, "
            "ssh://... or user@host:owner/repository.git"
        )
    scp_like = scheme == "ssh" and "://" not in url  # user@host:owner/repository.git
    path = url.split(":", 1)[1] if scp_like else urlsplit(url).path
    parts = [part for part in path.split("/") if part]
    if len(parts) < 2:
        raise InvalidInput(
            f"git_url {url!r} names no owner and repository: use https://{host or 'host'}"
            "/owner/repository.git"
        )
    repository = parts[-1].removesuffix(".git")
    namespace = "/".join(parts[:-1]) if scheme != "file" else parts[-2]
    return Location(host=(host or "localhost").lower(), namespace=namespace, repository=repository)


def spec(
    descriptor_type: str,
    primary_descriptor_path: str,
    *,
    name: str | None = None,
    test_parameter_files: list[str] | tuple[str, ...] = (),
    filters: Filters | None = None,
) -> WorkflowSpec:
    """A workflow's settings, checked; `InvalidInput` says which to change and how."""
    try:
        kind = DescriptorType(descriptor_type.strip().upper())
    except ValueError:
        raise InvalidInput(
            f"descriptor_type {descriptor_type!r} is not one of {', '.join(DescriptorType)}"
        ) from None
    if name is not None and (len(name) > MAX_NAME or not NAME.fullmatch(name)):
        raise InvalidInput(
            f"name {name!r} is not a workflow name: letters and digits, with single - or _ "
            f"between them, at most {MAX_NAME} characters"
        )
    if len(test_parameter_files) > MAX_TEST_FILES:
        raise InvalidInput(f"test_parameter_files names more than {MAX_TEST_FILES} files")
    return WorkflowSpec(
        descriptor_type=kind,
        primary_descriptor_path=repository_path(
            primary_descriptor_path, "primary_descriptor_path", TYPICAL_PRIMARY[kind]
        ),
        name=name,
        test_parameter_files=tuple(
            repository_path(path, "test_parameter_files", "/test.json")
            for path in test_parameter_files
        ),
        filters=filters or Filters(),
    )


def repository_path(path: str, what: str, example: str) -> str:
    """An absolute path inside the repository (`/dir/file`), checked."""
    text = path.strip()
    if not text.startswith("/") or len(text) > 1024:
        raise InvalidInput(f"{what} {path!r} is a path from the repository root, such as {example}")
    if any(part in ("..", ".") for part in text.split("/")) or "\\" in text or "\0" in text:
        raise InvalidInput(f"{what} {path!r} may not contain '.', '..', backslashes or NUL")
    if text.endswith("/"):
        raise InvalidInput(f"{what} {path!r} names a directory; name the file, such as {example}")
    return text
