"""Stage 5, evaluation: scoring masks and timing models.

Metrics of the field (``py_sod_metrics``), ``evaluate`` (models and peers on a prepared dataset,
with its report figures), ``bench`` (end-to-end time and memory), and the backdrop and fringe
measures behind the model card and the edge tests.

May import: ``removal``, ``runtime``, ``models``, ``images`` and the base modules.
"""
