"""Stage 2, models: what a model file is and how one is made.

The architecture registry (``archs/``, one file a family), building, saving and loading ``.keras``
files with their :class:`~RMBG.models.info.ModelInfo`, importing rembg's ONNX weights, exporting
to LiteRT and ONNX, weight-space blending, and the opt-in download of a teacher.

May import: ``images`` and the base modules (``RMBG.constants``, ``RMBG.quiet``).
"""
