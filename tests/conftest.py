"""Shared fixtures: where ../shared is, and skipping cleanly when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

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
    """The shipped default model (``RMBG.runtime.default_model_path``), or a skip with the reason."""
    from RMBG.runtime import default_model_path

    try:
        return default_model_path()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def teacher_u2net() -> Path:
    """rembg's U-2-Net in ``~/.u2net`` (``$U2NET_HOME``; ``python -m RMBG fetch-teacher``), or a skip with the reason."""
    from RMBG.label import default_teacher

    path = default_teacher()
    if path is None:
        pytest.skip("rembg's u2net.onnx is not in ~/.u2net ($U2NET_HOME): run `python -m RMBG fetch-teacher`")
    return path
