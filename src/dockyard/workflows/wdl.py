"""The images a WDL workflow runs, read with miniwdl (the reference WDL parser).

Every task of the workflow's document and of every document it imports is read; an image is
a task's `runtime.docker` or `runtime.container` (a string, or an array of strings). The
expression is evaluated when it can be before a run: literals, string interpolation, and the
task's own declarations built from them. A value that depends on an input's default is
evaluated with that default and says a run may pass another; one that depends on an input
without a default is listed as unevaluable. Imports may name only files of the repository.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import WDL
from WDL import Env, Expr, Tree, Value

from dockyard.errors import InvalidInput
from dockyard.registries.catalog import Catalog
from dockyard.workflows.images import FoundImage, found, unevaluable
from dockyard.workflows.repository import inside

#: The most documents one workflow may import, directly or not.
MAX_DOCUMENTS = 200
MAX_FILE_BYTES = 4 * 1024 * 1024
RUNTIME_KEYS = ("docker", "container")


@dataclass(frozen=True)
class WdlReading:
    """What reading one WDL workflow found."""

    images: list[FoundImage]
    #: Repository paths of every document the workflow imports, itself included.
    files: list[str]


def read_images(root: Path, primary: str, catalog: Catalog) -> WdlReading:
    """Every image the tasks of the workflow at `primary` (a repository path) name.

    `InvalidInput` when a document does not parse or an import leaves the repository. It runs
    miniwdl's loader on an event loop of its own: call it from a thread, not from a coroutine.
    """
    base = root.resolve()
    start = (base / primary.lstrip("/")).resolve()
    if not start.is_relative_to(base) or not start.is_file():
        raise InvalidInput(f"the repository has no file {primary}")
    read: list[Path] = []

    async def read_source(
        uri: str, _path: list[str], importer: Tree.Document | None
    ) -> Tree.ReadSourceResult:
        directory = Path(importer.pos.abspath).parent if importer is not None else base
        path = inside(base, directory, uri, "import")
        if len(read) >= MAX_DOCUMENTS:
            raise InvalidInput(f"the workflow imports more than {MAX_DOCUMENTS} documents")
        if not path.is_file():
            raise InvalidInput(f"import {uri!r}: the repository has no such file")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise InvalidInput(f"{_relative(path, base)} is larger than 4 MiB")
        read.append(path)
        return Tree.ReadSourceResult(path.read_text(encoding="utf-8"), str(path))

    try:
        document = asyncio.run(_load(str(start), read_source))
    except WDL.Error.SyntaxError as error:
        raise InvalidInput(f"{_where(error, base)} is not valid WDL: {error}") from None
    except WDL.Error.ImportError as error:
        cause = error.__cause__
        if isinstance(cause, InvalidInput):
            raise InvalidInput(f"{_where(error, base)}: {cause.message}") from None
        raise InvalidInput(f"{_where(error, base)}: {error}") from None
    except (WDL.Error.ValidationError, WDL.Error.MultipleValidationErrors) as error:
        raise InvalidInput(f"{_where(error, base)} is not valid WDL: {error}") from None
    images: list[FoundImage] = []
    for doc in _documents(document):
        file = _relative(Path(doc.pos.abspath), base)
        stdlib = WDL.StdLib.Base(doc.effective_wdl_version)
        for task in doc.tasks:
            keys = [key for key in RUNTIME_KEYS if key in task.runtime]
            if keys:
                constants = _constants(task, stdlib)
            for key in keys:
                images.extend(_images(task, task.runtime[key], file, stdlib, constants, catalog))
    return WdlReading(images=images, files=sorted({_relative(path, base) for path in read}))


async def _load(uri: str, read_source: Any) -> Tree.Document:
    return await WDL.load_async(uri, path=[], read_source=read_source)


def _documents(document: Tree.Document) -> Iterator[Tree.Document]:
    seen: set[str] = set()
    pending = [document]
    while pending:
        doc = pending.pop(0)
        if doc.pos.abspath in seen:
            continue
        seen.add(doc.pos.abspath)
        yield doc
        pending.extend(imported.doc for imported in doc.imports if imported.doc is not None)


def _images(
    task: Tree.Task,
    expression: Expr.Base,
    file: str,
    stdlib: Any,
    constants: tuple[dict[str, Value.Base], set[str]],
    catalog: Catalog,
) -> Iterator[FoundImage]:
    items = expression.items if isinstance(expression, Expr.Array) else [expression]
    known, defaulted = constants
    for item in items:
        line = item.pos.line
        names = _names(item)
        unknown = sorted(names - set(known))
        if unknown:
            why = "it comes from " + ", ".join(f"the input `{name}`" for name in unknown)
            yield unevaluable(str(item), file, line, f"{why} of task {task.name}")
            continue
        try:
            value = item.eval(_env(known, names), stdlib=stdlib)
        except WDL.Error.RuntimeError as error:
            yield unevaluable(str(item), file, line, f"evaluating it failed ({error})")
            continue
        if not isinstance(value, Value.String):
            yield unevaluable(str(item), file, line, "it is not a string")
            continue
        image = found(value.value, file, line, catalog)
        uses_defaults = sorted(defaulted & _depends(names, task))
        if uses_defaults:
            note = (
                "built from the default of "
                + ", ".join(f"`{name}`" for name in uses_defaults)
                + f" (task {task.name}): a run may pass another image"
            )
            image = replace(image, problems=(*image.problems, note))
        yield image


def _constants(task: Tree.Task, stdlib: Any) -> tuple[dict[str, Value.Base], set[str]]:
    """The task's declarations whose values are known before a run, and the inputs among
    them (their defaults, which a caller may replace)."""
    known: dict[str, Value.Base] = {}
    defaulted: set[str] = set()
    inputs = {decl.name for decl in task.inputs or []}
    for decl in [*(task.inputs or []), *task.postinputs]:
        if decl.expr is None:
            continue
        names = _names(decl.expr)
        if not names <= set(known):
            continue
        try:
            known[decl.name] = decl.expr.eval(_env(known, names), stdlib=stdlib)
        except WDL.Error.RuntimeError:
            continue
        if decl.name in inputs:
            defaulted.add(decl.name)
    return known, defaulted


def _depends(names: set[str], task: Tree.Task) -> set[str]:
    """Every declaration `names` reach through the task's declarations."""
    decls = {decl.name: decl for decl in [*(task.inputs or []), *task.postinputs]}
    reached: set[str] = set()
    pending = list(names)
    while pending:
        name = pending.pop()
        if name in reached:
            continue
        reached.add(name)
        decl = decls.get(name)
        if decl is not None and decl.expr is not None:
            pending.extend(_names(decl.expr))
    return reached


def _names(expression: Expr.Base) -> set[str]:
    """The identifiers an expression reads."""
    found_names: set[str] = set()
    pending = [expression]
    while pending:
        node = pending.pop()
        if isinstance(node, Expr.Ident):
            found_names.add(node.name)
        pending.extend(child for child in node.children if isinstance(child, Expr.Base))
    return found_names


def _env(known: dict[str, Value.Base], names: set[str]) -> Env.Bindings[Value.Base]:
    env: Env.Bindings[Value.Base] = Env.Bindings()
    for name in names:
        env = env.bind(name, known[name])
    return env


def _relative(path: Path, base: Path) -> str:
    return "/" + path.resolve().relative_to(base).as_posix()


def _where(error: Exception, base: Path) -> str:
    position = getattr(error, "pos", None)
    if position is None:
        return "the workflow"
    try:
        return f"{_relative(Path(position.abspath), base)} line {position.line}"
    except ValueError:
        return "the workflow"
