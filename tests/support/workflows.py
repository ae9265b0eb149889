"""A repository's files written out for the workflow readers to read."""

from __future__ import annotations

from pathlib import Path


def repository(root: Path, files: dict[str, str]) -> Path:
    """`root` holding `files` (repository path -> text); returns `root`."""
    for path, text in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return root
