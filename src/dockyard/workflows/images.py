"""The container images a workflow's descriptors name, each as written and where, and what it
resolves to: a full reference, the registry that serves it, and what a user should know.

The readers of each language (CWL, WDL, Nextflow, Snakemake, Galaxy) hand every reference they
find to `found`, or to `unevaluable` when the reference is built from something only a run
knows (an input, an environment variable): that one is listed, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass

from dockyard.errors import InvalidReference, InvalidRegistryPath, UnknownRegistry
from dockyard.registries.catalog import GENERIC_REGISTRY, Catalog
from dockyard.registries.reference import DEFAULT_DOMAIN, parse_reference, split_domain

#: How Singularity and Nextflow write an image that lives in a registry.
DOCKER_SCHEME = "docker://"


@dataclass(frozen=True)
class FoundImage:
    """One container image a descriptor names."""

    #: The reference as written (constants evaluated), or the expression that builds it.
    text: str
    file: str
    line: int
    #: The full reference (`host/repository[:tag][@digest]`); None when it cannot be known.
    image: str | None = None
    #: The id of the registry in dockyard's catalog that serves it.
    registry: str | None = None
    #: For a choice made by the engine (Nextflow's `workflow.containerEngine`): which engine
    #: uses this one ("docker", "singularity"); None when every engine does.
    engine: str | None = None
    #: What a user should know: no tag, a moving tag, a private registry, an unknown one.
    problems: tuple[str, ...] = ()

    @property
    def evaluable(self) -> bool:
        """Whether the reference is known without running the workflow."""
        return self.image is not None


def found(
    text: str,
    file: str,
    line: int,
    catalog: Catalog,
    *,
    default_registry: str | None = None,
    engine: str | None = None,
) -> FoundImage:
    """A reference a descriptor writes literally (or as evaluated constants), resolved.

    `default_registry` is the host that names without one get (Nextflow's `docker.registry`);
    without it they are Docker Hub's, as `docker pull` reads them.
    """
    written = text.strip()
    reference_text = written.removeprefix(DOCKER_SCHEME)
    if reference_text.startswith(("http://", "https://", "/", "./", "library://", "shub://")):
        return FoundImage(
            written,
            file,
            line,
            engine=engine,
            problems=(
                "a Singularity image file or another engine's address, not a registry image",
            ),
        )
    if default_registry and split_domain(reference_text)[0] is None:
        reference_text = f"{default_registry.rstrip('/')}/{reference_text}"
    try:
        reference = parse_reference(reference_text)
    except InvalidReference as error:
        return FoundImage(written, file, line, engine=engine, problems=(error.message,))
    problems: list[str] = []
    if reference.digest is None and reference.tag is None:
        problems.append("no tag: engines pull `latest`, which can change under the workflow")
    elif reference.digest is None and reference.tag == "latest":
        problems.append("the `latest` tag can change under the workflow: pin a version")
    try:
        registry = catalog.match(reference.domain)
    except (InvalidRegistryPath, UnknownRegistry) as error:
        problems.append(error.message)
        registry_id = None
    else:
        registry_id = registry.id
        if registry is GENERIC_REGISTRY and reference.domain != DEFAULT_DOMAIN:
            problems.append(f"dockyard does not know the registry {reference.domain}")
        if registry.private_only:
            problems.append(f"{registry.name} holds private images only: pulling needs permission")
    return FoundImage(
        written,
        file,
        line,
        image=str(reference),
        registry=registry_id,
        engine=engine,
        problems=tuple(problems),
    )


def unevaluable(expression: str, file: str, line: int, why: str) -> FoundImage:
    """A reference only a run can know, listed with the reason."""
    return FoundImage(
        expression.strip(), file, line, problems=(f"cannot be evaluated before a run: {why}",)
    )
