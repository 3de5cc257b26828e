"""Import hygiene: a light package root, and the layering of harness modules.

``import harness`` (and the report, the comparison, the CLI module) must not load
torch: torch costs seconds and is needed only once a layer runs. Every import a harness
module can run, those inside functions included, must keep to the floors stated in
``harness/__init__.py`` (none climbs to a higher floor) and form no cycle; no harness
module imports the built-in layers package (which imports ``harness``): the registry
loads it by name when asked for layers.
"""

from __future__ import annotations

import ast
import fnmatch
import importlib
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import harness

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

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


def _last_line_of_fresh_python(code: str, *args: str) -> str:
    """The last line ``code`` prints in a fresh interpreter (``python -c code *args``,
    from the repository root), which must exit 0."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT.parent,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


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
    result = json.loads(_last_line_of_fresh_python(_PROBE, statement))
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


# -- the import graph and the layering ----------------------------------------------------


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


def _is_import_module(node: ast.AST) -> bool:
    """``importlib.import_module("name")`` (or ``import_module("name")``), a literal name."""
    if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)):
        return False
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return name == "import_module" and isinstance(node.args[0].value, str)


def _imports(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom | ast.Call]:
    """Every import a module can run: import statements anywhere (module level, inside
    functions, classes, ``try`` and ``with``) and ``importlib.import_module("literal")``
    calls; not those under ``if TYPE_CHECKING:`` (its ``else:`` branch does run)."""
    if isinstance(node, ast.If) and _is_type_checking(node.test):
        for child in node.orelse:
            yield from _imports(child)
        return
    if isinstance(node, ast.Import | ast.ImportFrom) or _is_import_module(node):
        yield node
    for child in ast.iter_child_nodes(node):
        yield from _imports(child)


def _imported(
    node: ast.Import | ast.ImportFrom | ast.Call, module: str, known: set[str]
) -> list[str]:
    """The modules an import imports: ``from pkg import sub`` names the submodule
    ``pkg.sub`` when there is one, else ``pkg`` itself."""
    if isinstance(node, ast.Call):
        first = node.args[0]
        assert isinstance(first, ast.Constant)
        return [str(first.value)]
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
    """module -> {imported harness module -> 'file:line'}, for every import a harness
    module can run. Importing ``a.b.c`` runs ``a.b`` too (an edge, unless it is the
    importer's own package, which is loaded first anyway); the package root's public
    names (``harness._LAZY``) are edges from ``harness`` to the modules they load."""
    sources = _sources()
    known = set(sources)
    graph: dict[str, dict[str, str]] = {}
    for module, path in sources.items():
        edges: dict[str, str] = {}
        for node in _imports(ast.parse(path.read_text(), str(path))):
            where = f"{path.relative_to(ROOT.parent)}:{node.lineno}"
            for target in _imported(node, module, known):
                parts = target.split(".")
                for n in range(1, len(parts) + 1):
                    name = ".".join(parts[:n])
                    own_package = module.startswith(name + ".")
                    if name in known and name != module and not own_package:
                        edges.setdefault(name, where)
        graph[module] = edges
    for home in harness._LAZY.values():
        graph["harness"].setdefault(home, "harness/__init__.py:_LAZY")
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


def _floors(doc: str) -> list[tuple[str, list[str]]]:
    """The floors the package docstring declares, top first: (name, module patterns).
    The block follows a line ``.. floors``; a line starting with a name opens a floor,
    a line starting with a module continues the one above."""
    lines = doc.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(".. floors"))
    floors: list[tuple[str, list[str]]] = []
    for line in lines[start + 1 :]:
        if line and not line[0].isspace():
            break
        words = line.split()
        if not words:
            continue
        if words[0].startswith("harness"):
            floors[-1][1].extend(words)
        else:
            floors.append((words[0], words[1:]))
    return floors


def _floor_of(floors: list[tuple[str, list[str]]]) -> Callable[[str], list[int]]:
    """module -> the levels (0 = ground) of the floors whose patterns match it."""

    def levels(module: str) -> list[int]:
        return [
            len(floors) - 1 - i
            for i, (_, patterns) in enumerate(floors)
            if any(fnmatch.fnmatchcase(module, p) for p in patterns)
        ]

    return levels


def test_the_graph_sees_every_import_a_module_can_run() -> None:
    graph = _graph()
    assert set(graph["harness"]) == {
        "harness.errors",
        "harness.layer",
        "harness.results",
        "harness.runner",
    }  # errors at import; the rest when a public name is first used
    assert {"harness.errors", "harness.points"} <= set(graph["harness.layer"])
    assert "harness.forms" in graph["harness.capabilities"]  # inside a function
    assert "harness.rebuild" in graph["harness.report._data"]  # likewise

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

    tree = ast.parse(
        "import a\n"
        "if TYPE_CHECKING:\n    import b\nelse:\n    import c\n"
        "try:\n    import d\nexcept ImportError:\n    import e\n"
        "def f():\n    import g\n    if typing.TYPE_CHECKING:\n        import h\n"
        "class C:\n    def m(self):\n        from i import j\n"
        "k = importlib.import_module('k')\nl = import_module(name)\n"
    )
    found = [_imported(n, "x", set())[0] for n in _imports(tree)]
    assert sorted(found) == ["a", "c", "d", "e", "g", "i", "k"]
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
    assert not lines, "imports (those inside functions too) form cycles:\n" + "\n".join(lines)


def _misplaced(graph: dict[str, dict[str, str]], floors: list[tuple[str, list[str]]]) -> list[str]:
    """What breaks the layering: a module on no floor or on two, an import that climbs."""
    levels = _floor_of(floors)
    names = [name for name, _ in reversed(floors)]
    found = [f"{m} is on {len(levels(m))} floors" for m in graph if len(levels(m)) != 1]
    if found:
        return found
    return [
        f"{source} ({names[levels(source)[0]]}) imports {target} "
        f"({names[levels(target)[0]]}) at {where}"
        for source, edges in graph.items()
        for target, where in edges.items()
        if levels(target)[0] > levels(source)[0]
    ]


def test_every_module_is_on_one_floor_and_imports_nothing_above_it() -> None:
    assert harness.__doc__ is not None
    floors = _floors(harness.__doc__)
    assert [name for name, _ in floors][-1] == "ground"
    problems = _misplaced(_graph(), floors)
    assert not problems, (
        "the layering stated in harness/__init__.py is broken (every module on one "
        "floor; imports, those inside functions too, go to the same floor or lower):\n  "
        + "\n  ".join(problems)
    )


def test_the_floors_reader_and_checker_can_fail() -> None:
    doc = (
        "x\n\n.. floors\n\n    top     harness.b harness.c*\n            harness.d\n"
        "    ground  harness harness.e\n\nafter: not a floor\n    harness.z\n"
    )
    floors = _floors(doc)
    assert floors == [
        ("top", ["harness.b", "harness.c*", "harness.d"]),
        ("ground", ["harness", "harness.e"]),
    ]
    levels = _floor_of(floors)
    modules = ("harness.b", "harness.cx", "harness.d", "harness", "harness.e", "harness.f")
    assert [levels(m) for m in modules] == [[1], [1], [1], [0], [0], []]
    assert _misplaced({"harness.b": {"harness.e": "b.py:1"}, "harness.e": {}}, floors) == []
    assert _misplaced({"harness.e": {"harness.b": "e.py:3"}, "harness.b": {}}, floors) == [
        "harness.e (ground) imports harness.b (top) at e.py:3"
    ]
    assert _misplaced({"harness.f": {}}, floors) == ["harness.f is on 0 floors"]


def _builtin_layers_package() -> str:
    """The built-in layers' top-level package, from the ``builtin`` entry point in
    pyproject.toml; the registry's ``BUILTIN_LAYERS`` must say the same."""
    project = tomllib.loads((ROOT.parent / "pyproject.toml").read_text())["project"]
    value = project["entry-points"]["harness.layers"]["builtin"]
    tree = ast.parse((ROOT / "registry.py").read_text())
    declared = [
        node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "BUILTIN_LAYERS" for t in node.targets)
        and isinstance(node.value, ast.Constant)
    ]
    assert declared == [value], "harness.registry.BUILTIN_LAYERS differs from the entry point"
    return str(value).partition(":")[0].split(".")[0]


def test_harness_modules_do_not_import_the_builtin_layers() -> None:
    package = _builtin_layers_package()
    offenders = []
    for module, path in _sources().items():
        for node in _imports(ast.parse(path.read_text(), str(path))):
            if any(t.split(".")[0] == package for t in _imported(node, module, set())):
                offenders.append(f"{module} ({path.name}:{node.lineno})")
    assert not offenders, (
        f"the built-in layers package {package!r} imports harness; it is loaded by name "
        "(harness.registry.builtin_layers), not imported by: " + ", ".join(offenders)
    )


def test_a_worker_process_does_not_import_pandas() -> None:
    # A worker writes events and cache entries, never frames: pandas would cost each of
    # a run's worker processes 0.3 s of start-up (2026-11-30, AVX512).
    code = "import sys, harness.worker; print('pandas' in sys.modules)"
    assert _last_line_of_fresh_python(code) == "False"
