"""The dependency rule, read from the imports (docs/architecture.md): no cycles between the
packages of callhistory, storage never imports a domain, migrations import no live code, and
handlers never pick tables."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "callhistory"
DOMAINS = {"calllogs", "directory", "ingest", "keys", "retention", "rollups"}


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


def test_the_kit_imports_no_layer() -> None:
    graph = _graph()
    assert graph["kit"] & (DOMAINS | {"db", "http", "rpc", "principal", "app", "cli"}) == set()


def test_migrations_import_no_live_code() -> None:
    for path in (PACKAGE / "migrations" / "versions").glob("*.py"):
        assert _imports(path) == set(), path.name


def test_handlers_do_not_pick_tables() -> None:
    for path in PACKAGE.rglob("handlers.py"):
        assert "callhistory.db.tables" not in _imports(path), path


def _domain_modules(*names: str) -> list[Path]:
    return [
        path
        for domain in sorted(DOMAINS)
        for path in (PACKAGE / domain).glob("*.py")
        if not names or path.name in names
    ]


def test_only_repositories_name_tables() -> None:
    """Services and handlers ask repositories by name (``list_hotlines``, kind="users"), so
    a table can change without them."""
    for path in _domain_modules():
        if path.name != "repository.py":
            assert "callhistory.db.tables" not in _imports(path), path


def test_domains_neither_commit_nor_name_a_dialect() -> None:
    """A request's transactions open and end in ``db.work.unit_of_work`` (or, for a command
    and the service's own upkeep, ``db.engine.transaction``); domains ask a connection for its
    ``db.backend`` traits instead of comparing dialect names."""
    offenders = []
    for path in _domain_modules():
        if path.parent.name == "retention" and path.name == "service.py":
            continue  # a maintenance command: it runs one transaction per partition it drops
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in {"commit", "rollback", "begin"}:
                offenders.append(f"{path.name}:{node.lineno} .{node.attr}")
            if isinstance(node, ast.Constant) and node.value in {"sqlite", "postgresql"}:
                offenders.append(f"{path.parent.name}/{path.name}:{node.lineno} {node.value!r}")
            if (
                isinstance(node, ast.Attribute)
                and node.attr == "name"
                and isinstance(node.value, ast.Attribute)
                and node.value.attr == "dialect"
            ):
                offenders.append(f"{path.parent.name}/{path.name}:{node.lineno} .dialect.name")
    assert offenders == []


def test_domains_meet_through_services() -> None:
    """One domain uses another's service (and schemas), never its repository: the owner of a
    table is the only one that queries it."""
    offenders = []
    for path in _domain_modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom) or not node.module:
                continue
            named = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            for module in named:
                parts = module.split(".")
                foreign = len(parts) >= 3 and parts[1] in DOMAINS - {path.parent.name}
                if foreign and parts[2] == "repository":
                    offenders.append(f"{path.parent.name}/{path.name} → {module}")
    assert offenders == []
