"""RMBG: train, measure and use background-removal models.

The names people use most are here, imported on first use so that ``import RMBG``
stays cheap (no TensorFlow, Keras or ONNX until a model runs)::

    from RMBG import Remover, remove_background, load_segmenter

The stages live in their folders (``images``, ``models``, ``runtime``, ``removal``,
``training``, ``evaluation``, ``apps``, ``commands``; see the README's layout). Importing
the package first quiets the libraries' log lines (:mod:`RMBG.quiet`;
``RMBG_VERBOSE=1`` keeps them).
"""

from importlib import import_module

from RMBG.constants import VERSION
from RMBG.quiet import quiet_libraries

quiet_libraries()  # before TensorFlow, Keras or absl is imported

__version__ = VERSION

#: public name -> the module that defines it (imported by :func:`__getattr__` on first use)
EXPORTS = {
    "Remover": "RMBG.removal.pipeline",
    "remove_background": "RMBG.apps.batch.jobs",
    "load_segmenter": "RMBG.runtime.engines",
}

__all__ = sorted(EXPORTS)


def __getattr__(name: str):
    if name not in EXPORTS:
        raise AttributeError(f"module 'RMBG' has no attribute {name!r}")
    value = getattr(import_module(EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(EXPORTS))
