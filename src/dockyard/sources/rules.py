"""A tool's git source as settings: checked, normalized, and turned into links. Pure.

`source` names a git repository, the Dockerfile's path, the descriptors' paths and how a
version maps to a git reference: the same name by default, a template such as `v{version}`,
or one reference per version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dockyard.catalog import rules
from dockyard.catalog.rules import DescriptorType
from dockyard.errors import InvalidInput
from dockyard.sources.git import SCHEMES, url_host

DEFAULT_DOCKERFILE = "/Dockerfile"
DEFAULT_DESCRIPTORS = {DescriptorType.CWL: "/Dockstore.cwl", DescriptorType.WDL: "/Dockstore.wdl"}
DEFAULT_REFERENCE = "{version}"
_RAW_LINKS = {
    "github.com": "https://raw.githubusercontent.com/{project}/{commit}/{path}",
    "gitlab.com": "https://gitlab.com/{project}/-/raw/{commit}/{path}",
    "bitbucket.org": "https://bitbucket.org/{project}/raw/{commit}/{path}",
}
_TREE_LINKS = {
    "github.com": "https://github.com/{project}/tree/{commit}",
    "gitlab.com": "https://gitlab.com/{project}/-/tree/{commit}",
    "bitbucket.org": "https://bitbucket.org/{project}/src/{commit}",
}


@dataclass(frozen=True)
class SourceSpec:
    """Where a tool's files live in git, checked and normalized (paths relative to the root)."""

    git_url: str
    dockerfile_path: str = "Dockerfile"
    descriptor_paths: dict[DescriptorType, str] = field(default_factory=dict)
    #: True when the maintainer named the descriptors: each must exist, not just one.
    explicit_descriptors: bool = False
    reference: str = DEFAULT_REFERENCE
    references: dict[str, str] = field(default_factory=dict)


def parse_source(raw: dict[str, Any]) -> SourceSpec:
    """A tool's `source` as stored, checked; `InvalidInput` says what to change."""
    url = str(raw.get("git_url", "")).strip()
    scheme, host = url_host(url)
    if scheme not in SCHEMES or (scheme != "file" and not host):
        raise InvalidInput(
            f"source.git_url {url!r} is not a git URL: use https://host/owner/repo.git, "
            "git://..., ssh://... or user@host:owner/repo.git"
        )
    given = raw.get("descriptor_paths") or {}
    if not isinstance(given, dict):
        raise InvalidInput('source.descriptor_paths maps a type to a path: {"CWL": "/x.cwl"}')
    paths: dict[DescriptorType, str] = {}
    for kind, path in (given or {k.value: v for k, v in DEFAULT_DESCRIPTORS.items()}).items():
        try:
            descriptor = DescriptorType(str(kind).upper())
        except ValueError:
            raise InvalidInput(
                f"source.descriptor_paths: {kind!r} is not one of {', '.join(DescriptorType)}"
            ) from None
        paths[descriptor] = _repository_path(str(path), "descriptor_paths")
    references = raw.get("references") or {}
    if not isinstance(references, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in references.items()
    ):
        raise InvalidInput('source.references maps a version to a git reference: {"1.0": "v1.0"}')
    template = str(raw.get("reference") or DEFAULT_REFERENCE)
    if template.replace("{version}", "").count("{") or not template.strip():
        raise InvalidInput(
            "source.reference is a git reference with {version} where the version name goes, "
            "such as 'v{version}' or 'main'"
        )
    return SourceSpec(
        git_url=url,
        dockerfile_path=_repository_path(
            str(raw.get("dockerfile_path") or DEFAULT_DOCKERFILE), "dockerfile_path"
        ),
        descriptor_paths=paths,
        explicit_descriptors=bool(given),
        reference=template,
        references={k: v.strip() for k, v in references.items()},
    )


def _repository_path(path: str, what: str) -> str:
    try:
        return rules.normalize_file_path(path.lstrip("/"))
    except InvalidInput as error:
        raise InvalidInput(f"source.{what}: {error.message}") from None


def reference_for(spec: SourceSpec, version: str) -> str:
    """The git reference a version's files come from."""
    return spec.references.get(version) or spec.reference.replace("{version}", version)


def _project(git_url: str) -> tuple[str, str] | None:
    scheme, host = url_host(git_url)
    if host.lower() not in _RAW_LINKS or scheme not in {"https", "http", "ssh"}:
        return None
    path = git_url.split(host, 1)[1].lstrip(":/").removesuffix("/").removesuffix(".git")
    return host.lower(), path


def raw_url(git_url: str, commit: str, path: str) -> str | None:
    """The raw file link on GitHub, GitLab or Bitbucket; None for other hosts."""
    project = _project(git_url)
    if project is None:
        return None
    return _RAW_LINKS[project[0]].format(project=project[1], commit=commit, path=path)


def source_link(git_url: str, commit: str) -> str:
    """Where a person browses the commit (the git URL itself for unknown hosts)."""
    project = _project(git_url)
    if project is None:
        return git_url
    return _TREE_LINKS[project[0]].format(project=project[1], commit=commit)
