"""The README's test command is what CI runs, and CI fails on 'no tests'."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _reader():
    spec = importlib.util.spec_from_file_location("readme_command", ROOT / ".ci" / "readme_command.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.readme_command


def test_readme_has_two_one_line_commands():
    read = _reader()
    main, test = read("main"), read("test")
    assert "pip install" in main and "python -m RMBG demo" in main
    assert "pip install" in test and "pytest" in test and ".[test]" in test


def test_ci_runs_the_readme_test_command():
    script = (ROOT / ".ci" / "run").read_text()
    assert "readme_command.py test" in script
    out = subprocess.run(
        ["python3", str(ROOT / ".ci" / "readme_command.py"), "test"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == _reader()("test")


def test_ci_treats_exit_5_as_failure(tmp_path):
    """Run .ci/run against a README whose test command exits 5: CI must fail."""
    (tmp_path / ".ci").mkdir()
    for name in ("run", "readme_command.py"):
        (tmp_path / ".ci" / name).write_text((ROOT / ".ci" / name).read_text())
    (tmp_path / "README.md").write_text(
        "<!-- command:main -->\n```bash\ntrue\n```\n<!-- command:test -->\n```bash\nexit 5\n```\n"
    )
    # RMBG_CI_NO_APT / RMBG_CI_NO_TEACHER: this copy of .ci/run must not install Chromium or fetch the teacher
    result = subprocess.run(["bash", str(tmp_path / ".ci" / "run")], capture_output=True, text=True,
                            env={**os.environ, "RMBG_CI_NO_APT": "1", "RMBG_CI_NO_TEACHER": "1"})
    assert result.returncode == 1
    assert "no tests" in result.stderr


def _run_ci_pytest(tmp_path, test_text: str, **env) -> subprocess.CompletedProcess:
    """pytest with this project's tests/conftest.py on one test file, as CI runs it (CI=true)."""
    (tmp_path / "tests").mkdir()
    for name in ("conftest.py", "ci_skips.py"):
        (tmp_path / "tests" / name).write_text((ROOT / "tests" / name).read_text())
    (tmp_path / "tests" / "test_probe.py").write_text(test_text)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, env={**os.environ, "CI": "true", **env})


def test_ci_fails_on_a_skip_that_is_not_allowed(tmp_path):
    result = _run_ci_pytest(tmp_path, "import pytest\n\ndef test_a():\n    pytest.skip('no chromium')\n\n"
                                      "def test_b():\n    assert True\n")
    assert result.returncode == 1, result.stdout
    assert "tests/test_probe.py::test_a: no chromium" in result.stdout
    assert "1 unexpected skip" in result.stdout


def test_ci_fails_when_shared_data_is_missing(tmp_path):
    result = _run_ci_pytest(tmp_path, "def test_b():\n    assert True\n", RMBG_DATA=str(tmp_path / "absent"))
    assert result.returncode == 1
    assert "../shared/data is missing" in result.stdout + result.stderr


def test_the_allowed_skip_list_matches_by_pattern_and_says_why():
    from ci_skips import CI_ALLOWED_SKIPS, unexpected_skips

    skips = [("tests/test_x.py::test_gpu[cpu]", "no GPU"), ("tests/test_y.py::test_z", "no file")]
    assert unexpected_skips(skips, {"tests/test_x.py::test_gpu*": "needs a GPU"}) == ["tests/test_y.py::test_z: no file"]
    assert all(reason.strip() for reason in CI_ALLOWED_SKIPS.values())  # every allowed skip says why
