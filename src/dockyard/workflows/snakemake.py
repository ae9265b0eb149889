"""The images a Snakemake workflow runs, read with snakefmt's Snakefile parser.

snakefmt (the Snakemake project's formatter) tokenizes a Snakefile into its directives and
their parameters without running it. The images are the global `container:` and
`containerized:` directives and each rule's `container:`, in the Snakefile and in every file
it `include:`s; each is given with the line of its directive. A parameter written as a string
(or string literals joined with `+`) is resolved, read by Python's `ast`; one computed when the
workflow runs (`config["image"]`, a function) is listed as unevaluable. The workflow's code is
never executed, and includes may name only files of the repository.
"""

from __future__ import annotations

import ast
import io
import tokenize
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from snakefmt.exceptions import (
    EmptyContextError,
    InvalidParameter,
    InvalidParameterSyntax,
    InvalidPython,
    NoParametersError,
    TooManyParameters,
    UnsupportedSyntax,
)
from snakefmt.parser.parser import Parser, Snakefile

from dockyard.errors import InvalidInput
from dockyard.registries.catalog import Catalog
from dockyard.workflows.images import FoundImage, found, unevaluable
from dockyard.workflows.repository import inside

MAX_FILES = 200
MAX_FILE_BYTES = 4 * 1024 * 1024
IMAGE_DIRECTIVES = frozenset({"container", "containerized"})
#: What snakefmt's parser raises for a file that is not a Snakefile.
NOT_A_SNAKEFILE = (
    EmptyContextError,
    InvalidParameter,
    InvalidParameterSyntax,
    InvalidPython,
    NoParametersError,
    TooManyParameters,
    UnsupportedSyntax,
    tokenize.TokenError,
    SyntaxError,
)


@dataclass(frozen=True)
class SnakemakeReading:
    """What reading one Snakemake workflow found."""

    images: list[FoundImage]
    files: list[str]


@dataclass(frozen=True)
class _Directive:
    keyword: str
    #: The parameter as the Snakefile writes it (Python source).
    value: str
    line: int
    #: "rule align", or None for a global directive.
    rule: str | None


class _Directives(Parser):  # type: ignore[misc]  # snakefmt ships no type information
    """snakefmt's parser, keeping each directive's parameter instead of formatting it."""

    def __init__(self, text: str) -> None:
        self.found: list[_Directive] = []
        super().__init__(Snakefile(io.StringIO(text)))

    def process_keyword_param(self, param_context: Any, in_global_context: bool) -> None:
        context = self.context_stack[-1].syntax.keyword_line if self.context_stack else None
        rule = None if in_global_context else context
        for parameter in param_context.all_params:
            self.found.append(
                _Directive(param_context.keyword_name, parameter.value, parameter.line_nb, rule)
            )

    def process_keyword_context(self, in_global_context: bool) -> None:
        """Rules and other blocks: their parameters come through `process_keyword_param`."""

    def post_process_keyword(self) -> None:
        """Nothing is written back."""

    def flush_buffer(
        self,
        from_python: bool = False,
        final_flush: bool = False,
        in_global_context: bool = False,
        exiting_keywords: bool = False,
    ) -> None:
        self.buffer = ""  # plain Python between directives names no image here

    def flush_fmt_off_region(self, verbatim: str) -> None:
        """Regions kept from formatting are plain Python to this reading."""

    def flush_sort_signal(self, verbatim: str) -> None:
        """Sorting directives means nothing to this reading."""


@dataclass
class _Reading:
    base: Path
    catalog: Catalog
    images: list[FoundImage] = field(default_factory=list)
    read: list[Path] = field(default_factory=list)


def read_images(root: Path, primary: str, catalog: Catalog) -> SnakemakeReading:
    """Every image the Snakefile at `primary` (a repository path) and its includes name."""
    reading = _Reading(root.resolve(), catalog)
    pending = [_inside(reading.base, reading.base, primary.lstrip("/"), primary)]
    while pending:
        path = pending.pop(0)
        if path in reading.read:
            continue
        if len(reading.read) >= MAX_FILES:
            raise InvalidInput(f"the workflow includes more than {MAX_FILES} files")
        reading.read.append(path)
        file = "/" + path.relative_to(reading.base).as_posix()
        for directive in _directives(path, file):
            if directive.keyword in IMAGE_DIRECTIVES:
                reading.images.append(_image(directive, file, catalog))
            elif directive.keyword == "include" and directive.rule is None:
                included = _literal(directive.value)
                if isinstance(included, str):
                    pending.append(_inside(reading.base, path.parent, included, included))
    files = sorted("/" + p.relative_to(reading.base).as_posix() for p in reading.read)
    return SnakemakeReading(images=reading.images, files=files)


def _inside(base: Path, directory: Path, relative: str, written: str) -> Path:
    path = inside(base, directory, relative, "include")
    if not path.is_file():
        raise InvalidInput(f"the repository has no file {written}")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise InvalidInput(f"{written} is larger than 4 MiB")
    return path


def _directives(path: Path, file: str) -> list[_Directive]:
    try:
        return list(_Directives(path.read_text(encoding="utf-8")).found)
    except NOT_A_SNAKEFILE as error:
        text = str(error).strip()
        reason = text.splitlines()[0] if text else "it does not parse"
        raise InvalidInput(f"{file} is not a valid Snakefile: {reason}") from None


def _image(directive: _Directive, file: str, catalog: Catalog) -> FoundImage:
    where = directive.rule or f"the global `{directive.keyword}:`"
    written = directive.value.strip()
    value = _literal(written)
    if not isinstance(value, str):
        return unevaluable(written, file, directive.line, f"{where} computes it when it runs")
    return found(value, file, directive.line, catalog)


def _literal(text: str) -> Any:
    """A string written literally (literals joined with `+` too); None otherwise."""
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        return None
    return _value(node)


def _value(node: ast.expr) -> Any:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _value(node.left), _value(node.right)
        return left + right if isinstance(left, str) and isinstance(right, str) else None
    try:
        return ast.literal_eval(node)
    except ValueError:
        return None
