"""RMBG: train, measure and use background-removal models.

Heavy modules (TensorFlow, Keras, ONNX) are imported lazily by the modules
that need them, so ``import RMBG`` stays cheap; it only quiets their log
lines first (:mod:`RMBG.quiet`; ``RMBG_VERBOSE=1`` keeps them).
"""

__version__ = "0.1.0"

from RMBG.quiet import quiet_libraries  # noqa: E402  (before TensorFlow, Keras or absl is imported)

quiet_libraries()
