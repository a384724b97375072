"""Figures, tables and widgets for the notebooks.

The notebooks only call what lives here and in the other modules, so that
everything they show is code that is tested. Importing this package sets up
inline figures when an IPython kernel is active. One job a module:

- :mod:`~RMBG.viz.notebook`: inline figures and :func:`quick`, the quick-mode (CI) size knob.
- :mod:`~RMBG.viz.examples`: the example data (shared sets, held-out photos, demo pairs and photos, peers).
- :mod:`~RMBG.viz.drawing`: how a photo, mask or cut-out is put on a figure (thumbnails, checkerboard).
- :mod:`~RMBG.viz.cutouts`: cut-outs and masks through :class:`RMBG.removal.pipeline.Remover`.
- :mod:`~RMBG.viz.figures`: pair, prediction, before/after, mode and refinement figures.
- :mod:`~RMBG.evaluation.report_figures`: the PR curves and gallery PNGs of an ``RMBG.evaluation.evaluate`` report.
- :mod:`~RMBG.viz.tables`: tables of data checks, evaluation reports and presets.
- :mod:`~RMBG.viz.curves`: training curves of a run, drawn once or live while it trains.
- :mod:`~RMBG.viz.model_picker`: the model picker (the names, present or missing, or a file).
- :mod:`~RMBG.viz.widgets`: the data, evaluation and removal widget panels.
- :mod:`~RMBG.viz.train_widgets`: the training panel (preset selector and sliders).
"""

from __future__ import annotations

from RMBG.evaluation.thumbnails import THUMB_SIDE
from RMBG.viz.curves import (
    EPOCH_LOG,
    NOT_CURVES,
    STEP_LOG,
    LiveCurves,
    fit_with_curves,
    live_training_curves,
    read_log,
    training_curves,
)
from RMBG.viz.cutouts import DEFAULT_BG, remove_all
from RMBG.viz.examples import (
    EXAMPLE_SETS,
    HELDOUT_SET,
    ORIGINAL_SET,
    demo_pairs,
    example_background,
    example_photos,
    example_sources,
    heldout_source,
    peer_models,
)
from RMBG.viz.figures import (
    mode_grid,
    original_comparison,
    pair_grid,
    picture,
    prediction_grid,
    refine_grid,
    side_by_side,
)
from RMBG.viz.model_picker import (
    PICKER_NAMES,
    ModelOption,
    ModelPicker,
    model_options,
    model_picker,
    model_table,
)
from RMBG.viz.notebook import enable_inline_figures, quick
from RMBG.viz.tables import (
    PRESET_COLUMNS,
    TABLE_KEYS,
    benchmark,
    check_sources,
    check_table,
    metric_table,
    per_image_table,
    preset_table,
)
from RMBG.viz.train_widgets import (
    EXISTING_RUN,
    QUICK_OVERRIDES,
    QUICK_PRESET,
    SLIDER_FIELDS,
    PresetWidgets,
    preset_widgets,
)
from RMBG.viz.widgets import (
    DatasetWidgets,
    EvaluateWidgets,
    RemoveWidgets,
    WidgetPanel,
    dataset_widgets,
    evaluate_widgets,
    remove_widgets,
)

__all__ = [
    "DEFAULT_BG", "EPOCH_LOG", "EXAMPLE_SETS", "EXISTING_RUN", "HELDOUT_SET", "NOT_CURVES", "ORIGINAL_SET",
    "PICKER_NAMES", "PRESET_COLUMNS", "QUICK_OVERRIDES", "QUICK_PRESET", "SLIDER_FIELDS", "STEP_LOG", "TABLE_KEYS",
    "THUMB_SIDE", "DatasetWidgets", "EvaluateWidgets", "LiveCurves", "ModelOption", "ModelPicker", "PresetWidgets", "RemoveWidgets",
    "WidgetPanel", "benchmark", "check_sources", "check_table", "dataset_widgets", "demo_pairs",
    "enable_inline_figures", "evaluate_widgets", "example_background", "example_photos", "example_sources",
    "fit_with_curves", "heldout_source", "live_training_curves", "metric_table", "mode_grid", "model_options",
    "model_picker", "model_table",
    "original_comparison", "pair_grid", "peer_models", "per_image_table", "picture", "prediction_grid",
    "preset_table", "preset_widgets", "quick", "read_log", "refine_grid", "remove_all", "remove_widgets",
    "side_by_side", "training_curves",
]

enable_inline_figures()
