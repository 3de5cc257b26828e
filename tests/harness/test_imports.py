"""Import hygiene: a light package root, and no import cycles among harness modules.

``import harness`` (and the report, the comparison, the CLI module) must not load
torch: torch costs seconds and is needed only once a layer runs. The module-level
imports of ``harness/*.py`` and ``harness/report/*.py`` must form no cycle, and none of
them may import the built-in ``layers`` package (which imports ``harness``): the
registry loads it when asked for layers.
"""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import harness

ROOT = Path(harness.__file__).resolve().parent

# Run in a fresh interpreter: records, when torch is first imported, the chain of
# modules (files under the project) whose module-level code asked for it.
_PROBE = r"""
import importlib.abc, json, sys, traceback

chains = []

class Spy(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname == "torch" and not chains:
            frames = [
                f"{f.filename.rsplit('/', 2)[-2]}/{f.filename.rsplit('/', 1)[-1]}:{f.lineno}"
                for f in traceback.extract_stack()
                if "importlib" not in f.filename and "<" not in f.filename
            ]
            chains.append(frames)
        return None

sys.meta_path.insert(0, Spy())
exec(sys.argv[1])
print(json.dumps({"torch": "torch" in sys.modules, "chain": chains[0] if chains else []}))
"""


@pytest.mark.parametrize(
    "statement",
    [
        "import harness",
        "import harness; harness.load; harness.load_results; harness.Results",
        "import harness; harness.ConfigError; dir(harness)",
        "import harness.report, harness.report.compare",
        "import harness.report.tables, harness.report.markdown",
        "import harness.cli",
        "import harness.points, harness.dtypes, harness.errors",
    ],
)
def test_light_imports_do_not_load_torch(statement: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, statement],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT.parent,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    chain = "\n  ".join(result["chain"])
    assert not result["torch"], f"{statement!r} imports torch, through:\n  {chain}"


#: Where each public name of the package root is defined.
HOMES = {
    **dict.fromkeys(
        ("FORMS", "Axis", "AxisValue", "Implementation", "Layer", "Point", "baseline", "native"),
        "harness.layer",
    ),
    **dict.fromkeys(("Results", "load", "load_results"), "harness.results"),
    "run": "harness.runner",
    **dict.fromkeys(
        ("ConfigError", "HarnessError", "InputError", "LayerDefinitionError", "ResultsError"),
        "harness.errors",
    ),
}


def test_the_package_root_lists_and_resolves_its_public_names() -> None:
    assert sorted(HOMES) == sorted(harness.__all__)
    assert set(harness.__all__) <= set(dir(harness))
    for name, home in HOMES.items():
        assert getattr(harness, name) is getattr(importlib.import_module(home), name), name
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        harness.nothing_here  # noqa: B018


def test_star_import_gives_the_public_names() -> None:
    namespace: dict[str, object] = {}
    exec("from harness import *", namespace)
    assert set(harness.__all__) <= set(namespace)


# -- the module-level import graph ------------------------------------------------------


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    files = sorted(ROOT.glob("*.py")) + sorted((ROOT / "report").glob("*.py"))
    return {_module_name(path): path for path in files}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """Import statements run when the module is imported: not those inside functions,
    nor under ``if TYPE_CHECKING:`` (its ``else:`` branch does run)."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                yield from _module_level(node.body)
            yield from _module_level(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody):
                yield from _module_level(block)
            for handler in node.handlers:
                yield from _module_level(handler.body)
        elif isinstance(node, ast.With | ast.ClassDef):
            yield from _module_level(node.body)


def _imported(node: ast.Import | ast.ImportFrom, module: str, known: set[str]) -> list[str]:
    """The modules an import statement imports: ``from pkg import sub`` names the
    submodule ``pkg.sub`` when there is one, else ``pkg`` itself."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = (
            module
            if (ROOT.parent / module.replace(".", "/") / "__init__.py").exists()
            else module.rpartition(".")[0]
        )
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{base}" if base else package
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]


def _graph() -> dict[str, dict[str, str]]:
    """module -> {imported module -> 'file:line'} for harness modules (and ``layers``)."""
    sources = _sources()
    known = set(sources)
    graph: dict[str, dict[str, str]] = {}
    for module, path in sources.items():
        edges: dict[str, str] = {}
        for node in _module_level(ast.parse(path.read_text(), str(path)).body):
            for target in _imported(node, module, known):
                top = target.split(".")[0]
                if target in known or top == "layers":
                    where = f"{path.relative_to(ROOT.parent)}:{node.lineno}"
                    edges.setdefault(target if top != "layers" else "layers", where)
        graph[module] = edges
    return graph


def _cycles(graph: dict[str, dict[str, str]]) -> list[list[str]]:
    """The strongly connected components with a cycle (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, {}):
            if nxt not in graph:
                continue
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1 or node in graph[node]:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_the_imports_it_should() -> None:
    graph = _graph()
    assert set(graph["harness"]) == {"harness.errors"}  # the rest: lazy or TYPE_CHECKING
    assert {"harness.errors", "harness.points"} <= set(graph["harness.layer"])
    assert "layers" not in graph["harness.registry"]  # imported inside a function
    assert "harness.forms" not in graph["harness.capabilities"]  # likewise

    known = {"harness.report", "harness.report.tables", "harness.report.x"}

    def imported(statement: str, module: str = "harness.report.x") -> list[str]:
        node = ast.parse(statement).body[0]
        assert isinstance(node, ast.Import | ast.ImportFrom)
        return _imported(node, module, known)

    assert imported("from harness.report import render_report") == ["harness.report"]
    assert imported("from harness.report import tables") == ["harness.report.tables"]
    assert imported("from . import tables, other") == ["harness.report.tables", "harness.report"]
    assert imported("from .tables import f") == ["harness.report.tables"]
    assert imported("import harness.report.tables") == ["harness.report.tables"]

    body = ast.parse(
        "import a\n"
        "if TYPE_CHECKING:\n    import b\nelse:\n    import c\n"
        "try:\n    import d\nexcept ImportError:\n    import e\n"
        "def f():\n    import g\n"
    ).body
    assert [n.names[0].name for n in _module_level(body)] == ["a", "c", "d", "e"]
    assert _cycles({"a": {"b": ""}, "b": {"a": ""}, "c": {"c": ""}, "d": {}}) == [
        ["a", "b"],
        ["c"],
    ]


def test_harness_modules_import_no_cycle() -> None:
    graph = _graph()
    lines = []
    for component in _cycles(graph):
        lines.append("cycle among " + ", ".join(component) + ":")
        for source in component:
            for target, where in graph[source].items():
                if target in component:
                    lines.append(f"  {source} -> {target}  ({where})")
    assert not lines, "module-level imports form cycles:\n" + "\n".join(lines)


def test_harness_modules_do_not_import_the_builtin_layers_at_module_level() -> None:
    offenders = [
        f"{module} ({edges['layers']})" for module, edges in _graph().items() if "layers" in edges
    ]
    assert not offenders, (
        "the built-in layers package is imported at module level by: " + ", ".join(offenders)
    )
