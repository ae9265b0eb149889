"""The images a Nextflow pipeline runs, read with groovy-parser (a Groovy 3 grammar for Lark).

Nextflow scripts and configs are Groovy. Each file is parsed into a syntax tree, never run,
and these are read from it:

- the configuration: the pipeline's `nextflow.config` and every file it `includeConfig`s:
  `params` (block or dotted), `docker.registry` / `podman.registry`, and `container` set
  for every process (`process.container`), per `withName:` or `withLabel:` selector, and
  inside `profiles`;
- the scripts: the main script (`manifest.mainScript`, `main.nf` by default) and every
  module it `include`s, transitively: each process's `container` directive, and script
  `params.x = ...` defaults (the configuration's values win, as in Nextflow).

A container is evaluated when its value is known before a run: string literals, GString
interpolation and `+` of known values, `params` set in the configuration or a script, and the
nf-core ternary on `workflow.containerEngine`, recorded as its singularity and docker
alternatives. Names without a registry host get `docker.registry` (or `podman.registry`)
when the configuration sets one. What only a run knows (`task.ext`, an input, a `params` value
that nothing sets) is listed as unevaluable with its file and line.

The grammar is ambiguous about operator precedence (Earley keeps one of the bracketings), so
an expression is read back as its operands and operators in source order and regrouped with
Groovy's precedence before it is evaluated.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from groovy_parser.parser import create_groovy_parser
from groovy_parser.tokenizer import GroovyRestrictedTokenizer
from lark import Lark, Token, Tree
from lark.exceptions import LarkError
from pygments.util import ClassNotFound

from dockyard.errors import InvalidInput
from dockyard.registries.catalog import Catalog
from dockyard.registries.lru import Recent
from dockyard.workflows.images import FoundImage, found, unevaluable
from dockyard.workflows.repository import inside

MAX_FILES = 300
MAX_FILE_BYTES = 1024 * 1024
#: Earley parsing costs about 5 ms a token on this grammar: a file past this many is refused
#: rather than tying a worker up for minutes (nf-core modules hold a few hundred).
MAX_TOKENS = 20_000
CONFIG = "nextflow.config"
DEFAULT_MAIN = "main.nf"
#: Engines that read the first branch of nf-core's `workflow.containerEngine == 'singularity'`.
SINGULARITY_ENGINES = frozenset({"singularity", "apptainer"})

# Groovy's binary operators, loosest (0) to tightest. `?` `:` and `?:` are the ternaries.
_BINARY = {
    **dict.fromkeys(("OR",), 2),
    **dict.fromkeys(("AND",), 3),
    **dict.fromkeys(("BITOR",), 4),
    **dict.fromkeys(("XOR",), 5),
    **dict.fromkeys(("BITAND",), 6),
    **dict.fromkeys(("REGEX_FIND", "REGEX_MATCH"), 7),
    **dict.fromkeys(("EQUAL", "NOTEQUAL", "IDENTICAL", "NOT_IDENTICAL", "SPACESHIP"), 8),
    **dict.fromkeys(("LE", "GE", "GT", "LT", "IN", "NOT_IN", "AS", "INSTANCEOF"), 9),
    **dict.fromkeys(("LSHIFT", "RANGE_INCLUSIVE", "RANGE_EXCLUSIVE_LEFT"), 10),
    **dict.fromkeys(("ADD", "SUB"), 11),
    **dict.fromkeys(("MUL", "DIV", "MOD"), 12),
    **dict.fromkeys(("POWER",), 13),
}
_TERNARY = 1
_UNARY = frozenset({"NOT", "BITNOT", "ADD", "SUB", "INC", "DEC"})
_ASSIGN = "ASSIGN"
#: Trees that only group their children: an expression is read through them.
_GROUPS = frozenset(
    {
        "expression",
        "command_expression",
        "statement_expression",
        "enhanced_statement_expression",
        "argument_list",
        "first_argument_list_element",
        "argument_list_element",
        "expression_list",
        "expression_list_element",
        "command_argument",
        "postfix_expression",
        "cast_operand_expression",
    }
)
_SPACING = frozenset({"nls", "sep"})


@dataclass(frozen=True)
class NextflowReading:
    """What reading one Nextflow pipeline found."""

    images: list[FoundImage]
    #: Repository paths of every script and config read.
    files: list[str]


# --- expressions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Op:
    token: Token

    @property
    def kind(self) -> str:
        return str(self.token.type)


@dataclass(frozen=True)
class _Node:
    """An expression regrouped with Groovy's precedence."""

    op: str  # "value", a binary operator's token type, "NOT", "TERNARY", "ELVIS"
    parts: tuple[Any, ...]


@dataclass(frozen=True)
class _Written:
    """An expression as the file writes it: its items, its text and its line."""

    items: tuple[Any, ...]
    file: str
    line: int
    text: str


def _kids(tree: Tree[Any]) -> list[Any]:
    return [c for c in tree.children if not (isinstance(c, Tree) and c.data in _SPACING)]


def _down(node: Any) -> Any:
    """The node below chains of single children."""
    while isinstance(node, Tree):
        kids = _kids(node)
        if len(kids) != 1:
            return node
        node = kids[0]
    return node


def _items(node: Any) -> list[Any]:
    """An expression as its operands (trees) and operators (`_Op`), in source order."""
    if isinstance(node, Token):
        return [node if _is_operand(node) else _Op(node)]
    if node.data not in _GROUPS:
        return [node]
    out: list[Any] = []
    for kid in _kids(node):
        out.extend(_items(kid))
    return out


def _is_operand(token: Token) -> bool:
    return token.type.endswith(("IDENTIFIER", "LITERAL")) or token.type in ("NULL", "THIS")


def _group(items: Sequence[Any]) -> _Node | None:
    """Regroup `items` with Groovy's precedence; None for what this reading does not model."""
    position = 0

    def unary() -> _Node | None:
        nonlocal position
        if position >= len(items):
            return None
        item = items[position]
        position += 1
        if isinstance(item, _Op):
            if item.kind not in _UNARY:
                return None
            operand = unary()
            return None if operand is None else _Node(item.kind, (operand,))
        return _Node("value", (item,))

    def binary(floor: int) -> _Node | None:
        nonlocal position
        left = unary()
        while left is not None and position < len(items):
            item = items[position]
            if not isinstance(item, _Op):
                return None  # two operands side by side: a command, not an expression
            if item.kind in ("QUESTION", "ELVIS"):
                if floor > _TERNARY:
                    break
                position += 1
                if item.kind == "ELVIS":
                    right = binary(_TERNARY)
                    left = None if right is None else _Node("ELVIS", (left, right))
                    continue
                then = binary(_TERNARY)
                if then is None or position >= len(items) or not _is(items[position], "COLON"):
                    return None
                position += 1
                otherwise = binary(_TERNARY)
                left = None if otherwise is None else _Node("TERNARY", (left, then, otherwise))
                continue
            level = _BINARY.get(item.kind)
            if level is None or level < floor:
                break
            position += 1
            right = binary(level + 1)
            left = None if right is None else _Node(item.kind, (left, right))
        return left

    grouped = binary(0)
    return grouped if position == len(items) else None


def _is(item: Any, kind: str) -> bool:
    return isinstance(item, _Op) and item.kind == kind


def _path(node: Any) -> tuple[str, ...] | None:
    """`a.b.c` as ("a", "b", "c"); None for anything but a dotted name."""
    node = _down(node)
    if isinstance(node, Token):
        return (_text(node),) if node.type.endswith("IDENTIFIER") else None
    if node.data in ("identifier", "command_primary", "primary"):
        return _path(_kids(node)[0]) if _kids(node) else None
    if node.data not in ("path_expression", "gstring_path"):
        return None
    names: list[str] = []
    for kid in _kids(node):
        if isinstance(kid, Token):
            if kid.type == "DOT":
                continue
            if not kid.type.endswith("IDENTIFIER"):
                return None
            names.append(_text(kid))
            continue
        if kid.data == "path_element":
            parts = [p for p in _kids(kid) if not _is_token(p, "DOT")]
            if len(parts) != 1:
                return None
            inner = _path(parts[0])
            if inner is None:
                return None
            names.extend(inner)
            continue
        inner = _path(kid)
        if inner is None:
            return None
        names.extend(inner)
    return tuple(names) or None


def _is_token(node: Any, kind: str) -> bool:
    return isinstance(node, Token) and node.type == kind


def _text(token: Token) -> str:
    value = token.value
    return str(value[1] if isinstance(value, tuple) else value)


def _tokens(node: Any) -> Iterator[Token]:
    if isinstance(node, Token):
        yield node
    elif isinstance(node, _Op):
        yield node.token
    elif isinstance(node, Tree):
        for kid in node.children:
            yield from _tokens(kid)


# --- values -----------------------------------------------------------------------------------

#: An evaluated value: its alternatives, each the engine that uses it (None: every engine).
Value = tuple[tuple[str | None, str], ...]


@dataclass
class _Evaluation:
    """Evaluates expressions against the pipeline's params; says why when it cannot."""

    params: dict[str, _Written]
    known: dict[str, Value | None] = field(default_factory=dict)
    reading: set[str] = field(default_factory=set)
    why: str | None = None

    def written(self, written: _Written) -> Value | None:
        node = _group(written.items)
        if node is None:
            return self._unknown("Nextflow computes it when the workflow runs")
        return self.node(node)

    def node(self, node: _Node) -> Value | None:
        if node.op == "value":
            return self.operand(node.parts[0])
        if node.op == "ADD":
            left, right = self.node(node.parts[0]), self.node(node.parts[1])
            return None if left is None or right is None else _joined(left, right)
        if node.op == "TERNARY":
            return self.ternary(*node.parts)
        return self._unknown("Nextflow computes it when the workflow runs")

    def ternary(self, condition: _Node, then: _Node, otherwise: _Node) -> Value | None:
        engine = _engine_test(condition)
        if engine is None:
            return self._unknown("it is chosen when the workflow runs")
        tested, equal = engine
        other = "docker" if tested != "docker" else "singularity"
        first, second = (tested, other) if equal else (other, tested)
        yes, no = self.node(then), self.node(otherwise)
        if yes is None or no is None:
            return None
        return tuple((e or first, v) for e, v in yes) + tuple((e or second, v) for e, v in no)

    def operand(self, node: Any) -> Value | None:
        node = _down(node)
        if isinstance(node, Token):
            if node.type == "STRING_LITERAL":
                return ((None, _text(node)),)
            return self._unknown("Nextflow computes it when the workflow runs")
        if node.data in ("gstring", "static_gstring"):
            return self.gstring(node)
        if node.data in ("par_expression", "expression_in_par"):
            inner = [k for k in _kids(node) if not isinstance(k, Token)]
            return self.written(_Written(tuple(_items(inner[0])), "", 0, "")) if inner else None
        if node.data in ("closure", "block"):
            statements = _statements(node)
            if len(statements) == 1:
                return self.written(_Written(tuple(_items(_down(statements[0]))), "", 0, ""))
        path = _path(node)
        if path is not None and len(path) >= 2 and path[0] == "params":
            return self.param(".".join(path[1:]))
        if path is not None and path[:2] == ("task", "ext"):
            return self._unknown(f"{'.'.join(path)} is set per process when the workflow runs")
        return self._unknown("Nextflow computes it when the workflow runs")

    def gstring(self, node: Tree[Any]) -> Value | None:
        value: Value = ((None, ""),)
        for kid in _kids(node):
            if isinstance(kid, Token):
                if kid.type == "STRING_LITERAL_PART":
                    value = _joined(value, ((None, _text(kid)),))
                continue
            if kid.data == "static_gstring":
                part = self.gstring(kid)
            elif kid.data == "gstring_value":
                part = self.operand(_kids(kid)[0])
            else:
                part = self.operand(kid)
            if part is None:
                return None
            value = _joined(value, part)
        return value

    def param(self, name: str) -> Value | None:
        if name in self.known:
            value = self.known[name]
            return value if value is not None else self._unknown(f"params.{name} is unknown")
        written = self.params.get(name)
        if written is None:
            return self._unknown(
                f"params.{name} has no value in the configuration: it is given at launch"
            )
        if name in self.reading:
            return self._unknown(f"params.{name} is defined in terms of itself")
        self.reading.add(name)
        value = self.written(written)
        self.reading.discard(name)
        self.known[name] = value
        return value

    def _unknown(self, why: str) -> Value | None:
        """None (not known before a run), keeping the first reason for the listing."""
        self.why = self.why or why
        return None


def _joined(left: Value, right: Value) -> Value:
    out: list[tuple[str | None, str]] = []
    for engine_a, a in left:
        for engine_b, b in right:
            if engine_a and engine_b and engine_a != engine_b:
                continue
            out.append((engine_a or engine_b, a + b))
    return tuple(out)


def _engine_test(condition: _Node) -> tuple[str, bool] | None:
    """`workflow.containerEngine == 'x'` (alone or in an `&&`): ("x", True); `!=`: False."""
    if condition.op == "AND":
        return _engine_test(condition.parts[0]) or _engine_test(condition.parts[1])
    if condition.op not in ("EQUAL", "NOTEQUAL"):
        return None
    sides = [p.parts[0] for p in condition.parts if p.op == "value"]
    if len(sides) != 2:
        return None
    paths = [_path(s) for s in sides]
    literals = [_down(s) for s in sides]
    for path, other in ((paths[0], literals[1]), (paths[1], literals[0])):
        if path == ("workflow", "containerEngine") and _is_token(other, "STRING_LITERAL"):
            return _text(other), condition.op == "EQUAL"
    return None


# --- statements -------------------------------------------------------------------------------


def _statements(block: Tree[Any]) -> list[Any]:
    """The statements of a file or a closure's block, each as its `statement` tree."""
    out: list[Any] = []
    stack = [block]
    while stack:
        node = stack.pop(0)
        for kid in _kids(node):
            if not isinstance(kid, Tree):
                continue
            if kid.data in ("block_statement", "script_statement"):
                statement = _kids(kid)
                if statement:
                    out.append(statement[0])
            elif kid.data in (
                "closure",
                "block",
                "block_statements_opt",
                "block_statements",
                "script_statements",
                "closure_or_lambda_expression",
            ):
                stack.append(kid)
    return out


@dataclass(frozen=True)
class _Statement:
    """One statement as this reading sees it."""

    kind: str  # "assign", "command", "label", "other"
    #: assign: the target's dotted name; command: the command's name; label: the label.
    name: tuple[str, ...] = ()
    #: assign: the value's items; command: the arguments' items.
    items: tuple[Any, ...] = ()
    #: A command's or label's closure (`process { ... }`, `withName: 'X' { ... }`).
    block: Tree[Any] | None = None
    #: What the closure follows: `process ALIGN { }`'s ALIGN, `withName: 'X' { }`'s 'X'.
    subject: tuple[Any, ...] = ()
    line: int = 0


def _statement(node: Any) -> _Statement:
    node = _down(node)
    if not isinstance(node, Tree):
        return _Statement("other")
    kids = _kids(node)
    if node.data == "statement" and len(kids) == 3 and _is_token(kids[1], "COLON"):
        label = _path(kids[0])
        if label is None:
            return _Statement("other")
        subject, block = _split_closure(_items(_down(kids[2])))
        return _Statement("label", label, block=block, subject=subject, line=_line(kids[0]))
    items = _items(node)
    if not items or isinstance(items[0], _Op):
        return _Statement("other")
    for index, item in enumerate(items):
        if _is(item, _ASSIGN):
            target = items[:index]
            name = _path(target[0]) if len(target) == 1 else None
            if name is None:
                return _Statement("other")
            return _Statement("assign", name, tuple(items[index + 1 :]), line=_line(target[0]))
    head = items[0]
    name = _path(head) or _call_name(head)
    if name is None:
        return _Statement("other")
    if _closure(head) is not None:  # `ALIGN { ... }` alone
        return _Statement("command", name, block=_closure(head), line=_line(head))
    subject, block = _split_closure(items[1:])
    return _Statement(
        "command",
        name,
        subject if block is None else (),
        block=block,
        subject=subject if block is not None else (),
        line=_line(head),
    )


def _split_closure(items: Sequence[Any]) -> tuple[tuple[Any, ...], Tree[Any] | None]:
    """Items that end with a closure, as what comes before it and the closure."""
    if not items:
        return (), None
    last = items[-1]
    block = _closure(last)
    if block is None:
        return tuple(items), None
    node = _down(last)
    if isinstance(node, Tree) and node.data == "path_expression":
        return (*items[:-1], _kids(node)[0]), block  # `ALIGN { }`: ALIGN, then its closure
    return tuple(items[:-1]), block


def _call_name(node: Any) -> tuple[str, ...] | None:
    """The name a closure follows (`ALIGN { }`, `'MULTIQC' { }`)."""
    node = _down(node)
    if isinstance(node, Tree) and node.data == "path_expression" and _closure(node) is not None:
        first = next(_tokens(_kids(node)[0]), None)
        if first is not None and (
            first.type == "STRING_LITERAL" or first.type.endswith("IDENTIFIER")
        ):
            return (_text(first),)
    return None


def _closure(node: Any) -> Tree[Any] | None:
    """The closure a command ends with (`{ ... }`), or None."""
    node = _down(node)
    if not isinstance(node, Tree):
        return None
    if node.data in ("closure_or_lambda_expression", "closure", "block"):
        return node
    if node.data == "path_expression":
        last = _kids(node)[-1]
        if isinstance(last, Tree) and last.data == "path_element":
            return _closure(_kids(last)[-1])
    return None


def _line(node: Any) -> int:
    token = next(_tokens(node), None)
    return int(token.line) if token is not None and token.line is not None else 0


# --- files ------------------------------------------------------------------------------------


class _Parser:
    """One Lark parser per process (building it takes a tenth of a second), used one file at a
    time, and the trees of recently read contents (versions of a pipeline share most files)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.lark: Lark | None = None
        self.trees: Recent[str, Tree[Any]] = Recent(256)

    def parse(self, text: str, file: str) -> Tree[Any]:
        key = hashlib.sha256(text.encode()).hexdigest()
        with self.lock:
            tree = self.trees.get(key)
            if tree is not None:
                return tree
            if self.lark is None:
                self.lark = create_groovy_parser()
            try:
                tokens = list(GroovyRestrictedTokenizer().get_tokens(text))
            except (ClassNotFound, ValueError, IndexError) as error:
                raise InvalidInput(f"{file} is not valid Groovy: {error}") from None
            if len(tokens) > MAX_TOKENS:
                raise InvalidInput(
                    f"{file} has {len(tokens):,} tokens; dockyard reads Nextflow files of at "
                    f"most {MAX_TOKENS:,}"
                )
            try:
                tree = self.lark.parse(tokens)
            except LarkError as error:
                raise InvalidInput(f"{file} is not valid Nextflow: {_parse_error(error)}") from None
            self.trees[key] = tree
            return tree


_PARSER = _Parser()


def _parse_error(error: LarkError) -> str:
    token = getattr(error, "token", None)
    if isinstance(token, Token) and token.line is not None:
        return f"unexpected {_text(token)!r} at line {token.line}"
    return str(error).strip().splitlines()[0] if str(error).strip() else "it does not parse"


@dataclass
class _Pipeline:
    base: Path
    catalog: Catalog
    params: dict[str, _Written] = field(default_factory=dict)
    script_params: dict[str, _Written] = field(default_factory=dict)
    registries: dict[str, _Written] = field(default_factory=dict)
    main_script: _Written | None = None
    containers: list[tuple[_Written, str]] = field(default_factory=list)
    read: list[Path] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)

    def file(self, directory: Path, relative: str, what: str) -> tuple[Path, str, Tree[Any]]:
        path = inside(self.base, directory, relative, what)
        if not path.is_file():
            raise InvalidInput(f"the repository has no file {relative}")
        if len(self.read) >= MAX_FILES:
            raise InvalidInput(f"the pipeline reads more than {MAX_FILES} files")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise InvalidInput(f"{relative} is larger than {MAX_FILE_BYTES // 1024} KiB")
        self.read.append(path)
        name = "/" + path.relative_to(self.base).as_posix()
        text = path.read_text(encoding="utf-8", errors="replace")
        self.sources[name] = text
        return path, name, _PARSER.parse(text, name)

    def written(self, items: Sequence[Any], file: str, line: int) -> _Written:
        tokens = [t for item in items for t in _tokens(item)]
        source = self.sources.get(file, "")
        if tokens and tokens[0].start_pos is not None and tokens[-1].end_pos is not None:
            text = source[tokens[0].start_pos : tokens[-1].end_pos]
        else:
            text = " ".join(_text(t) for t in tokens)
        return _Written(tuple(items), file, line or _line(items[0]) if items else line, text)

    # --- configuration ------------------------------------------------------------------------

    def config(self, path: Path, file: str, tree: Tree[Any]) -> None:
        self._config_block(path, file, tree, (), "")

    def _config_block(
        self, path: Path, file: str, block: Tree[Any], scope: tuple[str, ...], where: str
    ) -> None:
        for node in _statements(block):
            statement = _statement(node)
            if statement.kind == "assign":
                self._config_value(file, scope + statement.name, statement, where)
            elif statement.kind == "command" and statement.name == ("includeConfig",):
                self._include_config(path, file, statement)
            elif statement.kind == "command" and statement.block is not None:
                name = scope + statement.name
                inner = where
                if scope == ("profiles",):
                    inner = f"profile {'.'.join(statement.name)}"
                self._config_block(path, file, statement.block, name, inner)
            elif statement.kind == "label" and statement.block is not None:
                selector = self.written(statement.subject, file, statement.line).text
                label = f"{'.'.join(statement.name)}: {selector}"
                self._config_block(path, file, statement.block, scope, label)
            elif (
                statement.kind == "command"
                and statement.name[-1:] == ("container",)
                and "process" in scope
            ):
                self._container(statement.items, file, statement.line, where)

    def _config_value(
        self, file: str, name: tuple[str, ...], statement: _Statement, where: str
    ) -> None:
        written = self.written(statement.items, file, statement.line)
        profile = where.startswith("profile ")
        if name[:1] == ("params",) and len(name) > 1 and not profile:
            self.params[".".join(name[1:])] = written
        elif name in (("docker", "registry"), ("podman", "registry")) and not profile:
            self.registries[name[0]] = written
        elif name in (("manifest", "mainScript"),):
            self.main_script = written
        elif name[-1] == "container" and "process" in name[:-1]:
            self.containers.append((written, where))

    def _include_config(self, path: Path, file: str, statement: _Statement) -> None:
        evaluation = _Evaluation(self.params)
        value = evaluation.written(self.written(statement.items, file, statement.line))
        if value is None or len(value) != 1:
            raise InvalidInput(
                f"{file} line {statement.line}: includeConfig names a file only a run can "
                f"know ({evaluation.why})"
            )
        relative = value[0][1]
        if "://" in relative:
            raise InvalidInput(
                f"{file} line {statement.line}: includeConfig {relative!r} is on the network; "
                "dockyard reads the repository's own files only"
            )
        included, name, tree = self.file(path.parent, relative, "includeConfig")
        if included in self.read[:-1]:
            return
        self.config(included, name, tree)

    def _container(self, items: Sequence[Any], file: str, line: int, where: str) -> None:
        self.containers.append((self.written(items, file, line), where))

    # --- scripts ------------------------------------------------------------------------------

    def script(self, path: Path, file: str, tree: Tree[Any]) -> list[Path]:
        """Read one script; the modules it includes."""
        modules: list[Path] = []
        for node in _statements(tree):
            statement = _statement(node)
            if statement.kind == "assign" and statement.name[:1] == ("params",):
                key = ".".join(statement.name[1:])
                self.script_params.setdefault(
                    key, self.written(statement.items, file, statement.line)
                )
            elif statement.kind == "command" and statement.name == ("include",):
                module = self._module(path, file, statement)
                if module is not None:
                    modules.append(module)
            elif statement.kind == "command" and statement.name == ("process",):
                self._process(file, statement)
        return modules

    def _module(self, path: Path, file: str, statement: _Statement) -> Path | None:
        items = list(statement.items)
        for index, item in enumerate(items):
            if not isinstance(item, _Op) and _path(item) == ("from",) and index + 1 < len(items):
                value = _Evaluation({}).written(
                    self.written(items[index + 1 :], file, statement.line)
                )
                if value is None or len(value) != 1:
                    raise InvalidInput(f"{file} line {statement.line}: include names no file")
                relative = value[0][1]
                if relative.startswith("plugin/"):
                    return None  # a Nextflow plugin's functions, not a file
                candidates = (
                    [relative]
                    if relative.endswith(".nf")
                    else [f"{relative}.nf", f"{relative}/main.nf"]
                )
                for candidate in candidates:
                    module = inside(self.base, path.parent, candidate, "include")
                    if module.is_file():
                        return module
                raise InvalidInput(
                    f"{file} line {statement.line}: include {relative!r}: the repository has "
                    f"no {' or '.join(candidates)} beside {file}"
                )
        return None

    def _process(self, file: str, statement: _Statement) -> None:
        name = _path(statement.subject[-1]) if statement.subject else None
        if statement.block is None or name is None:
            return
        for node in _statements(statement.block):
            directive = _statement(node)
            if directive.kind == "command" and directive.name == ("container",):
                self._container(directive.items, file, directive.line, f"process {name[0]}")


def read_images(root: Path, primary: str, catalog: Catalog) -> NextflowReading:
    """Every image the pipeline whose primary descriptor is at `primary` names.

    `primary` is the pipeline's `nextflow.config` (as Dockstore registers Nextflow) or its main
    script; the other is looked for beside it. `InvalidInput` when a file does not parse or an
    include leaves the repository.
    """
    pipeline = _Pipeline(root.resolve(), catalog)
    relative = primary.lstrip("/")
    directory = (pipeline.base / relative).parent
    if relative.endswith(".config"):
        path, name, tree = pipeline.file(pipeline.base, relative, "the primary descriptor")
        pipeline.config(path, name, tree)
        main = DEFAULT_MAIN
        if pipeline.main_script is not None:
            value = _Evaluation(pipeline.params).written(pipeline.main_script)
            main = value[0][1] if value and len(value) == 1 else DEFAULT_MAIN
        scripts = [inside(pipeline.base, directory, main, "manifest.mainScript")]
        if not scripts[0].is_file():
            raise InvalidInput(f"the repository has no main script {main} beside {name}")
    else:
        config = directory / CONFIG
        if config.is_file():
            path, name, tree = pipeline.file(directory, CONFIG, "the configuration")
            pipeline.config(path, name, tree)
        scripts = [inside(pipeline.base, pipeline.base, relative, "the primary descriptor")]
    seen: set[Path] = set()
    while scripts:
        script = scripts.pop(0)
        if script in seen:
            continue
        seen.add(script)
        path, name, tree = pipeline.file(script.parent, script.name, "include")
        scripts.extend(pipeline.script(path, name, tree))
    return NextflowReading(
        images=_evaluated(pipeline),
        files=sorted("/" + p.relative_to(pipeline.base).as_posix() for p in set(pipeline.read)),
    )


def _evaluated(pipeline: _Pipeline) -> list[FoundImage]:
    params = {**pipeline.script_params, **pipeline.params}
    registry = None
    for name in ("docker", "podman"):
        if name in pipeline.registries:
            setting = _Evaluation(params).written(pipeline.registries[name])
            if setting and len(setting) == 1:
                registry = setting[0][1]
                break
    images: list[FoundImage] = []
    for written, where in pipeline.containers:
        evaluation = _Evaluation(params)
        value = evaluation.written(written)
        if value is None:
            why = evaluation.why or "Nextflow computes it when the workflow runs"
            context = f" ({where})" if where else ""
            images.append(unevaluable(written.text, written.file, written.line, why + context))
            continue
        for engine, text in value:
            if not text.strip():
                continue  # `container ''` or an engine's empty branch: no image
            images.append(
                found(
                    text,
                    written.file,
                    written.line,
                    pipeline.catalog,
                    default_registry=registry if engine in (None, "docker") else None,
                    engine=engine,
                )
            )
    return images
