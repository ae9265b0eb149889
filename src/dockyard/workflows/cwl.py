"""The images a CWL workflow runs, read with cwl-utils (the CWL project's own parser).

Every process is visited: the workflow, each step's `run` (inline, or another file of the
repository), packed `$graph` documents, and what `$import` and `$include` bring in. An image is
a `DockerRequirement`'s `dockerPull` (or its `dockerImageId` when it has no `dockerPull`), in
`requirements` or `hints`. Its line is found in the file's YAML (ruamel, as cwl-utils reads
it). The parser may read only files inside the repository: any other address, on disk or on
the network, is refused and listed as the problem of the workflow.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urldefrag, urlsplit

from cwl_utils.parser import LoadingOptions, load_document_by_uri
from ruamel.yaml.error import YAMLError
from schema_salad.exceptions import SchemaSaladException
from schema_salad.fetcher import DefaultFetcher
from schema_salad.utils import yaml_no_ts

from dockyard.errors import InvalidInput
from dockyard.registries.catalog import Catalog
from dockyard.workflows.images import FoundImage, found, unevaluable

#: The most files one workflow may bring in (steps, imports, includes).
MAX_FILES = 500
#: The largest file read.
MAX_FILE_BYTES = 4 * 1024 * 1024


class OutsideRepository(InvalidInput):
    """A descriptor names a file outside the repository, or a network address."""


class RepositoryFetcher(DefaultFetcher):
    """Reads `file:` URIs inside one directory and nothing else (no network session)."""

    def __init__(self, root: Path) -> None:
        super().__init__({}, None)
        self.root = root.resolve()
        self.read: list[str] = []

    def path_of(self, url: str) -> Path:
        """The file a URI names, if it is inside the repository."""
        parts = urlsplit(url)
        if parts.scheme != "file":
            raise OutsideRepository(f"{url} is not a file of the repository")
        path = Path(unquote(parts.path)).resolve()
        if not path.is_relative_to(self.root):
            raise OutsideRepository(f"{unquote(parts.path)} is outside the repository")
        return path

    def fetch_text(self, url: str, content_types: list[str] | None = None) -> str:
        path = self.path_of(urldefrag(url)[0])
        if len(self.read) >= MAX_FILES:
            raise OutsideRepository(f"the workflow brings in more than {MAX_FILES} files")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise OutsideRepository(f"{self.relative(path)} is larger than 4 MiB")
        self.read.append(str(path))
        return path.read_text(encoding="utf-8")

    def check_exists(self, url: str) -> bool:
        scheme = urlsplit(url).scheme
        if scheme in {"file", "http", "https"}:
            # Outside the repository or on the network: refused, never looked at.
            return self.path_of(urldefrag(url)[0]).is_file()
        return bool(super().check_exists(url))  # not an address: the parser's own answer

    def relative(self, path: Path) -> str:
        """A repository path, `/`-rooted, for messages and records."""
        return "/" + path.relative_to(self.root).as_posix()


@dataclass(frozen=True)
class CwlReading:
    """What reading one CWL workflow found."""

    images: list[FoundImage]
    #: Repository paths of every descriptor the workflow brought in.
    files: list[str]


def read_images(root: Path, primary: str, catalog: Catalog) -> CwlReading:
    """Every image the workflow at `primary` (a repository path) and its steps name.

    `InvalidInput` when the descriptor does not parse or reaches outside the repository.
    """
    fetcher = RepositoryFetcher(root)
    start = fetcher.path_of((root.resolve() / primary.lstrip("/")).as_uri())
    if not start.is_file():
        raise InvalidInput(f"the repository has no file {primary}")
    documents: dict[str, Any] = {}
    pending = [start.as_uri()]
    images: list[FoundImage] = []
    lines = _Lines(fetcher)
    while pending:
        uri = pending.pop(0)
        if uri in documents:
            continue
        fetcher.path_of(urldefrag(uri)[0])
        documents[uri] = _load(uri, fetcher)
        for process, file_uri in _processes(documents[uri], uri):
            for requirement in _docker_requirements(process):
                reference, key = _reference(requirement)
                file_path = fetcher.path_of(urldefrag(file_uri)[0])
                if reference is None:
                    built = _built(requirement)
                    if built is not None:
                        where, line = lines.find(file_path, *built)
                        images.append(
                            unevaluable(
                                f"{built[0]}: {built[1]}"[:200],
                                fetcher.relative(where),
                                line,
                                f"the image is made by `{built[0]}` when the workflow runs",
                            )
                        )
                    continue
                where, line = lines.find(file_path, key, reference)
                images.append(found(reference, fetcher.relative(where), line, catalog))
            for step in getattr(process, "steps", None) or []:
                if isinstance(step.run, str):
                    fetcher.path_of(urldefrag(step.run)[0])  # refused before any read
                    pending.append(step.run)
    return CwlReading(
        images=images, files=sorted({fetcher.relative(Path(p)) for p in fetcher.read})
    )


def _load(uri: str, fetcher: RepositoryFetcher) -> Any:
    try:
        return load_document_by_uri(uri, loadingOptions=LoadingOptions(fetcher=fetcher))
    except OutsideRepository:
        raise
    except (SchemaSaladException, ValueError, YAMLError) as error:
        text = str(error).strip()
        reason = text.splitlines()[-1].strip() if text else type(error).__name__
        where = fetcher.relative(fetcher.path_of(urldefrag(uri)[0]))
        raise InvalidInput(f"{where} is not valid CWL: {reason}") from None


def _processes(document: Any, uri: str) -> Iterator[tuple[Any, str]]:
    """Every process of a loaded document, with the URI of the file it is written in."""
    for process in document if isinstance(document, list) else [document]:
        yield from _walk(process, uri)


def _walk(process: Any, uri: str) -> Iterator[tuple[Any, str]]:
    yield process, _file_of(process, uri)
    for step in getattr(process, "steps", None) or []:
        if not isinstance(step.run, str):
            yield from _walk(step.run, _file_of(step, uri))


def _file_of(item: Any, default: str) -> str:
    identifier = getattr(item, "id", None)
    if isinstance(identifier, str) and identifier.startswith("file:"):
        return urldefrag(identifier)[0]
    return default


def _docker_requirements(process: Any) -> Iterator[Any]:
    for requirement in [*(process.requirements or []), *(process.hints or [])]:
        if getattr(requirement, "class_", None) == "DockerRequirement":
            yield requirement
        elif isinstance(requirement, dict) and requirement.get("class") == "DockerRequirement":
            yield _Hint(requirement)


class _Hint:
    """A hint cwl-utils keeps as plain data (hints may be any class)."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.dockerPull = data.get("dockerPull")
        self.dockerImageId = data.get("dockerImageId")
        self.dockerLoad = data.get("dockerLoad")
        self.dockerFile = data.get("dockerFile")


def _reference(requirement: Any) -> tuple[str | None, str]:
    if isinstance(requirement.dockerPull, str) and requirement.dockerPull.strip():
        return requirement.dockerPull, "dockerPull"
    if isinstance(requirement.dockerImageId, str) and requirement.dockerImageId.strip():
        return requirement.dockerImageId, "dockerImageId"
    return None, "dockerPull"


def _built(requirement: Any) -> tuple[str, str] | None:
    """`dockerFile` or `dockerLoad` (an image built or loaded at run time), with its text."""
    for key in ("dockerFile", "dockerLoad"):
        value = getattr(requirement, key, None)
        if isinstance(value, str) and value.strip():
            return key, value
    return None


class _Lines:
    """Where in a file each `dockerPull` value is written, from the file's YAML."""

    def __init__(self, fetcher: RepositoryFetcher) -> None:
        self.fetcher = fetcher
        self.places: dict[Path, dict[tuple[str, str], list[int]]] = {}
        self.used: dict[tuple[Path, str, str], int] = {}

    def find(self, path: Path, key: str, value: str) -> tuple[Path, int]:
        """The file and line of the next `key: value` not yet handed out: in the process's own
        file, else in a file it brought in (`$import`); line 0 when none holds it."""
        others = [Path(read) for read in self.fetcher.read if Path(read) != path]
        for candidate in [path, *others]:
            lines = self._places(candidate).get((key, value), [])
            used = self.used.get((candidate, key, value), 0)
            if used < len(lines):
                self.used[(candidate, key, value)] = used + 1
                return candidate, lines[used]
        return path, 0

    def _places(self, path: Path) -> dict[tuple[str, str], list[int]]:
        if path not in self.places:
            self.places[path] = {}
            try:
                document = yaml_no_ts().load(path.read_text(encoding="utf-8"))
            except Exception:
                document = None
            for found_key, found_value, line in _entries(document):
                self.places[path].setdefault((found_key, found_value), []).append(line)
        return self.places[path]


def _entries(node: Any) -> Iterator[tuple[str, str, int]]:
    """Every `key: text` pair in a YAML tree, with its 1-based line."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str) and hasattr(node, "lc"):
                yield str(key), value, node.lc.value(key)[0] + 1
            else:
                yield from _entries(value)
    elif isinstance(node, list):
        for item in node:
            yield from _entries(item)
