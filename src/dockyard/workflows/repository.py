"""Where a workflow's descriptors may reach: the files of their repository, nothing else."""

from __future__ import annotations

from pathlib import Path

from dockyard.errors import InvalidInput


def inside(base: Path, directory: Path, relative: str, what: str) -> Path:
    """The file `relative` names from `directory`, if it is in the repository at `base`;
    `InvalidInput` naming `what` (an import, an include) when it is on the network or
    outside."""
    if "://" in relative:
        raise InvalidInput(f"{what} {relative!r} is not a file of the repository")
    path = (directory / relative).resolve()
    if not path.is_relative_to(base):
        raise InvalidInput(f"{what} {relative!r} is outside the repository")
    return path
