"""A quiet terminal: the libraries' own log lines and warnings stay off unless asked for.

TensorFlow prints C++ log lines when it starts (``oneDNN custom operations
are on``, ``cpu_feature_guard``) and when it converts a model (``Ignored
output_format``), absl prints Python ones, and the libraries raise
deprecation warnings that say nothing to a user of this project.
:func:`quiet_libraries` (run when ``RMBG`` is imported, before any of them
is) turns those off; ``RMBG_VERBOSE=1`` or ``python -m RMBG --verbose
COMMAND`` keeps them. Only the defaults are changed: a ``TF_CPP_MIN_LOG_LEVEL``
the user set stays as it is.

TensorFlow 2.21 writes its start-up lines before it reads
``TF_CPP_MIN_LOG_LEVEL`` (tensorflow/tensorflow#100442), so while
``tensorflow`` itself is imported its native stderr goes to a buffer, and
everything in it but those known lines (:data:`STARTUP_NOISE`) is written
back: an import error still shows. LiteRT's interpreter announces its CPU
delegate the same way (:func:`quiet_native_stderr` around its creation).
A model conversion (TFLite's converter and its quantisation debugger print
``fully_quantize: 0, inference_type: 6, ...`` and the delegate line from C++)
runs inside :func:`converter_silence`: nothing it prints shows unless it fails.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import logging
import os
import sys
import tempfile
import warnings

#: Environment variable that keeps every log line and warning.
VERBOSE_ENV = "RMBG_VERBOSE"
#: TensorFlow's C++ log level when quiet: 2 drops INFO and WARNING lines, errors still print.
QUIET_TF_LEVEL = "2"
#: Libraries whose deprecation and future warnings are hidden when quiet.
NOISY_MODULES = r"(tensorflow|keras|tf2onnx|onnx|absl|google|apache_beam|jax|ai_edge_litert)(\.|$)"
#: Start-up lines of TensorFlow's native code hidden while it is imported (substrings).
STARTUP_NOISE = (
    "All log messages before absl::InitializeLog() is called",
    "oneDNN custom operations are on",
    "cpu_feature_guard.cc",
    "To enable the following instructions:",
    "Created TensorFlow Lite XNNPACK delegate for CPU",
)
#: Environment variables and warning filters this module set (so that ``--verbose`` can undo them).
_SET_HERE: dict[str, str] = {}
_FILTERS_HERE: list = []


def verbose_requested() -> bool:
    """True when ``RMBG_VERBOSE`` asks for every log line."""
    return os.environ.get(VERBOSE_ENV, "").lower() in {"1", "true", "yes"}


def quiet_libraries() -> None:
    """Hide the libraries' log lines and warnings (nothing when verbose was asked for)."""
    if verbose_requested():
        return
    for name, value in (("TF_CPP_MIN_LOG_LEVEL", QUIET_TF_LEVEL), ("GRPC_VERBOSITY", "ERROR")):
        if name not in os.environ:
            os.environ[name] = value
            _SET_HERE[name] = value
    logging.getLogger("absl").setLevel(logging.ERROR)
    if not any(isinstance(finder, _QuietTensorFlowFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowFinder())
    for category in (DeprecationWarning, FutureWarning, PendingDeprecationWarning):
        warnings.filterwarnings("ignore", category=category, module=NOISY_MODULES)
        _FILTERS_HERE.append(warnings.filters[0])


def be_verbose() -> None:
    """Undo :func:`quiet_libraries` (before TensorFlow is imported: its log level is read then)."""
    os.environ[VERBOSE_ENV] = "1"
    for name in list(_SET_HERE):
        if os.environ.get(name) == _SET_HERE.pop(name):
            del os.environ[name]
    logging.getLogger("absl").setLevel(logging.NOTSET)
    sys.meta_path[:] = [finder for finder in sys.meta_path if not isinstance(finder, _QuietTensorFlowFinder)]
    while _FILTERS_HERE:
        entry = _FILTERS_HERE.pop()
        if entry in warnings.filters:
            warnings.filters.remove(entry)


def without_startup_noise(text: str) -> str:
    """``text`` less the lines of :data:`STARTUP_NOISE`."""
    return "".join(line for line in text.splitlines(keepends=True) if not any(n in line for n in STARTUP_NOISE))


def quiet_native_stderr():
    """A context manager: native code's stderr in the block loses :data:`STARTUP_NOISE`
    (nothing is filtered when verbose was asked for)."""
    import contextlib

    return contextlib.nullcontext() if verbose_requested() else _NativeStderrFilter()


def converter_silence():
    """A context manager for model conversions: native and Python stderr in the block is caught and
    dropped when the block succeeds, and written back whole when it raises (so a failed conversion
    still says why); nothing is caught when verbose was asked for."""
    import contextlib

    return contextlib.nullcontext() if verbose_requested() else _NativeStderrFilter(keep="on-error")


class _NativeStderrFilter:
    """While active, file descriptor 2 goes to a temporary file; on exit what it caught is
    written back to the real stderr: without :data:`STARTUP_NOISE` (``keep="filtered"``), or
    only when the block raised (``keep="on-error"``, everything)."""

    def __init__(self, keep: str = "filtered"):
        self.keep = keep

    def __enter__(self):
        sys.stderr.flush()
        self._buffer = tempfile.TemporaryFile()
        self._saved = os.dup(2)
        os.dup2(self._buffer.fileno(), 2)
        return self

    def __exit__(self, exc_type, *exc_info):
        sys.stderr.flush()
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._buffer.seek(0)
        caught = self._buffer.read().decode("utf-8", "replace")
        if self.keep == "on-error":
            kept = caught if exc_type is not None else ""
        else:
            kept = without_startup_noise(caught)
        self._buffer.close()
        if kept:
            sys.stderr.write(kept)
            sys.stderr.flush()
        return False


class _QuietLoader(importlib.abc.Loader):
    """Runs the ``tensorflow`` package's own loader inside :class:`_NativeStderrFilter`."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        with _NativeStderrFilter():
            self.loader.exec_module(module)

    def __getattr__(self, name):  # resource readers and the rest: the package's own loader
        return getattr(self.loader, name)


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` as usual and hands it to :class:`_QuietLoader`; nothing else."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "tensorflow":
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec
