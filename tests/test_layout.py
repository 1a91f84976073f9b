"""The package's layout rules: no import cycles among fst's modules, no private names across modules.

Imports are read from the source (``ast``), module-level and function-local alike; imports
under ``if TYPE_CHECKING:`` are left out (they never run). ``python tests/test_layout.py``
prints the graph's cycles and the private names imported across modules.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "fst"


def module_names(package_dir: Path = PACKAGE_DIR) -> dict[str, Path]:
    """``{"fst.hub": path, "fst.video": path/__init__.py, ...}`` for every module of the package."""
    names = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = ["fst", *path.relative_to(package_dir).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _runtime_imports(tree: ast.AST):
    """Every Import / ImportFrom node, except those under ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str | None:
    """The absolute name of ``from <node.module> import ...`` as written in ``module``."""
    if node.level == 0:
        return node.module
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph(package_dir: Path = PACKAGE_DIR):
    """``(edges, private)``: ``edges[module]`` is the set of fst modules it imports; ``private``
    lists ``(module, line, imported)`` for each ``_name`` it takes from another fst module."""
    modules = module_names(package_dir)
    edges: dict[str, set[str]] = {name: set() for name in modules}
    private: list[tuple[str, int, str]] = []
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                edges[name] |= {alias.name for alias in node.names if alias.name in modules}
                continue
            source = _resolve(name, is_package, node)
            if source not in modules:
                continue
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                if submodule in modules:        # from . import hub
                    edges[name].add(submodule)
                    continue
                edges[name].add(source)
                if alias.name.startswith("_") and not alias.name.startswith("__") and source != name:
                    private.append((name, node.lineno, f"{source}.{alias.name}"))
        edges[name].discard(name)
    return edges, private


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_the_reader_sees_function_local_and_relative_imports(tmp_path):
    package = tmp_path / "fst"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("from .a import thing\n")
    (package / "a.py").write_text("def f():\n    from .b import _hidden\n    from . import c\nthing = 1\n")
    (package / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .c import x\n"
                                  "from .a import thing\n")
    (package / "c.py").write_text("")
    (package / "sub" / "__init__.py").write_text("from ..c import y\nfrom .d import z\n")
    (package / "sub" / "d.py").write_text("import fst.a\n")
    edges, private = import_graph(package)
    assert edges["fst"] == {"fst.a"}
    assert edges["fst.a"] == {"fst.b", "fst.c"}
    assert edges["fst.b"] == {"fst.a"}                   # the TYPE_CHECKING import does not count
    assert edges["fst.sub"] == {"fst.c", "fst.sub.d"}
    assert edges["fst.sub.d"] == {"fst.a"}
    assert private == [("fst.a", 2, "fst.b._hidden")]
    assert cycles(edges) == [["fst.a", "fst.b"]]


def test_fst_has_no_import_cycle():
    edges, _ = import_graph()
    assert len(edges) > 20 and "fst.transformer" in edges
    assert cycles(edges) == []


def test_no_private_name_is_imported_from_another_module():
    _, private = import_graph()
    assert private == []


if __name__ == "__main__":
    graph, hidden = import_graph()
    print(f"{len(graph)} modules, {sum(map(len, graph.values()))} import edges")
    print("cycles:", cycles(graph) or "none")
    print("private names imported across modules:", hidden or "none")


def test_no_test_module_imports_conftest():
    """Importing conftest a second time (as ``tests.conftest``) would start a second local Hub
    server and point HF_ENDPOINT at it, away from the one the ``hub`` fixture controls."""
    tests = Path(__file__).resolve().parent
    offenders = [path.name for path in tests.glob("*.py")
                 if re.search(r"^\s*(from\s+(tests\.)?conftest\s+import|import\s+(tests\.)?conftest)",
                              path.read_text(encoding="utf-8"), re.M)]
    assert offenders == []
