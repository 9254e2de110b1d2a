"""The web package imports in one direction: no module of mailbot.web imports, even late inside a function, one
that (through others) imports it back; the routes import web.core, never web.app, which assembles them."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import mailbot.web

PACKAGE = "mailbot.web"
ROOT = Path(mailbot.web.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join((PACKAGE, *parts)).removesuffix(".__init__")


def imported(tree: ast.AST, modules: set[str]) -> set[str]:
    """The modules of the package that ``tree`` imports anywhere (``from P import m`` counts as ``P.m`` when m is one)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found & modules


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in ROOT.rglob("*.py")}
    modules = set(paths)
    graph = {name: imported(ast.parse(path.read_text(encoding="utf-8")), modules) for name, path in paths.items()}
    for name, targets in graph.items():  # `from mailbot.web import auth` names the module auth, not the package
        targets -= {t for t in targets if any(u.startswith(t + ".") for u in targets)} | {name}
    return graph


def test_the_web_package_has_no_import_cycle() -> None:
    graph = import_graph()
    assert f"{PACKAGE}.core" in graph[f"{PACKAGE}.app"] and f"{PACKAGE}.pages" in graph[f"{PACKAGE}.app"]
    assert f"{PACKAGE}.access" in graph[f"{PACKAGE}.pages.review"]
    try:
        order = list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        raise AssertionError(f"import cycle in {PACKAGE}: {' -> '.join(exc.args[1])}") from None
    assert len(order) == len(graph)


def test_the_cycle_check_sees_a_late_import() -> None:
    """An import hidden in a function body is an edge too (that is how the old app <-> routes cycle was hidden)."""
    tree = ast.parse("def create_app():\n    from mailbot.web.routes import routes\n")
    assert imported(tree, {f"{PACKAGE}.routes", f"{PACKAGE}.app"}) == {f"{PACKAGE}.routes"}
