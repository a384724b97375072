"""What this machine and environment offer, read without importing a framework: the Keras
backend configured, the CPU's flags, whether bfloat16 copies run fast here."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

#: CPU flags (``/proc/cpuinfo``) that mean bfloat16 matrix multiplication in hardware: Intel AMX.
BF16_CPU_FLAGS = ("amx_bf16",)


def keras_backend_name() -> str:
    """The backend Keras will load (``KERAS_BACKEND``, else ``keras.json``, else tensorflow), without importing it."""
    name = os.environ.get("KERAS_BACKEND")
    if not name:
        home = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")
        try:
            name = json.loads((home / "keras.json").read_text()).get("backend")
        except (OSError, ValueError, AttributeError):
            name = None
    return name or "tensorflow"


@functools.lru_cache(maxsize=1)
def _proc_cpuinfo() -> str:
    """``/proc/cpuinfo``, read once a process (a name looks its copy up each time it loads); empty where there is none."""
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The flags of the first CPU in ``cpuinfo`` (by default ``/proc/cpuinfo``; empty where there is none)."""
    if cpuinfo is None:
        cpuinfo = _proc_cpuinfo()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return set(value.split())
    return set()


def cpu_runs_bf16(flags: set[str] | None = None) -> bool:
    """Whether a bfloat16 Keras copy runs fast here: TensorFlow as the Keras backend with its oneDNN
    kernels on (``TF_ENABLE_ONEDNN_OPTS`` not 0), on a CPU with bfloat16 matrix units (:data:`BF16_CPU_FLAGS`)."""
    flags = cpu_flags() if flags is None else flags
    return (keras_backend_name() == "tensorflow" and os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1") != "0"
            and any(flag in flags for flag in BF16_CPU_FLAGS))
