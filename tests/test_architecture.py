"""The dependency rule, read from the imports (docs/architecture.md): no cycles between the
packages of callhistory, storage never imports a domain, migrations import no live code, and
handlers never pick tables."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "callhistory"
DOMAINS = {"calllogs", "directory", "ingest", "keys", "retention"}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name == "callhistory" or name.startswith("callhistory.")}


def _unit(module: str) -> str:
    """The package (or top-level module) a module belongs to: ``callhistory.calllogs.query``
    → ``calllogs``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        source = _unit(".".join(relative.parts))
        if source == "migrations":
            continue
        graph[source] |= {_unit(m) for m in _imports(path)} - {source, ""}
    return graph


def test_no_cycles_between_packages() -> None:
    graph = _graph()
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        for target in sorted(graph.get(node, ())):
            if target in path:
                cycles.append([*path[path.index(target) :], target])
            elif len(path) < 12:
                visit(target, [*path, target])

    for start in sorted(graph):
        visit(start, [start])
    assert cycles == []


def test_storage_imports_no_domain_and_no_transport() -> None:
    graph = _graph()
    assert graph["db"] & (DOMAINS | {"http", "rpc", "app", "cli"}) == set()


def test_migrations_import_no_live_code() -> None:
    for path in (PACKAGE / "migrations" / "versions").glob("*.py"):
        assert _imports(path) == set(), path.name


def test_handlers_do_not_pick_tables() -> None:
    for path in PACKAGE.rglob("handlers.py"):
        assert "callhistory.db.tables" not in _imports(path), path
