"""The training widgets: a preset selector filling editable sliders, folders, and a Train button.

:class:`PresetWidgets` turns the widgets into an ``RMBG.training.presets.Preset`` and
an ``RMBG.training.config.TrainConfig``, and trains it with live curves
(:func:`RMBG.viz.curves.fit_with_curves`); in quick mode (CI) it starts on a
run of a few steps.
"""

from __future__ import annotations

import math
import os
from typing import Any, Mapping

from RMBG.constants import quick_mode
from RMBG.viz.curves import fit_with_curves
from RMBG.viz.notebook import field_style
from RMBG.viz.widgets import WidgetPanel

#: In quick mode (CI) the training widgets start from this small run.
QUICK_PRESET = "sample"
QUICK_OVERRIDES = {"epochs": 2, "steps_per_epoch": 3, "val_limit": 4}
#: Preset fields that have a widget in :class:`PresetWidgets`, in display order.
SLIDER_FIELDS = ("image_size", "batch", "lr", "epochs", "split")
#: What to do when the run folder already holds a run: (label, TrainConfig flag).
EXISTING_RUN = (("start again (overwrite it)", "overwrite"), ("resume it", "resume"), ("stop with an error", "none"))


class PresetWidgets(WidgetPanel):
    """Preset selector whose choice fills editable sliders, plus folders and a Train button.

    Choosing a preset (or an architecture) copies its values into the sliders
    (image size, batch, learning rate on a log scale, epochs, validation
    split); moving a slider afterwards overrides that value only. A preset
    that starts from pretrained weights (``finetune``) fills the start-weights
    field with the architecture's pretrained file. :meth:`values` reads every
    widget, :meth:`preset` gives the ``RMBG.training.presets.Preset`` they describe,
    :meth:`config` the ``RMBG.training.config.TrainConfig`` (both through
    :func:`RMBG.training.config.resolve_config`, as the CLI, so a new image size
    moves the crop the same way) and :meth:`run` trains it with live curves
    (the button runs it into the output under the widgets).

    Outside quick mode the widgets start on ``RMBG.training.presets.NOTEBOOK_PRESET``
    (``quick-finetune``: a few minutes that visibly improve the pretrained
    model). In quick mode (``RMBG.constants.quick_mode()``, set in CI) they
    start on :data:`QUICK_PRESET` with :data:`QUICK_OVERRIDES`, a run of a
    few steps; choosing another preset gives that preset's real values.
    """

    def __init__(
        self,
        presets: Mapping | None = None,
        preset: str | None = None,
        arch: str = "u2netp",
        data_dir: str | os.PathLike = "",
        out_dir: str | os.PathLike = "",
        quick: bool | None = None,
    ):
        import ipywidgets as w

        from RMBG.models.archs import ALIASES, arch_names
        from RMBG.training.presets import NOTEBOOK_PRESET, PRESETS, SLIDERS

        self.presets = dict(presets) if presets is not None else dict(PRESETS)
        self.quick = quick_mode() if quick is None else bool(quick)
        start = preset or (QUICK_PRESET if self.quick else NOTEBOOK_PRESET if NOTEBOOK_PRESET in self.presets
                           else next(iter(self.presets)))
        if start not in self.presets:
            raise ValueError(f"unknown preset {start!r}: choose one of {', '.join(self.presets)}")
        self.preset_box = w.Dropdown(options=list(self.presets), value=start, description="preset", **field_style())
        archs = [(name, name) for name in arch_names()]
        archs += [(f"{alias} (old name of {name})", alias) for alias, name in ALIASES.items()]
        self.arch = w.Dropdown(options=archs, value=arch, description="architecture", **field_style())
        self.description = w.HTML()
        lo, hi, step = SLIDERS["image_size"]
        self.image_size = w.IntSlider(min=lo, max=hi, step=step, description="image size", **field_style())
        lo, hi, step = SLIDERS["batch"]
        self.batch = w.IntSlider(min=lo, max=hi, step=step, description="batch", **field_style())
        lo, hi, _ = SLIDERS["lr"]
        self.lr = w.FloatLogSlider(base=10, min=math.log10(lo), max=math.log10(hi), step=0.1,
                                   readout_format=".1e", description="learning rate", **field_style())
        lo, hi, step = SLIDERS["epochs"]
        self.epochs = w.IntSlider(min=lo, max=hi, step=step, description="epochs", **field_style())
        lo, hi, step = SLIDERS["split"]
        self.split = w.FloatSlider(min=lo, max=hi, step=step, readout_format=".2f",
                                   description="validation split", **field_style())
        self.data_dir = w.Text(value=str(data_dir), description="data folder", **field_style())
        self.out_dir = w.Text(value=str(out_dir), description="run folder", **field_style())
        self.init = w.Text(description="start weights", placeholder="none: random weights", **field_style())
        self.existing = w.Dropdown(options=list(EXISTING_RUN), value="overwrite",
                                   description="existing run", **field_style())
        self.note = w.HTML()
        self.run_button = w.Button(description="Train", button_style="primary", icon="play")
        self.output = w.Output()
        self.extra: dict[str, Any] = {}
        self.start_problem = ""
        self.result = None
        self.preset_box.observe(self._fill, names="value")
        self.arch.observe(self._fill, names="value")
        self.run_button.on_click(self._clicked)
        self._fill()
        if self.quick and start == QUICK_PRESET:
            self.epochs.value = QUICK_OVERRIDES["epochs"]
            self.extra = {k: v for k, v in QUICK_OVERRIDES.items() if k not in SLIDER_FIELDS}
            self._describe()
        self.box = w.VBox([
            self.preset_box, self.arch, self.description, self.image_size, self.batch, self.lr,
            self.epochs, self.split, self.data_dir, self.out_dir, self.init, self.existing, self.note,
            self.run_button, self.output,
        ])

    # filling and reading ------------------------------------------------
    def _base(self):
        """The chosen preset for the chosen architecture, before the widgets' changes."""
        from RMBG.training.config import base_preset
        from RMBG.training.presets import PRESETS

        name = self.preset_box.value
        if name in PRESETS and self.presets[name] is PRESETS[name]:
            return base_preset(name, self.arch.value)
        return self.presets[name]

    def _fill(self, change=None) -> None:
        """Copy the chosen preset's values (for the chosen architecture) into the sliders,
        and its start weights (:func:`RMBG.training.config.default_start`) into the init field."""
        from RMBG.training.config import default_start

        preset = self._base()
        for field in SLIDER_FIELDS:
            widget = getattr(self, field)
            value = getattr(preset, field)
            widget.value = value if field == "lr" else min(max(value, widget.min), widget.max)
        try:
            start = default_start(preset, self.arch.value)
            self.start_problem = ""
        except ValueError as exc:  # a pretrained preset for an architecture with no file here
            start, self.start_problem = None, str(exc)
        self.init.value = str(start) if start is not None else ""
        self.extra = {}
        self._describe()

    def _describe(self) -> None:
        from RMBG.models.archs import get_spec

        text = f"<i>{getattr(self._base(), 'description', '')}</i>"
        changes = get_spec(self.arch.value).preset_overrides.get(self.preset_box.value, {})
        if changes:  # the sliders show these, not the generic values the description names
            listed = ", ".join(f"{k}={v}" for k, v in changes.items())
            text += f"<br>for {self.arch.value}: {listed}"
        self.description.value = text
        notes = [f"<b>start weights</b>: {self.start_problem}"] if self.start_problem else []
        if self.extra:
            listed = ", ".join(f"{k}={v}" for k, v in self.extra.items())
            notes.append(f"<b>quick mode</b> (CI): a small run, also {listed}")
        self.note.value = "<br>".join(notes)

    def values(self) -> dict[str, Any]:
        """Every widget's current value: preset, arch, the slider fields, data, out, init, existing."""
        values: dict[str, Any] = {"preset": self.preset_box.value, "arch": self.arch.value}
        values["image_size"] = int(self.image_size.value)
        values["batch"] = int(self.batch.value)
        values["lr"] = float(f"{self.lr.value:.6g}")
        values["epochs"] = int(self.epochs.value)
        values["split"] = round(float(self.split.value), 4)
        values["data"] = self.data_dir.value.strip()
        values["out"] = self.out_dir.value.strip()
        values["init"] = self.init.value.strip() or None
        values["existing"] = self.existing.value
        return values

    def overrides(self) -> dict[str, Any]:
        """Preset fields that the widgets set: the slider fields plus quick-mode extras."""
        values = self.values()
        changes = {field: values[field] for field in SLIDER_FIELDS}
        changes.update(self.extra)
        return changes

    def preset(self):
        """The ``RMBG.training.presets.Preset`` the widgets describe (validated; the crop follows the image size)."""
        from RMBG.training.config import resolve_preset

        return resolve_preset(self._base(), self.arch.value, **self.overrides())

    def config(self, **changes):
        """The ``RMBG.training.config.TrainConfig`` for these values (``changes`` override its fields), made by
        :func:`RMBG.training.config.resolve_config` as the CLI makes its own."""
        from RMBG.training.config import resolve_config

        values = self.values()
        if not values["data"] or not values["out"]:
            raise ValueError("fill in the data folder and the run folder")
        options = {"overwrite": values["existing"] == "overwrite", "resume": values["existing"] == "resume",
                   "init": values["init"], **self.overrides()}
        options.update(changes)
        return resolve_config(self._base(), values["arch"], values["data"], values["out"], **options)

    # running ------------------------------------------------------------
    def run(self, every: float = 5.0):
        """Train the configuration the widgets show, with live curves; returns the ``FitResult``."""
        self.result = fit_with_curves(self.config(), every)
        return self.result

    def _clicked(self, _button) -> None:
        self.output.clear_output()
        with self.output:
            try:
                self.run()
            except Exception as exc:  # shown under the button: the notebook stays usable
                print(f"training stopped: {type(exc).__name__}: {exc}")


def preset_widgets(presets: Mapping | None = None, **kwargs) -> PresetWidgets:
    """The training widgets (see :class:`PresetWidgets`)."""
    return PresetWidgets(presets, **kwargs)
