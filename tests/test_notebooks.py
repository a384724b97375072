"""The notebooks as files: clean (no outputs), only calls into the packages, explained, CI-sized.

Running them is nbval's job (``pytest notebooks workspace.ipynb``, see
pyproject's ``testpaths``); these tests read them.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest
import tomllib

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = [
    ROOT / "workspace.ipynb",
    ROOT / "notebooks" / "01_preprocess.ipynb",
    ROOT / "notebooks" / "02_train.ipynb",
    ROOT / "notebooks" / "03_evaluate.ipynb",
    ROOT / "notebooks" / "04_remove.ipynb",
]
#: Notebooks that train, evaluate or predict: each must size its work with quick mode.
HEAVY = {"workspace.ipynb", "02_train.ipynb", "03_evaluate.ipynb", "04_remove.ipynb"}
#: Modules a notebook may import: the project's packages, and nothing that would hold logic.
ALLOWED_IMPORTS = ("RMBG", "Preprocess")
#: Statements and expressions that would be logic living in a notebook instead of a package.
FORBIDDEN_NODES = {
    ast.FunctionDef: "def",
    ast.AsyncFunctionDef: "async def",
    ast.ClassDef: "class",
    ast.For: "for loop",
    ast.AsyncFor: "for loop",
    ast.While: "while loop",
    ast.If: "if statement",
    ast.IfExp: "conditional expression",
    ast.Try: "try block",
    ast.With: "with block",
    ast.Lambda: "lambda",
    ast.ListComp: "list comprehension",
    ast.SetComp: "set comprehension",
    ast.DictComp: "dict comprehension",
    ast.GeneratorExp: "generator expression",
    ast.Global: "global",
    ast.Delete: "del",
}


def ids(paths):
    return [p.name for p in paths]


def code_cells(path: Path):
    notebook = nbformat.read(path, as_version=4)
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def logic_in(source: str) -> list[str]:
    """What in ``source`` is more than imports, assignments, calls and expressions."""
    problems = []
    if re.search(r"^\s*[%!]", source, flags=re.MULTILINE):
        problems.append("IPython magic or shell command")
        return problems
    tree = ast.parse(source)
    for node in ast.walk(tree):
        for kind, label in FORBIDDEN_NODES.items():
            if isinstance(node, kind):
                problems.append(f"{label} at line {getattr(node, 'lineno', '?')}")
        if isinstance(node, ast.Import):
            problems += [f"import {a.name}" for a in node.names if a.name.split(".")[0] not in ALLOWED_IMPORTS]
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] not in ALLOWED_IMPORTS:
            problems.append(f"from {node.module} import ...")
    return problems


def test_all_five_notebooks_exist_and_are_collected_by_pytest():
    missing = [str(p.relative_to(ROOT)) for p in NOTEBOOKS if not p.is_file()]
    assert not missing, f"missing notebooks: {missing}"
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert {"notebooks", "workspace.ipynb"} <= set(config["testpaths"])
    assert "--nbval-lax" in config["addopts"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_committed_without_outputs_or_execution_counts(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    dirty = [
        n for n, cell in enumerate(notebook.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert not dirty, f"{path.name}: cells {dirty} hold outputs or execution counts (clear them before committing)"
    assert not any("widgets" in key for key in notebook.metadata), "saved widget state in the metadata"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_code_cells_only_import_and_call_package_code(path):
    problems = {}
    for n, cell in enumerate(code_cells(path)):
        found = logic_in(cell.source)
        if found:
            problems[n] = found
    assert not problems, f"{path.name}: logic belongs in the packages (RMBG.viz...): {problems}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_markdown_explains_the_steps(path):
    cells = nbformat.read(path, as_version=4).cells
    assert cells[0].cell_type == "markdown" and cells[0].source.startswith("# "), "start with a titled markdown cell"
    # every run of code cells is introduced by markdown: never more than two code cells in a row
    run = longest = 0
    for cell in cells:
        run = run + 1 if cell.cell_type == "code" else 0
        longest = max(longest, run)
    assert longest <= 2, f"{path.name}: {longest} code cells in a row without an explanation"
    words = sum(len(c.source.split()) for c in cells if c.cell_type == "markdown")
    assert words >= 120, f"{path.name}: only {words} words of explanation"


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.name in HEAVY], ids=ids([p for p in NOTEBOOKS if p.name in HEAVY]))
def test_heavy_notebooks_size_their_work_with_quick_mode(path):
    source = "\n".join(cell.source for cell in code_cells(path))
    assert re.search(r"viz\.quick\(|quick_mode\(\)|preset_widgets\(", source), f"{path.name} never reads quick mode"


def test_the_sanity_checker_itself_catches_logic():
    assert logic_in("for x in range(3):\n    print(x)") == ["for loop at line 1"]
    assert "def at line 1" in logic_in("def f():\n    return 1")
    assert logic_in("import numpy as np") == ["import numpy"]
    assert logic_in("y = [a for a in b]") == ["list comprehension at line 1"]
    assert logic_in("%matplotlib inline") == ["IPython magic or shell command"]
    assert logic_in("from RMBG import viz\nfig = viz.pair_grid(DATA, n=6)") == []


def preset_widget_calls(path: Path) -> list[ast.Call]:
    calls = []
    for cell in code_cells(path):
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "preset_widgets":
                calls.append(node)
    return calls


@pytest.mark.parametrize("name", ["workspace.ipynb", "02_train.ipynb"])
def test_training_widget_defaults_are_a_small_run_in_quick_mode(name, monkeypatch, tmp_path):
    """The notebooks build the widgets without choosing a preset, so CI gets the quick defaults."""
    pytest.importorskip("ipywidgets")
    from RMBG import viz

    path = next(p for p in NOTEBOOKS if p.name == name)
    calls = preset_widget_calls(path)
    assert len(calls) == 1, f"{name}: expected one viz.preset_widgets(...) call"
    keywords = {k.arg for k in calls[0].keywords}
    assert not calls[0].args and not keywords & {"preset", "quick", "presets"}, (
        f"{name}: the call must leave preset/quick to the defaults, got {sorted(keywords)}"
    )
    monkeypatch.setenv("CI", "true")
    widgets = viz.preset_widgets(data_dir=tmp_path / "data", out_dir=tmp_path / "run")
    preset = widgets.preset()
    assert widgets.values()["preset"] == "sample" and widgets.values()["arch"] == "u2netp"
    assert preset.image_size == 32 and preset.train_size == 32
    assert preset.epochs * preset.steps_per_epoch <= 10
    assert preset.val_limit is not None and preset.val_limit <= 8
    config = widgets.config()
    assert config.preset == preset and config.arch == "u2netp" and config.init is None
    assert config.overwrite and not config.resume  # a re-run of the notebook starts the run again


def test_users_get_the_real_presets_outside_quick_mode(monkeypatch, tmp_path):
    """Outside quick mode the widgets start on the short fine-tune the notebook text describes."""
    pytest.importorskip("ipywidgets")
    from RMBG import viz
    from RMBG.models.archs import get_spec
    from RMBG.training.presets import NOTEBOOK_PRESET, get_preset

    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("RMBG_QUICK", raising=False)
    widgets = viz.preset_widgets(data_dir=tmp_path, out_dir=tmp_path / "run")
    assert NOTEBOOK_PRESET == "quick-finetune" and widgets.values()["preset"] == NOTEBOOK_PRESET
    assert widgets.preset() == get_preset(NOTEBOOK_PRESET, "u2netp")
    assert widgets.extra == {}
    # the config the Train button runs (the same resolve_config as the CLI): its size is the promised one
    config = widgets.config()
    preset = config.preset
    steps = preset.epochs * preset.steps_per_epoch
    assert (preset.image_size, preset.train_size, preset.batch, steps) == (320, 288, 8, 16)
    assert (preset.val_every_steps, preset.val_limit, preset.start) == (4, 16, "pretrained")
    assert config.init == str(get_spec("u2netp").pretrained_path())  # from the pretrained weights
    for name in ("02_train.ipynb", "workspace.ipynb"):
        text = "\n".join(c.source for c in nbformat.read(next(p for p in NOTEBOOKS if p.name == name), 4).cells
                         if c.cell_type == "markdown")
        assert f"{steps} steps" in text and NOTEBOOK_PRESET in text, f"{name} must say what the training cell runs"
