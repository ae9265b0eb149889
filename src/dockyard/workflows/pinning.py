"""A frozen version's files with every resolvable image pinned to its digest.

Each image a reading found is rewritten where the descriptor writes it: the reference as
written, at its line (or the next few lines, for a directive written over several), becomes
`reference@sha256:...`; `name:tag` stays readable and the digest decides what is pulled. A
reference that the file does not spell out (built from constants, `params` or string
interpolation) cannot be rewritten in place and is reported as such, with the digest to use.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

from dockyard.errors import Conflict
from dockyard.workflows.models import WorkflowVersion
from dockyard.workflows.services import trs_id

#: How many lines after an image's line the reference may be written on (a Nextflow ternary
#: spans three).
SPAN = 10
_REFERENCE_CHARACTERS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-:/@"
)
MANIFEST = "dockyard-pins.json"


@dataclass(frozen=True)
class Pin:
    """What became of one image: pinned at a line, or why not."""

    file: str
    line: int
    reference: str
    digest: str | None
    pinned: bool
    why_not: str | None = None


@dataclass(frozen=True)
class ImageAt:
    """An image as stored for a version: where it is written and what it resolved to."""

    file: str
    line: int
    reference: str
    image: str | None
    digest: str | None


def pin(files: dict[str, str], images: Iterable[ImageAt]) -> tuple[dict[str, str], list[Pin]]:
    """The files with each image pinned, and what was done for each image.

    `files` maps a path (as stored, no leading slash) to its text.
    """
    lines = {path: text.splitlines(keepends=True) for path, text in files.items()}
    pins: list[Pin] = []
    for image in images:
        pins.append(_pin_one(lines, image))
    return {path: "".join(parts) for path, parts in lines.items()}, pins


def _pin_one(lines: dict[str, list[str]], image: ImageAt) -> Pin:
    def skipped(why: str) -> Pin:
        return Pin(image.file, image.line, image.reference, image.digest, False, why)

    if image.image is None:
        return skipped("it is not a registry image known before a run")
    if image.digest is None:
        return skipped("its registry did not give a digest")
    if "@" in image.reference:
        return Pin(image.file, image.line, image.reference, image.digest, True)
    text = lines.get(image.file.lstrip("/"))
    if text is None:
        return skipped("its file is not among the version's files")
    start = max(image.line - 1, 0)
    for index in range(start, min(start + SPAN, len(text))):
        column = _find(text[index], image.reference)
        if column is not None:
            end = column + len(image.reference)
            text[index] = f"{text[index][:end]}@{image.digest}{text[index][end:]}"
            return Pin(image.file, index + 1, image.reference, image.digest, True)
    return skipped(
        "the file builds the reference from parts (constants, params or interpolation), so it "
        "cannot be rewritten in place; use the digest given here"
    )


def _find(line: str, reference: str) -> int | None:
    """Where `reference` is written whole on `line` (not inside a longer reference)."""
    column = line.find(reference)
    while column != -1:
        before = line[column - 1] if column > 0 else " "
        after = line[column + len(reference)] if column + len(reference) < len(line) else " "
        if before not in _REFERENCE_CHARACTERS and after not in _REFERENCE_CHARACTERS:
            return column
        column = line.find(reference, column + 1)
    return None


def bundle(files: dict[str, str], pins: Sequence[Pin], about: Mapping[str, object]) -> bytes:
    """A zip of the pinned files with `dockyard-pins.json` saying what was pinned."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(files):
            archive.writestr(path, files[path])
        manifest = {**about, "images": [asdict(p) for p in pins]}
        archive.writestr(MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return buffer.getvalue()


def pin_version(version: WorkflowVersion) -> tuple[dict[str, str], list[Pin]]:
    """A frozen version's files pinned; `Conflict` for a version that is not frozen (its
    pins could change under whoever downloads them)."""
    if not version.frozen:
        raise Conflict(
            f"version {version.name!r} is not frozen: freeze it first "
            f"(POST .../versions/{version.name}/freeze), so the pins cannot change under it"
        )
    return pin(
        {f.path: f.content for f in version.files},
        [ImageAt(i.file, i.line, i.reference, i.image, i.digest) for i in version.images],
    )


def version_bundle(version: WorkflowVersion) -> tuple[bytes, str]:
    """A frozen version's pinned bundle and the file name to save it under."""
    files, pins = pin_version(version)
    about = {
        "workflow": trs_id(version.workflow),
        "version": version.name,
        "commit": version.commit,
    }
    return bundle(files, pins, about), bundle_name(version.workflow.repository, version.name)


def bundle_name(repository: str, version: str) -> str:
    """The zip's file name: `{repository}-{version}-pinned.zip`, safe as one path segment."""
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in f"{repository}-{version}")
    return f"{safe}-pinned.zip"
