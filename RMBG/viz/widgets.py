"""The notebooks' widget panels: check a data folder, evaluate models, cut out photos.

Each panel (ipywidgets) is shown as its cell's result and has a ``run()``
or ``redraw()`` that does what its button does, so that a notebook run with
no one clicking still shows results. The training panel is in
:mod:`RMBG.viz.train_widgets`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from RMBG.viz.cutouts import DEFAULT_BG
from RMBG.viz.figures import pair_grid, picture, side_by_side
from RMBG.viz.model_picker import ModelPicker
from RMBG.viz.notebook import field_style
from RMBG.viz.tables import metric_table


class WidgetPanel:
    """What the widget panels share: a ``box`` shown as the cell's result, and a run
    button whose output (``run()``'s prints and figures) replaces the previous one."""

    box = None
    output = None

    def run(self):
        raise NotImplementedError

    def _clicked(self, _button) -> None:
        self.output.clear_output()
        with self.output:
            self.run()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.box)


class DatasetWidgets(WidgetPanel):
    """A data folder field and a Check button: the integrity report and a pair grid of that folder.

    :meth:`run` does what the button does (the notebook calls it once so that
    a headless run shows the default folder too).
    """

    def __init__(self, data_dir: str | os.PathLike = "", n: int = 6):
        import ipywidgets as w

        wide = field_style()
        self.data_dir = w.Text(value=str(data_dir), description="data folder", **wide)
        self.n = w.IntSlider(value=n, min=1, max=24, description="pairs shown", **wide)
        self.button = w.Button(description="Check", button_style="primary", icon="search")
        self.output = w.Output()
        self.button.on_click(self._clicked)
        self.box = w.VBox([self.data_dir, self.n, self.button, self.output])
        self.report = None

    def run(self):
        """Check the folder in the field: print the report, show a grid of its pairs; returns the report."""
        from IPython.display import display

        from Preprocess.check import check_dataset, format_table

        folder = Path(self.data_dir.value.strip())
        try:
            self.report = check_dataset(folder)
        except (FileNotFoundError, NotADirectoryError, ValueError) as exc:
            print(f"cannot check {folder}: {exc}")
            return None
        print(format_table(self.report))
        if self.report.pairs:
            display(pair_grid(folder, n=self.n.value))
        return self.report


def dataset_widgets(data_dir: str | os.PathLike = "", n: int = 6) -> DatasetWidgets:
    """The data-folder widgets of the preprocess notebook (see :class:`DatasetWidgets`)."""
    return DatasetWidgets(data_dir, n)


class EvaluateWidgets(WidgetPanel):
    """Data folder, models (a :class:`~RMBG.viz.model_picker.ModelPicker`: names, each said present
    or missing, and files), peers, photo limit and a Run button: evaluate and show the results.

    The output under the button gets the metric table, the PR curves and the
    best/worst gallery; :meth:`run` does what the button does and returns the report.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike = "",
        models: Sequence = (),
        peers: Sequence = (),
        out_dir: str | os.PathLike = "",
        limit: int | None = None,
    ):
        import ipywidgets as w

        wide = field_style("640px")
        self.data_dir = w.Text(value=str(data_dir), description="data folder", **wide)
        self.models = ModelPicker(models, multiple=True, description="models")
        self.peers = w.Text(value=", ".join(str(m) for m in peers), description="peers",
                            placeholder="ONNX U-2-Net files, comma-separated", **wide)
        self.out_dir = w.Text(value=str(out_dir), description="report folder", **wide)
        self.limit = w.IntSlider(value=limit or 0, min=0, max=1000, description="photos (0 = all)", **wide)
        self.button = w.Button(description="Evaluate", button_style="primary", icon="play")
        self.output = w.Output()
        self.button.on_click(self._clicked)
        self.box = w.VBox([self.data_dir, self.models.box, self.peers, self.out_dir, self.limit,
                           self.button, self.output])
        self.report = None

    @staticmethod
    def _paths(text: str) -> list[str]:
        return [part.strip() for part in text.split(",") if part.strip()]

    def run(self):
        """Evaluate what the fields say: show the table, PR curves and gallery; returns the report."""
        from IPython.display import display

        from RMBG.evaluation.evaluate import EvaluationError, evaluate

        out = Path(self.out_dir.value.strip())
        try:
            self.report = evaluate(
                self.data_dir.value.strip(), models=self.models.value,
                peers=self._paths(self.peers.value), out_dir=out, limit=self.limit.value or None,
                progress=False,
            )
        except (EvaluationError, FileNotFoundError, ValueError) as exc:
            print(f"cannot evaluate: {exc}")
            return None
        display(metric_table(self.report).round(4))
        display(picture(out / "pr_curve.png", width=5.5))
        if (out / "gallery.png").is_file():
            display(picture(out / "gallery.png"))
        return self.report


def evaluate_widgets(data_dir="", models=(), peers=(), out_dir="", limit=None) -> EvaluateWidgets:
    """The evaluation widgets (see :class:`EvaluateWidgets`)."""
    return EvaluateWidgets(data_dir, models, peers, out_dir, limit)


class RemoveWidgets(WidgetPanel):
    """Model, image chooser, output mode, background colour and refinement; the side-by-side redraws on change.

    The model is picked by name or file (:class:`~RMBG.viz.model_picker.ModelPicker`; a name
    whose file is missing prints the command that gets it instead of a picture); ``model`` may
    also be a Segmenter, used until another model is picked.
    The model runs once per photo and model (its mask at model size is kept); changing
    the mode or colour only recomposes, changing the refinement re-finishes
    the mask (``matting`` compiles with numba on first use: about a minute).
    :meth:`result` gives the current output picture, :meth:`figure` the
    side-by-side figure, :meth:`redraw` puts it under the widgets.
    """

    def __init__(self, photos: Sequence, model=None, mode: str = "rgba", bg_color: str = DEFAULT_BG,
                 refine: str = "none", bg_image=None, draw: bool = True):
        import ipywidgets as w

        from RMBG.removal.compose import MODES
        from RMBG.removal.edges import REFINE_METHODS

        self.photos = [Path(p) for p in photos]
        if not self.photos:
            raise ValueError("no photos to choose from")
        self.model, self.bg_image = model, bg_image
        self.remover = None
        self.picker = ModelPicker(model if model is None or isinstance(model, (str, os.PathLike)) else None)
        modes = [m for m in MODES if m != "image" or bg_image is not None]
        self.image = w.Dropdown(options=[(p.name, str(p)) for p in self.photos], value=str(self.photos[0]),
                                description="photo", **field_style())
        self.mode = w.ToggleButtons(options=modes, value=mode, description="mode", **field_style("720px"))
        self.bg_color = w.ColorPicker(value=bg_color, description="background", **field_style())
        self.refine = w.ToggleButtons(options=list(REFINE_METHODS), value=refine, description="refine",
                                      **field_style())
        self.output = w.Output()
        self._small: dict[str, np.ndarray] = {}
        self._rgb: dict[str, np.ndarray] = {}
        self.redraws = 0
        #: why the last redraw showed no picture (``None`` when it showed one)
        self.problem: str | None = None
        for widget in (self.image, self.mode, self.bg_color, self.refine):
            widget.observe(lambda _change: self.redraw(), names="value")
        self.picker.observe(self._new_model)
        self.box = w.VBox([self.picker.box, self.image, self.mode, self.bg_color, self.refine, self.output])
        if draw:
            self.redraw()

    def _new_model(self) -> None:
        """The picker changed: forget the model and its masks, and redraw with the new one."""
        self.model, self.remover = self.picker.value, None
        self._small.clear()
        self.redraw()

    def _remover(self):
        """The :class:`RMBG.removal.pipeline.Remover` of the model, made on first use."""
        from RMBG.removal.pipeline import Remover

        if self.remover is None:
            self.remover = Remover(self.model)
        return self.remover

    def _mask(self) -> tuple[np.ndarray, np.ndarray]:
        """The current photo (RGB) and its full-size alpha with the current refinement."""
        from RMBG.removal.pipeline import to_rgb

        key = self.image.value
        if key not in self._small:
            self._rgb[key] = to_rgb(key)
            self._small[key] = self._remover().small_masks([self._rgb[key]])[0]
        image = self._rgb[key]
        return image, self._remover().finish(image, self._small[key], refine=self.refine.value)

    def result(self) -> Image.Image:
        """The output picture for the current choices (what ``remove_background`` returns)."""
        from RMBG.removal.pipeline import Remover

        image, mask = self._mask()
        return Remover.compose(image, mask, self.mode.value, bg_color=self.bg_color.value, bg_image=self.bg_image)

    def figure(self) -> Figure:
        picture = self.result()
        label = f"mode={self.mode.value}, refine={self.refine.value}"
        if self.mode.value == "color":
            label += f", {self.bg_color.value}"
        return side_by_side([self.image.value], [picture], labels=("before", label))

    def redraw(self) -> Figure | None:
        """Recompute for the current choices and show it under the widgets (a model that cannot be
        loaded, a missing name's file say, shows why instead; returns ``None`` then)."""
        from IPython.display import display

        try:
            self._remover()
        except (FileNotFoundError, ValueError) as exc:
            self.problem = f"cannot use model {self.picker.value}: {exc}"
            self.output.clear_output(wait=True)
            with self.output:
                print(self.problem)
            return None
        self.problem = None
        fig = self.figure()
        self.redraws += 1
        self.output.clear_output(wait=True)
        with self.output:
            display(fig)
        return fig


def remove_widgets(photos: Sequence, model=None, **kwargs) -> RemoveWidgets:
    """The background-removal widgets (see :class:`RemoveWidgets`)."""
    return RemoveWidgets(photos, model, **kwargs)


