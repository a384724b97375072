"""RMBG.quiet: a terminal without TensorFlow's start-up lines, LiteRT's delegate notice or library noise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 300
#: What TensorFlow and LiteRT print on their own (C++ log prefixes and their known notices).
NATIVE_LOG_MARKERS = ("I0000 ", "W0000 ", "oneDNN custom operations", "cpu_feature_guard", "absl::InitializeLog",
                      "XNNPACK delegate", "Ignored output_format")


def run_python(code: str, **env_changes) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in {"TF_CPP_MIN_LOG_LEVEL", "RMBG_VERBOSE"}}
    env.update(PYTHONPATH=str(PROJECT_ROOT), **env_changes)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          cwd=PROJECT_ROOT, timeout=TIMEOUT)


def native_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if any(marker in line for marker in NATIVE_LOG_MARKERS)]


def test_the_native_stderr_filter_drops_only_the_known_noise():
    code = (
        "import os, sys\n"
        "from RMBG.quiet import quiet_native_stderr\n"
        "with quiet_native_stderr():\n"
        "    os.write(2, b'I0000 00:00:1 port.cc:153] oneDNN custom operations are on.\\n')\n"
        "    os.write(2, b'INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\n')\n"
        "    os.write(2, b'a real problem: libfoo.so not found\\n')\n"
        "print('done')\n"
    )
    quiet = run_python(code)
    assert quiet.returncode == 0 and quiet.stdout.strip() == "done"
    assert quiet.stderr.splitlines() == ["a real problem: libfoo.so not found"]
    verbose = run_python(code, RMBG_VERBOSE="1")  # asked for: everything stays
    assert len(verbose.stderr.splitlines()) == 3


def test_tensorflow_imported_after_rmbg_prints_no_start_up_lines():
    plain = run_python("import tensorflow")
    quiet = run_python("import RMBG, tensorflow, keras; print(tensorflow.__version__, keras.__version__)")
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert native_lines(quiet.stderr) == [], quiet.stderr
    if not native_lines(plain.stderr):
        pytest.skip("this TensorFlow prints no start-up lines here, so there is nothing to hide")
    verbose = run_python("import RMBG, tensorflow", RMBG_VERBOSE="1")
    assert native_lines(verbose.stderr)  # RMBG_VERBOSE=1 keeps them


def test_remove_of_one_photo_prints_no_native_log_lines(tmp_path, shared_data):
    photo = sorted((shared_data / "people" / "images").glob("*.jpg"))[0]
    code = f"import sys; from RMBG.__main__ import main; sys.exit(main(['remove', {str(photo)!r}, '--out', {str(tmp_path)!r}]))"
    done = run_python(code)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / f"{photo.stem}.png").is_file()
    assert native_lines(done.stderr) == [], done.stderr
    assert "done 1, skipped 0, failed 0" in done.stdout


def test_converter_silence_drops_a_conversions_output_unless_it_fails():
    code = (
        "import os, sys\n"
        "from RMBG.quiet import converter_silence\n"
        "with converter_silence():\n"
        "    os.write(2, b'fully_quantize: 0, inference_type: 6, input_inference_type: FLOAT32\\n')\n"
        "    print('a python line on stderr', file=sys.stderr)\n"
        "try:\n"
        "    with converter_silence():\n"
        "        os.write(2, b'converter: op FOO is not supported\\n')\n"
        "        raise RuntimeError('conversion failed')\n"
        "except RuntimeError:\n"
        "    pass\n"
        "print('done')\n"
    )
    quiet = run_python(code)
    assert quiet.returncode == 0 and quiet.stdout.strip() == "done"
    assert quiet.stderr.splitlines() == ["converter: op FOO is not supported"]  # only the failed block's
    verbose = run_python(code, RMBG_VERBOSE="1")
    assert len(verbose.stderr.splitlines()) == 3
