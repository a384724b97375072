"""The project's structural rules, checked on the source files themselves.

* no import cycles between the project's own modules (``RMBG``, ``Preprocess``),
  counting imports made inside functions too: a lazy import hides a cycle from
  Python at import time but not from the reader or the next refactor;
* no module over ``MAX_MODULE_LINES`` lines;
* ``ASPECT_TOLERANCE`` is defined in exactly one module.

The import graph is read with :mod:`ast`, so nothing is imported (and no
TensorFlow is loaded) to check it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: The project's own packages, whose modules the rules cover.
PACKAGES = ("RMBG", "Preprocess")
#: The longest a module may grow before it is split.
MAX_MODULE_LINES = 600


# ---------------------------------------------------------------------------
# Modules and the imports between them
# ---------------------------------------------------------------------------
def find_modules(root: Path, packages=PACKAGES) -> dict[str, Path]:
    """Every module of ``packages`` under ``root``, by dotted name (a package is its ``__init__.py``)."""
    modules = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


@dataclass(frozen=True)
class Import:
    """One import statement of ``source`` that reaches the project module ``target``."""

    source: str
    target: str
    path: Path
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.source} imports {self.target}"


def _owning_module(name: str, modules: dict[str, Path]) -> str | None:
    """``name`` if it is a project module, else the nearest enclosing one (``RMBG.x.f`` -> ``RMBG.x``)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _imported_names(node: ast.Import | ast.ImportFrom, module: str, path: Path) -> list[str]:
    """The dotted names an import statement asks for, relative imports resolved.

    ``from A import b`` asks for ``A.b`` (a module when ``b`` is one, else a
    name inside ``A``, which :func:`_owning_module` maps back to ``A``).
    """
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join(package + ([node.module] if node.module else []))
    return [f"{base}.{alias.name}" if base else alias.name for alias in node.names]


def module_imports(module: str, path: Path, modules: dict[str, Path]) -> list[Import]:
    """Every import of project modules anywhere in ``path`` (functions, classes, ``if`` blocks included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        for name in _imported_names(node, module, path):
            target = _owning_module(name, modules)
            if target is not None:
                found.append(Import(module, target, path, node.lineno))
    return found


def import_graph(root: Path, packages=PACKAGES) -> dict[str, list[Import]]:
    """Each project module and the imports of project modules it makes."""
    modules = find_modules(root, packages)
    return {name: module_imports(name, path, modules) for name, path in modules.items()}


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """Modules reachable from ``start`` by one or more imports."""
    seen: set[str] = set()
    todo = list(graph[start])
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(graph.get(name, ()))
    return seen


def import_cycles(graph: dict[str, list[Import]]) -> list[list[str]]:
    """Groups of modules that import each other (directly or through others), sorted.

    A group is a strongly connected component with more than one module, or a
    single module that imports itself.
    """
    edges = {name: {imp.target for imp in imports} for name, imports in graph.items()}
    reach = {name: _reachable(edges, name) for name in edges}
    cycles, placed = [], set()
    for name in sorted(edges):
        if name in placed or name not in reach[name]:
            continue
        group = sorted({name} | {other for other in reach[name] if name in reach[other]})
        placed.update(group)
        cycles.append(group)
    return cycles


def describe_cycle(group: list[str], graph: dict[str, list[Import]]) -> str:
    """The modules of a cycle and the import lines that close it."""
    members = set(group)
    lines = [f"cycle between {', '.join(group)}:"]
    for name in group:
        lines += [f"    {imp}" for imp in graph[name] if imp.target in members]
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# The checker finds cycles (proven on a synthetic package)
# ---------------------------------------------------------------------------
def write_package(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_checker_finds_a_cycle_hidden_in_functions(tmp_path):
    write_package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "import os\n\ndef f():\n    from pkg.b import g\n    return g()\n",
        "pkg/b.py": "def g():\n    from . import a\n    return a\n",
        "pkg/c.py": "from pkg.a import f\nfrom pkg import b\n",  # imports both, is in no cycle
        "pkg/sub/__init__.py": "from ..c import f\n",
        "pkg/sub/d.py": "class D:\n    def m(self):\n        import pkg.sub.d\n",  # imports itself
    })
    graph = import_graph(tmp_path, ("pkg",))
    assert {imp.target for imp in graph["pkg.a"]} == {"pkg.b"}
    assert {imp.target for imp in graph["pkg.b"]} == {"pkg.a"}  # relative `from . import a`
    assert {imp.target for imp in graph["pkg.c"]} == {"pkg.a", "pkg.b"}
    assert {imp.target for imp in graph["pkg.sub"]} == {"pkg.c"}  # `..` from a package's __init__
    assert import_cycles(graph) == [["pkg.a", "pkg.b"], ["pkg.sub.d"]]
    message = describe_cycle(["pkg.a", "pkg.b"], graph)
    assert "pkg.a, pkg.b" in message
    assert f"{tmp_path / 'pkg' / 'a.py'}:4: pkg.a imports pkg.b" in message
    assert f"{tmp_path / 'pkg' / 'b.py'}:2: pkg.b imports pkg.a" in message


def test_checker_finds_a_cycle_through_three_modules_and_none_in_a_chain(tmp_path):
    write_package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/x.py": "from pkg.y import VALUE\n",
        "pkg/y.py": "from pkg.z import *\nVALUE = 1\n",
        "pkg/z.py": "def late():\n    import pkg.x\n",
        "other/__init__.py": "",
        "other/p.py": "from other import q\nimport pkg.x\n",
        "other/q.py": "import json\n",
    })
    graph = import_graph(tmp_path, ("pkg", "other"))
    assert import_cycles(graph) == [["pkg.x", "pkg.y", "pkg.z"]]
    (tmp_path / "pkg" / "z.py").write_text("import json\n", encoding="utf-8")
    assert import_cycles(import_graph(tmp_path, ("pkg", "other"))) == []


# ---------------------------------------------------------------------------
# The rules, on the project
# ---------------------------------------------------------------------------
def test_the_project_has_modules_to_check():
    modules = find_modules(PROJECT_ROOT)
    assert {"RMBG", "RMBG.removal.pipeline", "RMBG.runtime.engines", "Preprocess"} <= set(modules)
    graph = import_graph(PROJECT_ROOT)
    assert any(imp.target == "RMBG.runtime.engines" for imp in graph["RMBG.removal.pipeline"])  # the graph has edges


def test_no_import_cycles_between_project_modules():
    graph = import_graph(PROJECT_ROOT)
    cycles = import_cycles(graph)
    report = "\n".join(describe_cycle(group, graph) for group in cycles)
    print(report or "no import cycles")
    assert not cycles, f"{len(cycles)} import cycle(s); break each by moving the shared code:\n{report}"


def test_no_module_is_too_long():
    lengths = {
        path.relative_to(PROJECT_ROOT): len(path.read_text(encoding="utf-8").splitlines())
        for path in find_modules(PROJECT_ROOT).values()
    }
    long = {path: count for path, count in sorted(lengths.items()) if count > MAX_MODULE_LINES}
    listing = "\n".join(f"    {path}: {count} lines" for path, count in long.items())
    assert not long, f"modules over {MAX_MODULE_LINES} lines, split them:\n{listing}"


def _top_level_assignments(tree: ast.Module, name: str) -> list[int]:
    """Lines where the module's own namespace assigns ``name`` (inside top-level if/try too)."""
    lines = []
    todo = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            targets = [node.target]
        else:
            targets = []
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            lines.append(node.lineno)
        for field in ("body", "orelse", "finalbody", "handlers"):
            todo.extend(getattr(node, field, []))
    return sorted(lines)


def test_aspect_tolerance_has_one_definition():
    definitions = []
    for path in find_modules(PROJECT_ROOT).values():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        lines = _top_level_assignments(tree, "ASPECT_TOLERANCE")
        definitions += [f"{path.relative_to(PROJECT_ROOT)}:{line}" for line in lines]
    assert len(definitions) == 1, (
        f"ASPECT_TOLERANCE is assigned in {len(definitions)} places, expected one (import it from there): "
        + ", ".join(definitions)
    )


def test_top_level_assignment_finder_ignores_functions_and_imports():
    tree = ast.parse(
        "from RMBG.constants import ASPECT_TOLERANCE\n"
        "def f():\n    ASPECT_TOLERANCE = 2\n"
        "if True:\n    ASPECT_TOLERANCE: float = 0.01\n"
        "ASPECT_TOLERANCE = 0.01\n"
    )
    assert _top_level_assignments(tree, "ASPECT_TOLERANCE") == [5, 6]


# ---------------------------------------------------------------------------
# The stages: one folder each, imports pointing down the stage order
# ---------------------------------------------------------------------------
#: The project's stages (README "Layout", ../shared/DESIGN.md), each a set of module prefixes.
STAGES = {
    "base": ("RMBG.constants", "RMBG.quiet", "RMBG.machine"),
    "images": ("RMBG.images",),
    "models": ("RMBG.models",),
    "runtime": ("RMBG.runtime",),
    "removal": ("RMBG.removal",),
    "training": ("RMBG.training",),
    "evaluation": ("RMBG.evaluation",),
    "apps": ("RMBG.apps",),
    "preprocess": ("Preprocess",),
    "viz": ("RMBG.viz",),
    "commands": ("RMBG.commands",),
    "faces": ("RMBG.model", "RMBG.train"),
    "entry": ("RMBG", "RMBG.__main__"),
}
_BELOW_REMOVAL = {"base", "images", "models", "runtime"}
#: What each stage may import besides itself: images <- models <- runtime <- removal <- apps, training and
#: evaluation beside removal (evaluation may time the removal pipeline); the notebooks' viz and the command
#: verbs on top; the original project's faces over models and training.
MAY_IMPORT = {
    "base": set(),
    "images": {"base"},
    "models": {"base", "images"},
    "runtime": {"base", "images", "models"},
    "removal": _BELOW_REMOVAL,
    "training": _BELOW_REMOVAL,
    "evaluation": _BELOW_REMOVAL | {"removal"},
    "apps": _BELOW_REMOVAL | {"removal"},
    "preprocess": {"base", "images"},
    "viz": _BELOW_REMOVAL | {"removal", "training", "evaluation", "apps", "preprocess"},
    "commands": _BELOW_REMOVAL | {"removal", "training", "evaluation", "apps", "preprocess"},
    "faces": {"base", "models", "training"},
    "entry": {"base"},
}
#: At most this many modules directly in RMBG/ (the faces, the entry points and the base modules).
MAX_TOP_MODULES = 8


def stage_of(module: str) -> str:
    """The stage a module belongs to: the longest matching prefix wins."""
    best, length = None, -1
    for stage, prefixes in STAGES.items():
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > length:
                best, length = stage, len(prefix)
    if best is None:
        raise KeyError(f"{module} belongs to no stage: add it to STAGES")
    return best


def stage_violations(graph: dict[str, list[Import]]) -> list[str]:
    """Every import that points from a stage to one it may not import."""
    found = []
    for module, imports in graph.items():
        source = stage_of(module)
        for imp in imports:
            target = stage_of(imp.target)
            if target != source and target not in MAY_IMPORT[source]:
                found.append(f"{imp} ({source} may not import {target})")
    return found


def test_stage_checker_flags_an_import_up_the_stages(tmp_path):
    write_package(tmp_path, {
        "RMBG/__init__.py": "",
        "RMBG/constants.py": "",
        "RMBG/images/__init__.py": "",
        "RMBG/images/io.py": "from RMBG.constants import X\n",
        "RMBG/runtime/__init__.py": "",
        "RMBG/runtime/engines.py": "from RMBG.images.io import read\n",
        "RMBG/models/__init__.py": "",
        "RMBG/models/build.py": "def f():\n    from RMBG.runtime.engines import load\n",
    })
    graph = import_graph(tmp_path, ("RMBG",))
    assert stage_of("RMBG.models.archs.u2net") == "models" and stage_of("RMBG.model") == "faces"
    assert stage_of("RMBG") == "entry" and stage_of("RMBG.constants") == "base"
    problems = stage_violations(graph)
    assert len(problems) == 1 and "RMBG.models.build imports RMBG.runtime.engines" in problems[0]
    assert "models may not import runtime" in problems[0]


def test_imports_point_down_the_stages():
    problems = stage_violations(import_graph(PROJECT_ROOT))
    listing = "\n".join(f"    {line}" for line in problems)
    assert not problems, f"{len(problems)} import(s) against the stage order (see MAY_IMPORT):\n{listing}"


def test_the_package_is_folders_of_stages_with_few_top_level_modules():
    package = PROJECT_ROOT / "RMBG"
    top = sorted(path.name for path in package.glob("*.py"))
    assert len(top) <= MAX_TOP_MODULES, f"{len(top)} modules directly in RMBG/: {top}"
    assert {"model.py", "train.py", "__main__.py"} <= set(top)  # the original faces and the entry point
    folders = sorted(path.parent.name for path in package.glob("*/__init__.py"))
    stage_folders = [name for name in folders if f"RMBG.{name}" in {p for ps in STAGES.values() for p in ps}]
    assert len(stage_folders) >= 5, folders
    for name in folders:  # every stage says what it does and what it may import
        doc = ast.get_docstring(ast.parse((package / name / "__init__.py").read_text(encoding="utf-8")))
        assert doc, f"RMBG/{name}/__init__.py has no docstring"
    every_module = find_modules(PROJECT_ROOT)
    assert all(stage_of(module) for module in every_module)  # no module outside the stages
