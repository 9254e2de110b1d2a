"""The shape of the code, checked: the import graph has no cycle and follows the data's direction, every module
says its purpose and is in README's Layout, and no function grows long without a reason said in a comment."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mailbot"
MAX_FUNCTION_LINES = 60
# An earlier stage never imports a later one: (importer's package, packages it must not import).
FORBIDDEN = (
    ("mailbot.ingest", ("mailbot.notify", "mailbot.reports", "mailbot.web", "mailbot.campaigns")),
    ("mailbot.documents", ("mailbot.ingest", "mailbot.notify", "mailbot.reports", "mailbot.web")),
    ("mailbot.notify", ("mailbot.web",)),
    ("mailbot.reports", ("mailbot.web",)),
)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported(statements: list[ast.stmt], importer: str, is_package: bool) -> set[str]:
    """The names imported when the module is loaded: its top level, also inside if/try (not TYPE_CHECKING)."""
    found: set[str] = set()
    for node in statements:
        if isinstance(node, ast.If) and not _is_type_checking(node.test):
            found |= _imported(node.body + node.orelse, importer, is_package)
        elif isinstance(node, ast.Try):
            handlers = [s for h in node.handlers for s in h.body]
            found |= _imported(node.body + node.orelse + node.finalbody + handlers, importer, is_package)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the importer's package
                package = importer.split(".") if is_package else importer.split(".")[:-1]
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            found |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    return found


@cache
def import_graph() -> dict[str, frozenset[str]]:
    """mailbot's modules and the mailbot modules each one imports at load time."""
    known = modules()
    graph = {}
    for name, path in known.items():
        names = _imported(ast.parse(path.read_text(encoding="utf-8")).body, name, path.name == "__init__.py")
        graph[name] = frozenset(n for n in names if n in known and n != name and not name.startswith(f"{n}."))
    return graph


def test_the_import_graph_has_no_cycle():
    graph, state, cycles = import_graph(), dict.fromkeys(import_graph(), 0), []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph[node]):
            if state[target] == 1:
                cycles.append(" -> ".join([*path[path.index(target) :], target]))
            elif state[target] == 0:
                visit(target, [*path, target])
        state[node] = 2

    for start in sorted(graph):
        if state[start] == 0:
            visit(start, [start])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_no_earlier_stage_imports_a_later_one():
    wrong = [
        f"{importer} imports {target}"
        for importer, targets in import_graph().items()
        for package, banned in FORBIDDEN
        if importer == package or importer.startswith(f"{package}.")
        for target in sorted(targets)
        if any(target == b or target.startswith(f"{b}.") for b in banned)
    ]
    assert not wrong, "\n".join(wrong)


def test_nothing_in_the_library_imports_the_command_line():
    importers = [
        m
        for m, targets in import_graph().items()
        if not m.startswith("mailbot.cli") and any(t == "mailbot.cli" or t.startswith("mailbot.cli.") for t in targets)
    ]
    assert importers == ["mailbot.__main__"]


@pytest.mark.parametrize("name", sorted(modules()))
def test_every_module_says_its_purpose(name):
    assert ast.get_docstring(ast.parse(modules()[name].read_text(encoding="utf-8"))), f"{name} has no docstring"


def readme_layout() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Layout", 1)[1].split("\n## ", 1)[0]
    return section.split("```", 2)[1]


def test_every_module_is_in_the_readme_layout():
    """Named as ``name.py``, or by its bare name on its package's line (``web/  ...: app, auth, routes``)."""
    layout = readme_layout()
    missing = []
    for path in modules().values():
        if path.name in ("__init__.py", "__main__.py"):
            continue
        package = path.parent.relative_to(PACKAGE).as_posix()
        if package == "migrations/versions" and "versions/" in layout:  # the schema's history, not each revision
            continue
        folder = f"{path.parent.name}/"  # a sub-package stands indented under its parent: "    pages/  ..."
        package_line = next((line for line in layout.splitlines() if line.strip().startswith(folder)), "")
        if package != "." and not package_line:
            missing.append(f"{package}/")
            continue
        named = re.search(rf"\b{re.escape(path.name)}\b", layout)
        listed = package != "." and re.search(rf"\b{re.escape(path.stem)}\b", package_line)
        if not (named or listed):
            missing.append(path.relative_to(ROOT).as_posix())
    assert not missing, "not in README's Layout: " + ", ".join(sorted(set(missing)))


def long_functions() -> list[str]:
    """Functions over MAX_FUNCTION_LINES lines without a ``# long: <reason>`` comment in their first lines, in the
    package and in the scripts and benchmarks (everything but the tests)."""
    found = []
    for path in [
        *modules().values(),
        *sorted((ROOT / "bench").rglob("*.py")),
        *sorted((ROOT / "scripts").rglob("*.py")),
    ]:
        lines = path.read_text(encoding="utf-8").splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                head = lines[node.lineno - 1 : node.lineno + 5]
                if length > MAX_FUNCTION_LINES and not any(re.search(r"#\s*long:\s*\S", line) for line in head):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length} lines)")
    return found


def test_no_function_grows_long_without_a_reason():
    assert long_functions() == []
