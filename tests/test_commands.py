"""The command line (``rmbg VERB``, ``python -m RMBG VERB``), the package's exports and the original faces."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys

import pytest

from RMBG.__main__ import COMMANDS, command_module
from RMBG.__main__ import main as dispatch


@pytest.mark.parametrize("verb", sorted(COMMANDS))
def test_every_verb_is_a_module_that_parses_its_own_arguments(verb, capsys):
    module = importlib.import_module(command_module(verb))
    assert module.__name__ == f"RMBG.commands.{verb.replace('-', '_')}"
    with pytest.raises(SystemExit) as stop:
        module.main(["--help"])
    assert stop.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_the_dispatcher_lists_every_verb_and_refuses_an_unknown_one(capsys):
    assert dispatch(["--help"]) == 0
    listing = capsys.readouterr().out
    assert all(verb in listing for verb in COMMANDS)
    assert dispatch(["no-such-verb"]) == 2
    assert "unknown command 'no-such-verb'" in capsys.readouterr().err


def test_the_rmbg_console_command_runs_the_verbs():
    rmbg = shutil.which("rmbg")
    assert rmbg, "the `rmbg` command is not on PATH: install the project (pip install -e .)"
    listing = subprocess.run([rmbg, "--help"], capture_output=True, text=True, timeout=120)
    assert listing.returncode == 0 and "remove" in listing.stdout and "serve" in listing.stdout
    remove = subprocess.run([rmbg, "remove", "--help"], capture_output=True, text=True, timeout=300)
    assert remove.returncode == 0 and "--out" in remove.stdout and "--format" in remove.stdout
    wrong = subprocess.run([rmbg, "remove", "--mode", "nonsense", "x.jpg", "--out", "o"], capture_output=True,
                           text=True, timeout=300)
    assert wrong.returncode == 2 and "nonsense" in wrong.stderr


def test_import_rmbg_is_cheap_and_exports_the_names_people_use():
    code = (
        "import sys, RMBG\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'onnxruntime', 'jax') if m in sys.modules]\n"
        "print('heavy', heavy)\n"
        "print(sorted(RMBG.__all__))\n"
        "from RMBG import Remover, load_segmenter, remove_background\n"
        "print(Remover.__module__, load_segmenter.__module__, remove_background.__module__)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    lines = result.stdout.splitlines()
    assert lines[0] == "heavy []"
    assert lines[1] == "['Remover', 'load_segmenter', 'remove_background']"
    assert lines[2] == "RMBG.removal.pipeline RMBG.runtime.engines RMBG.apps.batch.jobs"


def test_the_package_refuses_an_unknown_name():
    import RMBG

    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        RMBG.nothing_here  # noqa: B018


def test_the_original_faces_keep_their_api():
    from Preprocess.util import Rename, create_csv, plot_Data, resize
    from RMBG.model import build_model, load_model, save_model
    from RMBG.models import build
    from RMBG.train import fit, train
    from RMBG.training import fit as fit_module

    assert build_model is build.build_model and load_model is build.load_model and save_model is build.save_model
    assert fit is fit_module.fit
    assert all(callable(f) for f in (Rename, create_csv, plot_Data, resize))
    assert hasattr(train, "train_model")
    model = build_model("u2netp", input_size=64)
    assert model.input_shape == (None, 64, 64, 3)
