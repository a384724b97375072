"""The README's test command is what CI runs, and CI fails on 'no tests'."""

import importlib.util
import os
import subprocess
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
