"""Stage 4 (beside removal), training: presets to a trained model file.

Presets and their checked configuration, the input pipelines (tf.data; a PyDataset that needs no
TensorFlow) and augmentation, the backend's settings (XLA, mixed precision), losses,
callbacks, distribution strategies, run folders, :func:`~RMBG.training.fit.fit`, and the
distillation data (teacher labels, mixed training folders).

May import: ``runtime``, ``models``, ``images`` and the base modules; never ``removal`` or an app.
"""
