"""Stage 3, runtime: running a model file on photos.

One :class:`~RMBG.runtime.engines.Segmenter` per engine (Keras, LiteRT fp32/int8, onnxruntime for our
exports and for rembg's files), chosen by :func:`~RMBG.runtime.engines.load_segmenter` from the file
type; pre- and post-processing live there once.

May import: ``models``, ``images`` and the base modules.
"""
