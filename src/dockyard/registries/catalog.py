"""The registries dockyard knows: the built-ins, the operator's, and the catch-all.

Facts come from the registries' documentation and Dockstore's `Registry.java` (docs/specification.md
section 3). Matching a host to its registry, building the link to an image's public page and
the login commands are plain functions of this data: no framework or database import.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from dockyard.errors import InvalidRegistryPath, UnknownRegistry
from dockyard.registries.ecr import (
    ECR_EXAMPLE,
    ECR_HOST_FAMILY,
    ECR_HOST_PATTERN,
    parse_ecr_host,
)

#: Requests one process keeps on the wire to a hosted registry at once, unless the operator
#: sets `max_in_flight` for it: enough that round trips, not the chain of requests per tag,
#: set the pace, and few enough to stay within what hosted registries tolerate.
HOSTED_IN_FLIGHT = 16
#: The same for a registry the operator defined (their own, which they may load as they like).
OPERATOR_IN_FLIGHT = 32


class PrivateTools(StrEnum):
    """Whether tools from a registry may, must or must not be private."""

    ALLOWED = "allowed"
    REQUIRED = "required"
    FORBIDDEN = "forbidden"


class Source(StrEnum):
    """Where a registry definition comes from."""

    BUILTIN = "builtin"
    OPERATOR = "operator"
    CATCH_ALL = "catch-all"


@dataclass(frozen=True, slots=True)
class Registry:
    """One container registry and the rules for tools whose images live there."""

    id: str
    name: str
    hosts: tuple[str, ...] = ()
    host_pattern: str | None = None
    #: A looser pattern for hosts that look meant for this registry but break its pattern.
    host_family: str | None = None
    site: str | None = None
    public: bool = True
    private_tools: PrivateTools = PrivateTools.ALLOWED
    needs_registry_path: bool = False
    registry_path_example: str | None = None
    registry_path_form: str | None = None
    api_host: str | None = None
    insecure: bool = False
    #: Manifest GETs count against a pull limit and HEADs do not (Docker Hub): refresh then
    #: resolves even a new tag with HEAD, and GETs only manifests whose digest is new.
    counts_pulls: bool = False
    #: Requests one process keeps on the wire to this registry at once.
    max_in_flight: int = HOSTED_IN_FLIGHT
    source: Source = Source.BUILTIN
    username: str | None = None
    password_env: str | None = None
    login_hint: str | None = None
    description: str = ""
    _compiled: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.host_pattern is not None:
            object.__setattr__(self, "_compiled", re.compile(self.host_pattern))

    @property
    def private_only(self) -> bool:
        """True when every tool from this registry must be private."""
        return self.private_tools is PrivateTools.REQUIRED

    @property
    def fixed_host(self) -> str | None:
        """The one host of a registry that has exactly one (after aliases), else None."""
        return self.hosts[0] if self.hosts and self.host_pattern is None else None

    def matches(self, host: str) -> bool:
        """True when `host` belongs to this registry."""
        lowered = host.lower()
        if any(lowered == known.lower() for known in self.hosts):
            return True
        return self._compiled is not None and self._compiled.fullmatch(host) is not None

    def site_url(self, host: str, repository: str) -> str | None:
        """The public web page of an image, when the registry has one."""
        if self.site is None:
            return None
        if self.id == "dockerhub" and repository.startswith("library/"):
            return f"https://hub.docker.com/_/{repository.removeprefix('library/')}"
        return self.site.format(repository=repository, host=host)

    def login_commands(self, host: str) -> list[dict[str, str]]:
        """Commands a user runs to authenticate Docker against this registry."""
        if self.id == "ecr":
            ecr = parse_ecr_host(host)
            return [
                {"label": "AWS CLI v2", "command": ecr.login_command()},
                {"label": "AWS CLI v1 (legacy)", "command": ecr.legacy_login_command()},
            ]
        if self.login_hint is not None:
            command = self.login_hint.format(host=host, name=host.partition(".")[0])
        else:
            command = f"docker login {host}"
        return [{"label": "docker", "command": command}]

    def as_dict(self) -> dict[str, object]:
        """The public description of this registry (never its credentials)."""
        return {
            "id": self.id,
            "name": self.name,
            "kind": "public" if self.public else "private",
            "hosts": list(self.hosts),
            "host_pattern": self.host_pattern,
            "site": self.site,
            "private_tools": self.private_tools.value,
            "private_only": self.private_only,
            "needs_registry_path": self.needs_registry_path,
            "registry_path_form": self.registry_path_form,
            "registry_path_example": self.registry_path_example,
            "insecure": self.insecure,
            "counts_pulls": self.counts_pulls,
            "max_in_flight": self.max_in_flight,
            "source": self.source.value,
            "has_operator_credentials": self.username is not None,
            "description": self.description,
        }


BUILTIN_REGISTRIES: tuple[Registry, ...] = (
    Registry(
        id="dockerhub",
        name="Docker Hub",
        hosts=("docker.io", "registry.hub.docker.com", "index.docker.io", "registry-1.docker.io"),
        site="https://hub.docker.com/r/{repository}",
        api_host="registry-1.docker.io",
        counts_pulls=True,
        login_hint="docker login",
        description="Public registry with a public website; images may be private.",
    ),
    Registry(
        id="quay",
        name="Quay.io",
        hosts=("quay.io",),
        site="https://quay.io/repository/{repository}",
        description="Public registry with a public website; images may be private.",
    ),
    Registry(
        id="gitlab",
        name="GitLab",
        hosts=("registry.gitlab.com",),
        site="https://gitlab.com/{repository}/container_registry",
        description="GitLab.com's container registry; images follow their project's visibility.",
    ),
    Registry(
        id="ghcr",
        name="GitHub Container Registry",
        hosts=("ghcr.io",),
        site="https://ghcr.io/{repository}",
        login_hint="echo $GITHUB_TOKEN | docker login {host} -u <github-username> --password-stdin",
        description="GitHub Packages' container registry; packages may be private.",
    ),
    Registry(
        id="ecr-public",
        name="Amazon ECR Public",
        hosts=("public.ecr.aws", "ecr-public.aws.com"),
        site="https://gallery.ecr.aws/{repository}",
        private_tools=PrivateTools.FORBIDDEN,
        login_hint=(
            "aws ecr-public get-login-password --region us-east-1 | docker login --username AWS "
            "--password-stdin {host}"
        ),
        description="Always public: tools from ECR Public cannot be private.",
    ),
    Registry(
        id="ecr",
        name="Amazon ECR (private)",
        host_pattern=ECR_HOST_PATTERN,
        host_family=ECR_HOST_FAMILY,
        max_in_flight=OPERATOR_IN_FLIGHT,  # ECR allows about 1,000 manifest reads a second
        public=False,
        private_tools=PrivateTools.REQUIRED,
        needs_registry_path=True,
        registry_path_form="<12-digit account id>.dkr.ecr.<region>.amazonaws.com",
        registry_path_example=ECR_EXAMPLE,
        description=(
            "Each AWS account has its own registry, so give its registry path. Tools must be "
            "private; access is granted with a repository policy."
        ),
    ),
    Registry(
        id="sevenbridges",
        name="Seven Bridges",
        host_pattern=r"^([a-zA-Z0-9]+-)?images\.sbgenomics\.com$",
        host_family=r"(?i)^[^/]*sbgenomics\.com$",
        public=False,
        private_tools=PrivateTools.REQUIRED,
        needs_registry_path=True,
        registry_path_form="[<platform>-]images.sbgenomics.com",
        registry_path_example="images.sbgenomics.com",
        login_hint="docker login {host} -u <seven-bridges-username> -p <authentication-token>",
        description="Private registry of the Seven Bridges platforms; tools must be private.",
    ),
    Registry(
        id="gar",
        name="Google Artifact Registry",
        host_pattern=r"^[a-z][a-z0-9-]*[a-z0-9]-docker\.pkg\.dev$",
        host_family=r"(?i)^[^/]*\.pkg\.dev$",
        site="https://{host}/{repository}",
        public=False,
        needs_registry_path=True,
        registry_path_form="<location>-docker.pkg.dev",
        registry_path_example="us-central1-docker.pkg.dev",
        login_hint="gcloud auth configure-docker {host}",
        description="Registries per location and project; give the location's registry path.",
    ),
    Registry(
        id="acr",
        name="Azure Container Registry",
        host_pattern=r"^[a-zA-Z0-9]{5,50}\.azurecr\.io$",
        host_family=r"(?i)^[^/]*\.azurecr\.io$",
        public=False,
        needs_registry_path=True,
        registry_path_form="<registry name, 5-50 letters and digits>.azurecr.io",
        registry_path_example="myregistry.azurecr.io",
        login_hint="az acr login --name {name}",
        description="One registry per Azure account; give its registry path.",
    ),
)

GENERIC_REGISTRY = Registry(
    id="generic",
    name="Other OCI registry",
    public=False,
    source=Source.CATCH_ALL,
    description=(
        "Any other registry that speaks the OCI Distribution API (Harbor, Nexus, a lab's own "
        "registry). The image reference's host is used as given."
    ),
)


class Catalog:
    """The registries of one dockyard instance, in matching order."""

    def __init__(self, registries: Iterable[Registry], *, generic_enabled: bool = True) -> None:
        self.registries: tuple[Registry, ...] = tuple(registries)
        self.generic_enabled = generic_enabled
        self._by_id = {registry.id: registry for registry in self.all()}

    def all(self) -> Sequence[Registry]:
        """Every registry a user may choose, the catch-all last when it is enabled."""
        return (*self.registries, GENERIC_REGISTRY) if self.generic_enabled else self.registries

    def get(self, registry_id: str) -> Registry:
        """The registry with this id, or `UnknownRegistry` listing the ids there are."""
        try:
            return self._by_id[registry_id]
        except KeyError:
            known = ", ".join(self._by_id)
            raise UnknownRegistry(f"unknown registry {registry_id!r}: use one of {known}") from None

    def match(self, host: str) -> Registry:
        """The registry that serves `host`; near misses of a known pattern are explained."""
        for registry in self.registries:
            if registry.matches(host):
                return registry
        for registry in self.registries:
            if registry.host_family is not None and re.match(registry.host_family, host):
                raise InvalidRegistryPath(_near_miss(registry, host))
        if self.generic_enabled:
            return GENERIC_REGISTRY
        known = ", ".join(r.id for r in self.registries)
        raise UnknownRegistry(
            f"no registry on this instance serves {host!r} (known: {known}); ask an "
            "administrator to add it"
        )


def _near_miss(registry: Registry, host: str) -> str:
    if registry.id == "ecr":
        parse_ecr_host(host)  # raises with the precise explanation
    return (
        f"{host!r} is not a valid {registry.name} registry path: expected "
        f"{registry.registry_path_form}, for example {registry.registry_path_example}"
    )
