"""RMBG: train, measure and use background-removal models.

Heavy modules (TensorFlow, Keras, ONNX) are imported lazily by the modules
that need them, so ``import RMBG`` stays cheap.
"""

__version__ = "0.1.0"
