"""Resolving an image reference: which registry, what normalized name, what it takes to use.

`resolve` is the one place the registry-path rules live (docs/specification.md rule 4); the
REST API, the CLI and tool registration all call it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from dockyard.errors import InvalidInput, InvalidReference, InvalidRegistryPath
from dockyard.registries.catalog import Catalog, Registry
from dockyard.registries.ecr import EcrHost, parse_ecr_host
from dockyard.registries.reference import (
    DEFAULT_DOMAIN,
    DOMAIN_AND_PORT,
    ImageReference,
    parse_reference,
    split_domain,
)


@dataclass(frozen=True, slots=True)
class Resolution:
    """An image reference tied to the registry that serves it."""

    input: str
    reference: ImageReference
    registry: Registry
    ecr: EcrHost | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def host(self) -> str:
        """The registry host, as it appears in the normalized reference."""
        return self.reference.domain

    def as_dict(self) -> dict[str, object]:
        """The answer of `dockyard registries resolve --json` and `/api/registries/resolve`."""
        reference, registry = self.reference, self.registry
        answer: dict[str, object] = {
            "input": self.input,
            "valid": True,
            "registry": registry.id,
            "registry_name": registry.name,
            "registry_kind": "public" if registry.public else "private",
            "host": reference.domain,
            "repository": reference.path,
            "tag": reference.tag,
            "digest": reference.digest,
            "normalized": str(reference),
            "familiar": reference.familiar,
            "private_only": registry.private_only,
            "private_tools": registry.private_tools.value,
            "needs_registry_path": registry.needs_registry_path,
            "site_url": registry.site_url(reference.domain, reference.path),
            "login_commands": registry.login_commands(reference.domain),
            "pull_commands": pull_commands(reference),
            "warnings": self.warnings,
        }
        if self.ecr is not None:
            answer |= {
                "registry_id": self.ecr.registry_id,
                "region": self.ecr.region,
                "partition": self.ecr.partition,
                "fips": self.ecr.fips,
                "dual_stack": self.ecr.dual_stack,
            }
        return answer


def pull_commands(reference: ImageReference) -> list[dict[str, str]]:
    """`docker`, `podman` and `apptainer` pull lines, pinned by digest when there is one."""
    full = str(reference)
    return [
        {"tool": "docker", "command": f"docker pull {reference.familiar}"},
        {"tool": "podman", "command": f"podman pull {full}"},
        {"tool": "apptainer", "command": f"apptainer pull docker://{full}"},
    ]


def resolve(
    catalog: Catalog,
    image: str,
    *,
    registry_path: str | None = None,
    registry_id: str | None = None,
) -> Resolution:
    """Parse `image` and find its registry, applying the registry-path rules."""
    chosen = catalog.get(registry_id) if registry_id else None
    text = image
    if registry_path:
        text = _join_registry_path(catalog, image, registry_path)
    elif chosen is not None and split_domain(image)[0] is None:
        if chosen.needs_registry_path:
            raise InvalidRegistryPath(
                f"{chosen.name} needs a registry path: give it (for example "
                f"{chosen.registry_path_example}) or write the image with its host"
            )
        if chosen.fixed_host is not None:
            text = f"{chosen.fixed_host}/{image}"
    reference = parse_reference(text)
    registry = catalog.match(reference.domain)
    if chosen is not None and chosen.id != registry.id:
        raise InvalidInput(
            f"{reference.name} is served by {registry.name} ({registry.id}), not by "
            f"{chosen.name} ({chosen.id}): choose {registry.id} or change the image"
        )
    ecr = parse_ecr_host(reference.domain) if registry.id == "ecr" else None
    return Resolution(
        input=image, reference=reference, registry=registry, ecr=ecr, warnings=_warnings(image)
    )


def describe(
    catalog: Catalog,
    image: str,
    *,
    registry_path: str | None = None,
    registry_id: str | None = None,
) -> tuple[bool, dict[str, object]]:
    """`resolve` as an answer object for the API and CLI: valid or with an `error`."""
    try:
        resolution = resolve(catalog, image, registry_path=registry_path, registry_id=registry_id)
    except InvalidInput as error:
        kind = error.kind if isinstance(error, InvalidReference) else error.code
        return False, {"input": image, "valid": False, "error": error.message, "error_kind": kind}
    return True, resolution.as_dict()


def _join_registry_path(catalog: Catalog, image: str, registry_path: str) -> str:
    registry_path = registry_path.strip().removesuffix("/")
    if "://" in registry_path:
        raise InvalidRegistryPath(
            f"registry path {registry_path!r} must be a host without a scheme, as "
            "312767926603.dkr.ecr.us-west-2.amazonaws.com"
        )
    if not re.fullmatch(DOMAIN_AND_PORT, registry_path):
        raise InvalidRegistryPath(
            f"registry path {registry_path!r} is not a registry host: give a host name with an "
            "optional :port and nothing else"
        )
    registry = catalog.match(registry_path)
    if not registry.needs_registry_path:
        raise InvalidRegistryPath(
            f"{registry.name} does not take a registry path: leave it out and give the image "
            f"with its host, as {registry_path}/<namespace>/<name>"
        )
    domain, rest = split_domain(image)
    if domain is None:
        return f"{registry_path}/{image}"
    if domain.lower() != registry_path.lower():
        raise InvalidRegistryPath(
            f"the image names host {domain!r} but the registry path is {registry_path!r}: "
            "give the repository alone, or make the two agree"
        )
    return f"{registry_path}/{rest}"


def _warnings(image: str) -> list[str]:
    domain, _ = split_domain(image)
    if domain is not None and domain.lower() != domain and "." not in domain and ":" not in domain:
        return [
            f"{domain!r} is read as a registry host because it has uppercase letters; if you "
            f"meant a Docker Hub namespace, write it in lowercase ({DEFAULT_DOMAIN}/"
            f"{image.lower()})"
        ]
    return []
