"""What registries answer about images: manifest media types, a manifest's head, a platform's
image, and the loosely typed fields of their JSON read safely."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
SCHEMA1 = frozenset(
    {
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
    }
)
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
#: The same list on HEAD and GET, or registries answer with different digests.
ACCEPT = ", ".join([OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST])


@dataclass(frozen=True)
class ManifestHead:
    """What HEAD tells of a manifest: its digest, media type and size."""

    digest: str
    media_type: str
    size: int | None = None


@dataclass(frozen=True)
class PlatformImage:
    """One platform's image: the manifest digest and what its config says."""

    digest: str
    os: str | None
    architecture: str | None
    variant: str | None
    size: int | None
    created: datetime | None


def text_of(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def int_of(value: object) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None
