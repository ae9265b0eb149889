"""One version's descriptors read by the parser of their language: images, files, tools.

Every reader takes the repository's files as a directory (a commit written out by
`GitReader.export`) and the primary descriptor's path, follows imports inside it, and
refuses what leaves it. Readers are synchronous and some run an event loop of their own
(miniwdl): call `read` from a thread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from dockyard.catalog.rules import DescriptorType
from dockyard.registries.catalog import Catalog
from dockyard.workflows import cwl, galaxy, nextflow, snakemake, wdl
from dockyard.workflows.galaxy import GalaxyTool
from dockyard.workflows.images import FoundImage


@dataclass(frozen=True)
class Reading:
    """What one version's descriptors name."""

    images: list[FoundImage]
    #: Repository paths of every descriptor read, the primary one included.
    files: list[str]
    #: Galaxy's tool steps (a `.ga` file names tools, not images).
    tools: list[GalaxyTool] = field(default_factory=list)


class _Found(Protocol):
    @property
    def images(self) -> list[FoundImage]: ...

    @property
    def files(self) -> list[str]: ...


_READERS: dict[DescriptorType, Callable[[Path, str, Catalog], _Found]] = {
    DescriptorType.CWL: cwl.read_images,
    DescriptorType.WDL: wdl.read_images,
    DescriptorType.NFL: nextflow.read_images,
    DescriptorType.SMK: snakemake.read_images,
}


def read(root: Path, kind: DescriptorType, primary: str, catalog: Catalog) -> Reading:
    """Read the workflow at `primary`; `InvalidInput` says what is wrong with it."""
    if kind is DescriptorType.GALAXY:
        return Reading(images=[], files=[primary], tools=galaxy.read_tools(root, primary))
    found = _READERS[kind](root, primary, catalog)
    return Reading(images=list(found.images), files=list(found.files))
