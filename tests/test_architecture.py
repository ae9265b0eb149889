"""The shape of the code: every package has a place in the layering, imports only point down,
and no module imports itself back through others. docs/architecture.md draws the same layers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import grimp
import pytest

#: Every package and top-level module of dockyard, lowest first. A module may import from its
#: own package and from packages of a lower layer, never from its layer's other packages
#: or from above. Adapters (REST, web, TRS, CLI) are on top; the domains (accounts, the
#: catalogue, git sources, refresh, access) in the middle; the foundation (errors, settings,
#: the database, the registry client) below.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("dockyard", "dockyard.errors", "dockyard.metrics", "dockyard.logs"),
    ("dockyard.settings", "dockyard.egress"),
    ("dockyard.db",),
    ("dockyard.registries",),
    ("dockyard.accounts",),
    # Pure rules sit below every service: a catalogue service checks a git source's settings
    # without depending on git sync.
    ("dockyard.catalog.rules", "dockyard.sources.git"),
    ("dockyard.sources.rules",),
    ("dockyard.catalog",),
    ("dockyard.sources",),
    ("dockyard.workflows",),
    ("dockyard.collections",),
    ("dockyard.refresh", "dockyard.access"),
    ("dockyard.models", "dockyard.db.migrations"),
    ("dockyard.context",),
    ("dockyard.http", "dockyard.boundary", "dockyard.app_errors", "dockyard.observe"),
    ("dockyard.health", "dockyard.api", "dockyard.trs", "dockyard.web"),
    ("dockyard.checks",),
    ("dockyard.app",),
    ("dockyard.cli",),
    ("dockyard.__main__",),
)
#: The packages the domains and the foundation must never import.
ADAPTERS = (
    "dockyard.context",
    "dockyard.http",
    "dockyard.boundary",
    "dockyard.observe",
    "dockyard.app_errors",
    "dockyard.health",
    "dockyard.checks",
    "dockyard.api",
    "dockyard.trs",
    "dockyard.web",
    "dockyard.app",
    "dockyard.cli",
    "dockyard.__main__",
)


def place(module: str) -> tuple[int, str]:
    """The layer and the package (the longest entry of LAYERS) a module belongs to."""
    best: tuple[int, str] | None = None
    for rank, packages in enumerate(LAYERS):
        for package in packages:
            # The root package holds only its own module; every other entry its submodules too.
            inside = module == package or (
                package != "dockyard" and module.startswith(package + ".")
            )
            if inside and (best is None or len(package) > len(best[1])):
                best = (rank, package)
    if best is None:
        raise AssertionError(f"{module} has no place in LAYERS; add its package there")
    return best


def upward_imports(imports: Mapping[str, Iterable[str]]) -> list[str]:
    """Each import of a package in the same or a higher layer, as 'importer -> imported'."""
    wrong = []
    for importer, imported_modules in imports.items():
        rank, package = place(importer)
        for imported in imported_modules:
            their_rank, their_package = place(imported)
            if their_package != package and their_rank >= rank:
                wrong.append(f"{importer} -> {imported}")
    return sorted(wrong)


def cycles(imports: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The groups of modules that import each other, directly or through others (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(root: str) -> None:
        # Iterative, so a deep import chain cannot reach Python's recursion limit.
        work = [(root, iter(sorted(imports.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            module, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(imports.get(child, ())))))
                elif child in on_stack:
                    low[module] = min(low[module], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[module])
            if low[module] == index[module]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == module:
                        break
                if len(group) > 1:
                    found.append(sorted(group))

    for module in sorted(imports):
        if module not in index:
            visit(module)
    return found


@pytest.fixture(scope="module")
def imports() -> dict[str, set[str]]:
    """Every dockyard module and the dockyard modules it imports (TYPE_CHECKING ones too)."""
    graph = grimp.build_graph("dockyard")
    return {
        module: {
            imported
            for imported in graph.find_modules_directly_imported_by(module)
            if imported == "dockyard" or imported.startswith("dockyard.")
        }
        for module in graph.modules
    }


def test_no_module_imports_itself_back_through_others(imports: dict[str, set[str]]) -> None:
    assert cycles(imports) == []


def test_imports_only_point_down_the_layers(imports: dict[str, set[str]]) -> None:
    assert upward_imports(imports) == []


def test_domains_and_the_foundation_never_import_an_adapter(
    imports: dict[str, set[str]],
) -> None:
    below = [module for module in imports if not module.startswith(ADAPTERS)]
    assert below, "the graph has no domain module: the check would pass on anything"
    assert [
        f"{module} -> {imported}"
        for module in below
        for imported in imports[module]
        if imported.startswith(ADAPTERS)
    ] == []


def test_the_checks_catch_what_the_tree_once_had() -> None:
    # settings imported access.mail, whose models reach db, which imports settings; and the
    # access domain imported the HTTP module for its app context.
    once = {
        "dockyard.settings": {"dockyard.access.mail"},
        "dockyard.access.mail": {"dockyard.access.models", "dockyard.settings"},
        "dockyard.access.models": {"dockyard.db"},
        "dockyard.access.decisions": {"dockyard.http"},
        "dockyard.db": {"dockyard.settings"},
        "dockyard.http": set(),
    }
    assert cycles(once) == [
        ["dockyard.access.mail", "dockyard.access.models", "dockyard.db", "dockyard.settings"]
    ]
    assert upward_imports(once) == [
        "dockyard.access.decisions -> dockyard.http",
        "dockyard.settings -> dockyard.access.mail",
    ]


def test_a_module_outside_the_layers_is_named() -> None:
    with pytest.raises(AssertionError, match=r"dockyard\.pipelines\.models has no place"):
        place("dockyard.pipelines.models")
