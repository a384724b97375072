"""Notebook kernels started by nbval import this checkout's packages, installed or not.

nbval starts each kernel in the notebook's folder with this process's
environment, so the project root is put first on ``PYTHONPATH`` here.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = str(Path(__file__).resolve().parent.parent)
_paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
if PROJECT_ROOT not in _paths:
    os.environ["PYTHONPATH"] = os.pathsep.join([PROJECT_ROOT, *_paths])
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
