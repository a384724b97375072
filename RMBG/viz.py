"""Figures, tables and widgets for the notebooks.

The notebooks only call what lives here and in the other modules, so that
everything they show is code that is tested. Figures are built with
:class:`matplotlib.figure.Figure` (no pyplot, no global state) and returned;
Jupyter shows a returned figure as a picture once :func:`enable_inline_figures`
has run (importing this module runs it when an IPython kernel is active), and
``fig.savefig(path)`` writes it anywhere. Widgets (ipywidgets) each have a
``run()``/``redraw()`` that does what their button does, so that a notebook
run with no one clicking still shows results; :func:`quick` picks small
sizes in quick mode (CI).

- Data: :func:`example_sources`, :func:`heldout_source`, :func:`check_sources`,
  :func:`check_table`, :func:`pair_grid` (photos beside their masks),
  :class:`DatasetWidgets`.
- Training: :class:`PresetWidgets` (preset selector filling editable
  sliders), :func:`training_curves`, :class:`LiveCurves` and
  :func:`fit_with_curves` (curves redrawn from the run's CSV logs while it
  trains), :func:`prediction_grid`.
- Evaluation: :func:`metric_table`, :func:`per_image_table`, :func:`picture`
  (a PNG a report wrote), :func:`benchmark`, :class:`EvaluateWidgets`.
- Removal: :func:`example_photos`, :func:`remove_all`, :func:`side_by_side`,
  :func:`mode_grid`, :func:`refine_grid`, :func:`original_comparison`,
  :class:`RemoveWidgets` (mode, colour, refinement and photo, redrawn on change).
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from RMBG.constants import SEED, quick_mode, shared_data_dir

#: Thumbnails in grids are at most this many pixels on their longer side.
THUMB_SIDE = 256
#: Shared sets the notebooks prepare by default: (kind for ``Preprocess.prepare``, folder).
EXAMPLE_SETS = (("people", "people"), ("folder", "cats"))
#: Shared set kept out of the example data, for evaluation.
HELDOUT_SET = "ecssd"
#: Metrics shown by :func:`metric_table` unless asked otherwise (see ``RMBG.metrics``).
TABLE_KEYS = ("mae", "max_f", "mean_f", "weighted_f", "s_measure", "max_e", "iou", "seconds_per_image")
#: In quick mode (CI) the training widgets start from this small run.
QUICK_PRESET = "sample"
QUICK_OVERRIDES = {"epochs": 2, "steps_per_epoch": 3, "val_limit": 4}


# ---------------------------------------------------------------------------
# Notebook set-up
# ---------------------------------------------------------------------------
def _figure_png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=fig.dpi, bbox_inches="tight")
    return buffer.getvalue()


def enable_inline_figures(shell=None) -> bool:
    """Show matplotlib Figures as PNG pictures in IPython (also those built without pyplot).

    Returns True when a shell was found and set up. Safe to call many times.
    """
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return False
        shell = get_ipython()
    if shell is None or not hasattr(shell, "display_formatter"):
        return False
    shell.display_formatter.formatters["image/png"].for_type(Figure, _figure_png)
    return True


def quick(small, full):
    """``small`` in quick mode (CI, ``RMBG_QUICK=1``), else ``full``: the notebooks' size knob."""
    return small if quick_mode() else full


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------
def example_sources(data_root: str | os.PathLike | None = None) -> list[tuple[str, Path]]:
    """``[(kind, folder), ...]`` of the photos the notebooks prepare and train on.

    The shared ``people`` and ``cats`` sets when ``../shared/data`` (or
    ``RMBG_DATA``) holds them (ECSSD stays out, for evaluation on photos the
    model never saw); otherwise the shipped demo photos, labelled by the
    default model (see :func:`demo_pairs`), so that every notebook still runs.
    """
    root = Path(data_root) if data_root is not None else shared_data_dir()
    if root is not None:
        found = [(kind, root / name) for kind, name in EXAMPLE_SETS if (root / name / "images").is_dir()]
        if found:
            return found
    return [("folder", demo_pairs())]


def heldout_source(data_root: str | os.PathLike | None = None, out: str | os.PathLike | None = None) -> Path:
    """A folder of photos with masks that neither the notebooks nor the default model trained on.

    The shared ECSSD photos of the default model's validation list
    (``Data/models/rmbg-default-val.txt``), linked into ``out`` (default
    ``Data/cache/heldout``); the whole ECSSD set when that list is absent; the
    demo pairs when ``../shared`` is absent.
    """
    from RMBG.constants import DATA_DIR, MODELS_DIR

    root = Path(data_root) if data_root is not None else shared_data_dir()
    if root is None or not (root / HELDOUT_SET / "images").is_dir():
        return demo_pairs()
    val_list = MODELS_DIR / "rmbg-default-val.txt"
    listed = []
    if val_list.is_file():
        lines = [line.strip() for line in val_list.read_text().splitlines()]
        listed = [root / line for line in lines if line.startswith(f"{HELDOUT_SET}/images/")]
    listed = [photo for photo in listed if photo.is_file()]
    if not listed:
        return root / HELDOUT_SET
    folder = Path(out) if out is not None else DATA_DIR / "cache" / "heldout"
    for kind in ("images", "masks"):
        (folder / kind).mkdir(parents=True, exist_ok=True)
    for photo in listed:
        mask = root / HELDOUT_SET / "masks" / f"{photo.stem}.png"
        for source, link in ((photo, folder / "images" / photo.name), (mask, folder / "masks" / mask.name)):
            if not link.exists():
                link.symlink_to(source.resolve())
    return folder


def check_sources(sources: Sequence[tuple[str, str | os.PathLike]]) -> "pd.DataFrame":
    """The integrity check of each source folder, one table: a row per source and problem.

    A source without problems gets one row saying ``none``. Nothing is written.
    """
    import pandas as pd

    from Preprocess.check import check_dataset

    tables = []
    for kind, folder in sources:
        report = check_dataset(folder)
        table = check_table(report)
        if table.empty:
            table = pd.DataFrame([{"problem": "none", "severity": "", "count": 0, "example": "", "detail": ""}])
        table.insert(0, "pairs", len(report.pairs))
        table.insert(0, "source", f"{Path(folder).name} ({kind})")
        tables.append(table)
    return pd.concat(tables, ignore_index=True)


def demo_pairs(out: str | os.PathLike | None = None) -> Path:
    """A folder ``images/`` + ``masks/`` made from the demo photos when no real data is there.

    The photos are the ones ``python -m RMBG demo`` writes; the masks are the
    default model's own predictions, so training on them only shows the flow
    working and scores against them measure agreement with that model, not
    accuracy. Existing files are kept.
    """
    from RMBG.constants import SAMPLES_DIR
    from RMBG.demo import write_samples
    from RMBG.predict import remove_background

    folder = Path(out) if out is not None else SAMPLES_DIR / "pairs"
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    for photo in write_samples():
        photo = Path(photo)
        image_out = folder / "images" / f"demo_{photo.stem}{photo.suffix}"
        mask_out = folder / "masks" / f"demo_{photo.stem}.png"
        if not image_out.exists():
            image_out.write_bytes(photo.read_bytes())
        if not mask_out.exists():
            remove_background(photo, mode="mask").save(mask_out)
    return folder


def _thumbnail(array: np.ndarray, side: int = THUMB_SIDE) -> np.ndarray:
    """``array`` (HxW or HxWxC uint8/float) shrunk so its longer side is at most ``side``."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        array = np.round(np.clip(array, 0.0, 1.0) * 255).astype(np.uint8)
    height, width = array.shape[:2]
    scale = side / max(height, width)
    if scale >= 1:
        return array
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(array).resize(size, Image.Resampling.BILINEAR))


def pair_grid(
    dataset_dir: str | os.PathLike,
    n: int = 6,
    cols: int = 3,
    seed: int = SEED,
    split: str | None = None,
) -> Figure:
    """A grid of ``n`` photos, each beside its mask, picked at random (seeded) across categories.

    ``dataset_dir`` is a prepared folder or any ``images/`` + ``masks/``
    folder; ``split`` (``"train"``/``"val"``) keeps only that split of a
    prepared folder's ``index.csv``.
    """
    from RMBG.data import limit_pairs, list_pairs
    from RMBG.imageio import read_image, read_mask

    if n < 1 or cols < 1:
        raise ValueError(f"n and cols must be at least 1, got n={n}, cols={cols}")
    pairs, _skipped = list_pairs(dataset_dir)
    if split is not None:
        pairs = [p for p in pairs if p.split == split]
    if not pairs:
        raise ValueError(f"{dataset_dir}: no image/mask pairs" + (f" in split {split!r}" if split else ""))
    chosen = limit_pairs(pairs, n, seed)
    cols = min(cols, len(chosen))
    rows = math.ceil(len(chosen) / cols)
    fig = Figure(figsize=(4.4 * cols, 2.4 * rows + 0.4), layout="constrained")
    axes = fig.subplots(rows, 2 * cols, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for k, pair in enumerate(chosen):
        row, col = divmod(k, cols)
        image, mask = read_image(pair.image), read_mask(pair.mask)
        ax_img, ax_mask = axes[row][2 * col], axes[row][2 * col + 1]
        ax_img.imshow(_thumbnail(image))
        ax_img.set_title(f"{pair.name} ({image.shape[1]}x{image.shape[0]})", fontsize=8)
        ax_mask.imshow(_thumbnail(mask), cmap="gray", vmin=0, vmax=255)
        ax_mask.set_title(f"mask, {100 * float((mask >= 0.5).mean()):.0f}% foreground", fontsize=8)
    fig.suptitle(f"{len(chosen)} of {len(pairs)} pairs in {Path(dataset_dir).name}", fontsize=10)
    return fig


def check_table(report) -> "pd.DataFrame":
    """One row per problem of a ``Preprocess.check`` report: severity, count and an example."""
    import pandas as pd

    from Preprocess.check import PROBLEMS

    examples: dict[str, Any] = {}
    for finding in report.findings:
        examples.setdefault(finding.problem, finding)
    rows = [
        {
            "problem": problem,
            "severity": PROBLEMS[problem],
            "count": count,
            "example": examples[problem].file,
            "detail": examples[problem].detail,
        }
        for problem, count in report.counts().items()
    ]
    return pd.DataFrame(rows, columns=["problem", "severity", "count", "example", "detail"])


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

        wide = {"style": {"description_width": "110px"}, "layout": w.Layout(width="460px")}
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


# ---------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------
def _load_report(report: Mapping | str | os.PathLike) -> Mapping:
    if isinstance(report, Mapping):
        return report
    import json

    path = Path(report)
    if path.is_dir():
        path = path / "report.json"
    return json.loads(path.read_text())


def metric_table(
    report: Mapping | str | os.PathLike,
    per_category: bool = False,
    keys: Sequence[str] = TABLE_KEYS,
) -> "pd.DataFrame":
    """An evaluation report (the dict ``RMBG.evaluate.evaluate`` returns, its
    ``report.json`` or its folder) as a table: one row per model, or per model
    and category with ``per_category=True``; lower is better only for ``mae``
    and ``seconds_per_image``."""
    import pandas as pd

    report = _load_report(report)
    rows, index = [], []
    for name, result in report["models"].items():
        parts = result["per_category"].items() if per_category else [("all", result["summary"])]
        for category, values in parts:
            rows.append({key: values.get(key) for key in keys})
            index.append((name, category) if per_category else name)
    table = pd.DataFrame(rows, columns=list(keys), dtype=float)
    table.index = pd.MultiIndex.from_tuples(index, names=["model", "category"]) if per_category else pd.Index(
        index, name="model"
    )
    return table


def peer_models() -> list[Path]:
    """The peer ONNX models found (rembg's ``u2netp.onnx`` in ``../shared/peers``), maybe none."""
    from RMBG.constants import peer_model_path

    path = peer_model_path()
    return [path] if path is not None else []


def per_image_table(report_dir: str | os.PathLike, worst: int = 5, model: str | None = None) -> "pd.DataFrame":
    """The ``worst`` photos by MAE of ``model`` (default: the report's first model) from ``per_image.csv``."""
    import pandas as pd

    table = pd.read_csv(Path(report_dir) / "per_image.csv")
    model = model or str(table["model"].iloc[0])
    mine = table[table["model"] == model]
    columns = [c for c in ("image", "category", "model", "mae", "max_f", "s_measure", "iou") if c in mine]
    return mine.sort_values("mae", ascending=False).head(worst)[columns].reset_index(drop=True)


def benchmark(data_dir, model, peers: Sequence, n: int = 50, batch_size: int = 8) -> str:
    """``RMBG.bench`` of ``model`` against the first of ``peers``, as printable text (a note when none)."""
    if not peers:
        return "no peer model found (../shared/peers/u2netp.onnx): benchmark skipped"
    from RMBG.bench import bench, format_result

    return format_result(bench(data_dir, model, peers[0], n=n, batch_size=batch_size, progress=False))


def picture(path: str | os.PathLike, title: str | None = None, width: float = 9.0) -> Figure:
    """A picture file (a report's ``pr_curve.png`` or ``gallery.png``) as a Figure."""
    image = np.asarray(Image.open(path).convert("RGB"))
    height = width * image.shape[0] / image.shape[1]
    fig = Figure(figsize=(width, height + (0.3 if title else 0.0)), layout="constrained")
    ax = fig.add_subplot()
    ax.imshow(image)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=10)
    return fig


class EvaluateWidgets(WidgetPanel):
    """Data folder, model files, photo limit and a Run button: evaluate and show the results.

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

        wide = {"style": {"description_width": "110px"}, "layout": w.Layout(width="640px")}
        self.data_dir = w.Text(value=str(data_dir), description="data folder", **wide)
        self.models = w.Text(value=", ".join(str(m) for m in models), description="models",
                             placeholder="model files, comma-separated", **wide)
        self.peers = w.Text(value=", ".join(str(m) for m in peers), description="peers",
                            placeholder="ONNX U-2-Net files, comma-separated", **wide)
        self.out_dir = w.Text(value=str(out_dir), description="report folder", **wide)
        self.limit = w.IntSlider(value=limit or 0, min=0, max=1000, description="photos (0 = all)", **wide)
        self.button = w.Button(description="Evaluate", button_style="primary", icon="play")
        self.output = w.Output()
        self.button.on_click(self._clicked)
        self.box = w.VBox([self.data_dir, self.models, self.peers, self.out_dir, self.limit,
                           self.button, self.output])
        self.report = None

    @staticmethod
    def _paths(text: str) -> list[str]:
        return [part.strip() for part in text.split(",") if part.strip()]

    def run(self):
        from IPython.display import display

        from RMBG.evaluate import EvaluationError, evaluate

        """Evaluate what the fields say: show the table, PR curves and gallery; returns the report."""
        out = Path(self.out_dir.value.strip())
        try:
            self.report = evaluate(
                self.data_dir.value.strip(), models=self._paths(self.models.value),
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


# ---------------------------------------------------------------------------
# Training curves
# ---------------------------------------------------------------------------
#: Files of a run folder (``RMBG.train``) that the curves read.
EPOCH_LOG = "log.csv"
STEP_LOG = "val_steps.csv"
#: Columns of the logs that are not curves.
NOT_CURVES = {"epoch", "step", "time", "seconds", "best"}


def read_log(csv_log: str | os.PathLike) -> "pd.DataFrame":
    """A training CSV log as a DataFrame (empty when the file is missing or has no rows yet)."""
    import pandas as pd

    path = Path(csv_log)
    if not path.is_file() or path.stat().st_size == 0:
        return pd.DataFrame()
    try:
        return pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError):
        return pd.DataFrame()


def _curve_groups(log: "pd.DataFrame") -> dict[str, list[str]]:
    """metric name -> its numeric columns (``loss`` -> ``loss``, ``val_loss``), in log order."""
    import pandas as pd

    groups: dict[str, list[str]] = {}
    for column in log.columns:
        if column in NOT_CURVES or not pd.api.types.is_numeric_dtype(log[column]):
            continue
        base = column[4:] if column.startswith("val_") else column
        groups.setdefault(base, []).append(column)
    return groups


def _log_files(source) -> tuple["pd.DataFrame", "pd.DataFrame", str]:
    """(epoch log, validation-check log, name) of a run folder, a CSV file or a DataFrame."""
    import pandas as pd

    if isinstance(source, pd.DataFrame):
        return source, pd.DataFrame(), "log"
    path = Path(source)
    if path.is_dir():
        return read_log(path / EPOCH_LOG), read_log(path / STEP_LOG), path.name
    log = read_log(path)
    if "step" in log.columns and "epoch" in log.columns and "val_mae" in log.columns and "loss" not in log.columns:
        return pd.DataFrame(), log, path.name
    return log, pd.DataFrame(), path.name


def training_curves(source, title: str | None = None) -> Figure:
    """Training curves of a run: one panel per metric, training and validation together.

    ``source`` is a run folder of ``RMBG.train`` (its ``log.csv``, one row per
    epoch, and ``val_steps.csv``, one row per validation check), one such CSV
    file, or a DataFrame. Epochs are counted from 1; the learning rate gets a
    log scale; the validation checks get their own panel (MAE against step,
    the best ones marked). A run with no rows yet gives a figure that says so.
    """
    epochs, checks, name = _log_files(source)
    groups = _curve_groups(epochs) if not epochs.empty else {}
    panels = len(groups) + (0 if checks.empty or "val_mae" not in checks else 1)
    if panels == 0:
        fig = Figure(figsize=(5, 1.5), layout="constrained")
        ax = fig.add_subplot()
        ax.axis("off")
        ax.text(0.5, 0.5, f"{name}: no training log yet", ha="center", va="center")
        return fig
    cols = min(3, panels)
    rows = math.ceil(panels / cols)
    fig = Figure(figsize=(4.2 * cols, 3.0 * rows + 0.3), layout="constrained")
    axes = list(fig.subplots(rows, cols, squeeze=False).flat)
    for ax in axes[panels:]:
        ax.axis("off")
    xs = epochs["epoch"].to_numpy() + 1 if "epoch" in epochs else np.arange(1, len(epochs) + 1)
    for ax, (metric, columns) in zip(axes, groups.items()):
        for column in columns:
            label = "validation" if column.startswith("val_") else "training"
            ax.plot(xs, epochs[column].to_numpy(dtype=float), marker="o", markersize=3, label=label)
        if metric in {"lr", "learning_rate"}:
            ax.set_yscale("log")
        ax.set(title=metric, xlabel="epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        if len(columns) > 1:
            ax.legend(fontsize=8)
    if panels > len(groups):
        ax = axes[len(groups)]
        steps, mae = checks["step"].to_numpy(), checks["val_mae"].to_numpy(dtype=float)
        ax.plot(steps, mae, marker="o", markersize=3, color="tab:orange", label="validation MAE")
        if "best" in checks:
            best = checks["best"].to_numpy() == 1
            ax.plot(steps[best], mae[best], "*", markersize=9, color="tab:green", label="best so far (kept)")
        ax.set(title="validation checks", xlabel="training step", ylabel="MAE")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title or f"{name}: {len(epochs)} epochs logged, {len(checks)} validation checks", fontsize=10)
    return fig


class LiveCurves:
    """:func:`training_curves` of a run folder (or CSV log), redrawn in one notebook output as it grows.

    :meth:`update` redraws when the logs changed; :meth:`start` does it every
    few seconds from a background thread until :meth:`stop` (the run itself
    keeps the main thread, so interrupting the cell stops the run). Outside a
    notebook it only keeps the latest figure in ``self.figure``.
    """

    def __init__(self, source: str | os.PathLike, title: str | None = None):
        import threading

        self.source = Path(source)
        self.title = title
        self.figure: Figure | None = None
        self.updates = 0
        self._handle = None
        self._signature = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None

    def _files(self) -> list[Path]:
        return [self.source / EPOCH_LOG, self.source / STEP_LOG] if self.source.is_dir() or not self.source.suffix \
            else [self.source]

    def signature(self) -> tuple:
        """Sizes and times of the log files: changes whenever a row is written."""
        return tuple((p.stat().st_size, p.stat().st_mtime_ns) if p.is_file() else None for p in self._files())

    def update(self, force: bool = False) -> bool:
        """Redraw when the logs changed since the last call (or ``force``); True when it redrew."""
        with self._lock:
            signature = self.signature()
            if signature == self._signature and not force:
                return False
            self._signature = signature
            self.figure = training_curves(self.source, self.title)
            self.updates += 1
            self._publish()
            return True

    def _publish(self) -> None:
        try:
            from IPython import get_ipython
            from IPython.display import display
        except ImportError:
            return
        if get_ipython() is None:
            return
        if self._handle is None:
            self._handle = display(self.figure, display_id=True)
        else:
            self._handle.update(self.figure)

    def start(self, every: float = 5.0) -> "LiveCurves":
        """Show the curves now and redraw them every ``every`` seconds in a background thread."""
        import threading

        self.update(force=True)
        self._stop.clear()

        def loop():
            while not self._stop.wait(every):
                self.update()

        self._thread = threading.Thread(target=loop, name="LiveCurves", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the background redraws and draw the final curves."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.update()


def live_training_curves(source: str | os.PathLike, title: str | None = None) -> LiveCurves:
    """A :class:`LiveCurves` for a run folder or CSV log (call ``.start()``, then ``.stop()``)."""
    return LiveCurves(source, title)


def fit_with_curves(config, every: float = 5.0):
    """``RMBG.train.fit(config)`` with its training curves redrawn every ``every`` seconds.

    Returns the ``FitResult``; the curves stay in the cell output.
    """
    from RMBG.train import fit

    curves = LiveCurves(config.out).start(every)
    try:
        return fit(config)
    finally:
        curves.stop()


def prediction_grid(model, dataset_dir: str | os.PathLike, n: int = 3, split: str | None = "val",
                    seed: int = SEED) -> Figure:
    """Photo | ground truth | predicted mask for ``n`` pairs of a dataset (``split`` when it has one)."""
    from RMBG.data import limit_pairs, list_pairs
    from RMBG.imageio import read_image, read_mask
    from RMBG.metrics import score_image
    from RMBG.runtime import load_segmenter

    pairs, _skipped = list_pairs(dataset_dir)
    chosen = [p for p in pairs if split is None or p.split == split] or pairs
    chosen = limit_pairs(chosen, n, seed)
    if not chosen:
        raise ValueError(f"{dataset_dir}: no image/mask pairs")
    segmenter = load_segmenter(model)
    images = [read_image(p.image) for p in chosen]
    masks = segmenter.predict(images)
    fig = Figure(figsize=(8.4, 2.6 * len(chosen) + 0.4), layout="constrained")
    axes = fig.subplots(len(chosen), 3, squeeze=False)
    for row, (pair, image, mask) in enumerate(zip(chosen, images, masks)):
        truth = read_mask(pair.mask)
        error = score_image(mask, truth).mae
        for ax, picture, label in zip(axes[row], (image, truth, mask),
                                      (pair.name, "ground truth", f"predicted, MAE {error:.3f}")):
            _show(ax, picture)
            ax.set_title(label, fontsize=9)
    fig.suptitle(f"{Path(str(getattr(segmenter, 'path', model) or model)).name} on {len(chosen)} "
                 f"{split or ''} photos of {Path(dataset_dir).name}", fontsize=10)
    return fig


# ---------------------------------------------------------------------------
# Before / after
# ---------------------------------------------------------------------------
#: Shared folder with the original project's demo inputs and its outputs for them.
ORIGINAL_SET = "seed_test"
#: Background colour the notebooks start the ``color`` mode with.
DEFAULT_BG = "#2E8B57"


def _as_array(picture) -> np.ndarray:
    if isinstance(picture, (str, os.PathLike)):
        from RMBG.imageio import open_image

        picture = open_image(picture)
    if isinstance(picture, Image.Image):
        if picture.mode not in {"RGB", "RGBA", "L"}:
            picture = picture.convert("RGBA" if "A" in picture.getbands() else "RGB")
        return np.asarray(picture)
    return np.asarray(picture)


def _show(ax, picture: np.ndarray) -> None:
    """Draw a photo, a mask (grey) or a cut-out (RGBA over a checkerboard) on ``ax``."""
    from RMBG.compose import checkerboard

    thumb = _thumbnail(picture)
    if thumb.ndim == 2:
        ax.imshow(thumb, cmap="gray", vmin=0, vmax=255)
    elif thumb.shape[2] == 4:
        ax.imshow(checkerboard(*thumb.shape[:2], cell=max(4, min(thumb.shape[:2]) // 24)))
        ax.imshow(thumb)
    else:
        ax.imshow(thumb)
    ax.axis("off")


def _name(picture, k: int) -> str:
    return Path(str(picture)).name if isinstance(picture, (str, os.PathLike)) else f"image {k + 1}"


def side_by_side(
    images: Sequence,
    results: Sequence,
    titles: Sequence[str] | None = None,
    labels: tuple[str, str] = ("before", "after"),
) -> Figure:
    """One row per photo: the photo, then its result (cut-out on a checkerboard, mask or composite).

    ``images`` and ``results`` are paths, PIL images or arrays, in the same
    order; results may be RGBA (transparency shown as a checkerboard), RGB
    or single-channel masks.
    """
    images, results = list(images), list(results)
    if len(images) != len(results):
        raise ValueError(f"{len(images)} images but {len(results)} results")
    if not images:
        raise ValueError("nothing to show: no images")
    titles = list(titles) if titles is not None else [_name(p, k) for k, p in enumerate(images)]
    fig = Figure(figsize=(8, 3.6 * len(images)), layout="constrained")
    axes = fig.subplots(len(images), 2, squeeze=False)
    for row, (image, result, title) in enumerate(zip(images, results, titles)):
        _show(axes[row][0], _as_array(image))
        _show(axes[row][1], _as_array(result))
        axes[row][0].set_title(f"{title}: {labels[0]}", fontsize=9)
        axes[row][1].set_title(labels[1], fontsize=9)
    return fig


def example_photos(n: int | None = None, data_root: str | os.PathLike | None = None) -> list[Path]:
    """Photos to cut out: the original project's demo inputs (when ``../shared`` is there) and
    the demo photos that installed packages ship (``RMBG.demo``), at most ``n``."""
    from RMBG.demo import write_samples
    from RMBG.imageio import list_images

    root = Path(data_root) if data_root is not None else shared_data_dir()
    photos = list_images(root / ORIGINAL_SET / "images") if root is not None else []
    photos += [Path(p) for p in write_samples()]
    return photos[:n] if n is not None else photos


def example_background():
    """A photo to put behind cut-outs in the ``image`` mode (``RMBG.demo``'s), or None."""
    from RMBG.demo import background_source

    return background_source()


def remove_all(photos: Sequence, model=None, **options) -> list[Image.Image]:
    """``RMBG.predict.remove_background`` on every photo, same options (``mode``, ``refine``...)."""
    from RMBG.predict import remove_background

    return [remove_background(photo, model, **options) for photo in photos]


def mode_grid(photo, model=None, modes: Sequence[str] | None = None, bg_color: str = DEFAULT_BG,
              bg_image=None, refine: str = "none", cols: int = 3) -> Figure:
    """One photo in every output mode of ``RMBG.compose`` (``image`` only with ``bg_image``)."""
    from RMBG.compose import MODES
    from RMBG.predict import to_rgb

    modes = [m for m in (modes or MODES) if m != "image" or bg_image is not None]
    image = to_rgb(photo)
    mask = _alpha(image, model, refine)
    pictures = [("input", image)] + [(m, _compose(image, mask, m, bg_color, bg_image)) for m in modes]
    rows = math.ceil(len(pictures) / cols)
    fig = Figure(figsize=(4.0 * cols, 3.4 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (label, picture) in zip(axes.flat, pictures):
        _show(ax, _as_array(picture))
        ax.set_title(label, fontsize=9)
    fig.suptitle(f"{_name(photo, 0)} in every output mode", fontsize=10)
    return fig


def _alpha(image: np.ndarray, model=None, refine: str = "none", runtime: str | None = None) -> np.ndarray:
    """The full-size alpha of ``image`` as ``remove_background`` makes it."""
    from RMBG.predict import DEFAULT_RUNTIME, finish_mask
    from RMBG.runtime import load_segmenter

    segmenter = load_segmenter(model, runtime=runtime or DEFAULT_RUNTIME)
    return finish_mask(image, segmenter.predict_small([image])[0], refine)


def _compose(image, mask, mode, bg_color=DEFAULT_BG, bg_image=None):
    from RMBG.compose import compose

    return compose(image, mask, mode, bg_color=bg_color, bg_image=bg_image)


def refine_grid(photo, model=None, methods: Sequence[str] = ("none", "guided"), crop: float = 0.35) -> Figure:
    """The mask of ``photo`` with each refinement method, whole and zoomed where the mask is least sure."""
    from RMBG.predict import to_rgb

    image = to_rgb(photo)
    masks = [(method, _alpha(image, model, method)) for method in methods]
    box = _edge_box(masks[0][1], crop)
    fig = Figure(figsize=(3.4 * (len(masks) + 1), 6.4), layout="constrained")
    axes = fig.subplots(2, len(masks) + 1, squeeze=False)
    top, bottom, left, right = box
    _show(axes[0][0], image)
    axes[0][0].set_title(_name(photo, 0), fontsize=9)
    axes[0][0].add_patch(_rectangle(box, min(1.0, THUMB_SIDE / max(image.shape[:2]))))
    _show(axes[1][0], image[top:bottom, left:right])
    axes[1][0].set_title("zoom", fontsize=9)
    for k, (method, mask) in enumerate(masks, start=1):
        _show(axes[0][k], mask)
        axes[0][k].set_title(f"refine={method}", fontsize=9)
        _show(axes[1][k], _compose(image[top:bottom, left:right], mask[top:bottom, left:right], "rgba"))
        axes[1][k].set_title(f"cut-out, refine={method}", fontsize=9)
    return fig


def _edge_box(mask: np.ndarray, crop: float) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of a ``crop``-sized window holding the most unsure mask pixels."""
    import cv2

    height, width = mask.shape
    h, w = max(8, int(height * crop)), max(8, int(width * crop))
    unsure = ((mask > 0.05) & (mask < 0.95)).astype(np.float32)
    if unsure.sum() == 0:
        cy, cx = height // 2, width // 2
    else:
        density = cv2.boxFilter(unsure, -1, (w, h), normalize=True, borderType=cv2.BORDER_CONSTANT)
        cy, cx = np.unravel_index(int(np.argmax(density)), density.shape)
    top = int(min(max(0, cy - h // 2), height - h))
    left = int(min(max(0, cx - w // 2), width - w))
    return top, top + h, left, left + w


def _rectangle(box, scale: float = 1.0):
    """A red frame around ``box`` (full-size pixels) on a picture drawn at ``scale`` (a thumbnail)."""
    from matplotlib.patches import Rectangle

    top, bottom, left, right = (v * scale for v in box)
    return Rectangle((left, top), right - left, bottom - top, fill=False, edgecolor="red", linewidth=1.5)


def original_comparison(model=None, data_root: str | os.PathLike | None = None, n: int | None = None) -> Figure:
    """The original project's ``predict.py`` pictures beside ours (``side-by-side`` mode) for its demo inputs.

    Needs ``../shared/data/seed_test``; without it the figure says so.
    """
    from RMBG.imageio import list_images

    root = Path(data_root) if data_root is not None else shared_data_dir()
    folder = root / ORIGINAL_SET if root is not None else None
    inputs = list_images(folder / "images")[:n] if folder is not None and (folder / "images").is_dir() else []
    if not inputs:
        fig = Figure(figsize=(6, 1.2), layout="constrained")
        ax = fig.add_subplot()
        ax.axis("off")
        ax.text(0.5, 0.5, "the original project's demo outputs are in ../shared/data/seed_test (absent here)",
                ha="center", va="center", fontsize=9)
        return fig
    originals = [folder / "seed_outputs" / f"mask{p.stem}.jpg" for p in inputs]
    ours = remove_all(inputs, model, mode="side-by-side")
    fig = Figure(figsize=(11, 2.9 * len(inputs) + 0.3), layout="constrained")
    axes = fig.subplots(len(inputs), 2, squeeze=False)
    for row, (photo, original, mine) in enumerate(zip(inputs, originals, ours)):
        if original.is_file():
            _show(axes[row][0], _as_array(original))
        axes[row][0].set_title(f"{photo.name}: the original predict.py", fontsize=9)
        _show(axes[row][1], _as_array(mine))
        axes[row][1].set_title("RMBG remove --mode side-by-side", fontsize=9)
    return fig


# ---------------------------------------------------------------------------
# Widgets
# ---------------------------------------------------------------------------
#: Preset fields that have a widget in :class:`PresetWidgets`, in display order.
SLIDER_FIELDS = ("image_size", "batch", "lr", "epochs", "split")
#: What to do when the run folder already holds a run: (label, TrainConfig flag).
EXISTING_RUN = (("start again (overwrite it)", "overwrite"), ("resume it", "resume"), ("stop with an error", "none"))


def _wide(width: str = "460px") -> dict:
    import ipywidgets as w

    return {"style": {"description_width": "110px"}, "layout": w.Layout(width=width)}


#: Preset fields shown by :func:`preset_table`.
PRESET_COLUMNS = ("image_size", "crop_size", "batch", "lr", "epochs", "split", "steps_per_epoch", "loss",
                  "optimizer", "freeze_bn", "freeze", "blend")


def preset_table(arch: str = "u2netp", columns: Sequence[str] = PRESET_COLUMNS) -> "pd.DataFrame":
    """The presets table of ``RMBG.presets`` for ``arch`` (its overrides applied), one row per preset."""
    import pandas as pd

    from RMBG.presets import get_preset, preset_names

    rows = {name: {c: getattr(get_preset(name, arch), c) for c in columns} for name in preset_names()}
    return pd.DataFrame.from_dict(rows, orient="index")[list(columns)]


class PresetWidgets(WidgetPanel):
    """Preset selector whose choice fills editable sliders, plus folders and a Train button.

    Choosing a preset (or an architecture) copies its values into the sliders
    (image size, batch, learning rate on a log scale, epochs, validation
    split); moving a slider afterwards overrides that value only. The
    ``finetune`` preset also fills the start-weights field with the imported
    u2netp model. :meth:`values` reads every widget, :meth:`preset` gives the
    ``RMBG.presets.Preset`` they describe, :meth:`config` the
    ``RMBG.train.TrainConfig`` and :meth:`run` trains it with live curves
    (the button runs it into the output under the widgets).

    In quick mode (``RMBG.constants.quick_mode()``, set in CI) the widgets
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

        from RMBG.model import ARCHES
        from RMBG.presets import PRESETS, SLIDERS

        self.presets = dict(presets) if presets is not None else dict(PRESETS)
        self.quick = quick_mode() if quick is None else bool(quick)
        start = preset or (QUICK_PRESET if self.quick else next(iter(self.presets)))
        if start not in self.presets:
            raise ValueError(f"unknown preset {start!r}: choose one of {', '.join(self.presets)}")
        self.preset_box = w.Dropdown(options=list(self.presets), value=start, description="preset", **_wide())
        self.arch = w.Dropdown(options=list(ARCHES), value=arch, description="architecture", **_wide())
        self.description = w.HTML()
        lo, hi, step = SLIDERS["image_size"]
        self.image_size = w.IntSlider(min=lo, max=hi, step=step, description="image size", **_wide())
        lo, hi, step = SLIDERS["batch"]
        self.batch = w.IntSlider(min=lo, max=hi, step=step, description="batch", **_wide())
        lo, hi, _ = SLIDERS["lr"]
        self.lr = w.FloatLogSlider(base=10, min=math.log10(lo), max=math.log10(hi), step=0.1,
                                   readout_format=".1e", description="learning rate", **_wide())
        lo, hi, step = SLIDERS["epochs"]
        self.epochs = w.IntSlider(min=lo, max=hi, step=step, description="epochs", **_wide())
        lo, hi, step = SLIDERS["split"]
        self.split = w.FloatSlider(min=lo, max=hi, step=step, readout_format=".2f",
                                   description="validation split", **_wide())
        self.data_dir = w.Text(value=str(data_dir), description="data folder", **_wide())
        self.out_dir = w.Text(value=str(out_dir), description="run folder", **_wide())
        self.init = w.Text(description="start weights", placeholder="none: random weights", **_wide())
        self.existing = w.Dropdown(options=list(EXISTING_RUN), value="overwrite",
                                   description="existing run", **_wide())
        self.note = w.HTML()
        self.run_button = w.Button(description="Train", button_style="primary", icon="play")
        self.output = w.Output()
        self.extra: dict[str, Any] = {}
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
        from RMBG.presets import PRESETS, get_preset

        name = self.preset_box.value
        if name in PRESETS and self.presets[name] is PRESETS[name]:
            return get_preset(name, self.arch.value)
        return self.presets[name]

    def _fill(self, change=None) -> None:
        """Copy the chosen preset's values (for the chosen architecture) into the sliders."""
        from RMBG.constants import IMPORTED_U2NETP_PATH

        preset = self._base()
        for field in SLIDER_FIELDS:
            widget = getattr(self, field)
            value = getattr(preset, field)
            widget.value = value if field == "lr" else min(max(value, widget.min), widget.max)
        wants_weights = bool(preset.freeze) or preset.freeze_bn
        self.init.value = str(IMPORTED_U2NETP_PATH) if wants_weights and self.arch.value == "u2netp" else ""
        self.extra = {}
        self._describe()

    def _describe(self) -> None:
        self.description.value = f"<i>{getattr(self._base(), 'description', '')}</i>"
        if self.extra:
            listed = ", ".join(f"{k}={v}" for k, v in self.extra.items())
            self.note.value = f"<b>quick mode</b> (CI): a small run, also {listed}"
        else:
            self.note.value = ""

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
        from RMBG.presets import MIN_SIZE

        values = self.values()
        changes = {field: values[field] for field in SLIDER_FIELDS}
        base = self._base()
        if base.crop_size and values["image_size"] != base.image_size:
            # keep the recipe's crop-to-image ratio (and its fixed crop scale) at the new size
            ratio = base.crop_size / base.image_size
            crop = max(MIN_SIZE, int(round(values["image_size"] * ratio / MIN_SIZE)) * MIN_SIZE)
            changes["crop_size"] = min(crop, values["image_size"])
            if base.crop_scale[0] == base.crop_scale[1]:
                area = round((changes["crop_size"] / values["image_size"]) ** 2, 4)
                changes["crop_scale"] = (area, area)
        changes.update(self.extra)
        return changes

    def preset(self):
        """The ``RMBG.presets.Preset`` the widgets describe (validated)."""
        from dataclasses import replace

        return replace(self._base(), **self.overrides())

    def config(self, **changes):
        """The ``RMBG.train.TrainConfig`` for these values (``changes`` override its fields)."""
        from RMBG.train import TrainConfig

        values = self.values()
        if not values["data"] or not values["out"]:
            raise ValueError("fill in the data folder and the run folder")
        options = {"overwrite": values["existing"] == "overwrite", "resume": values["existing"] == "resume"}
        options.update(changes)
        return TrainConfig(data=values["data"], out=values["out"], arch=values["arch"], preset=self.preset(),
                           init=values["init"], **options)

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


class RemoveWidgets(WidgetPanel):
    """Image chooser, output mode, background colour and refinement; the side-by-side redraws on change.

    The model runs once per photo (its mask at model size is kept); changing
    the mode or colour only recomposes, changing the refinement re-finishes
    the mask (``matting`` compiles with numba on first use: about a minute).
    :meth:`result` gives the current output picture, :meth:`figure` the
    side-by-side figure, :meth:`redraw` puts it under the widgets.
    """

    def __init__(self, photos: Sequence, model=None, mode: str = "rgba", bg_color: str = DEFAULT_BG,
                 refine: str = "none", bg_image=None, draw: bool = True):
        import ipywidgets as w

        from RMBG.compose import MODES
        from RMBG.refine import REFINE_METHODS

        self.photos = [Path(p) for p in photos]
        if not self.photos:
            raise ValueError("no photos to choose from")
        self.model, self.bg_image = model, bg_image
        modes = [m for m in MODES if m != "image" or bg_image is not None]
        self.image = w.Dropdown(options=[(p.name, str(p)) for p in self.photos], value=str(self.photos[0]),
                                description="photo", **_wide())
        self.mode = w.ToggleButtons(options=modes, value=mode, description="mode", **_wide("720px"))
        self.bg_color = w.ColorPicker(value=bg_color, description="background", **_wide())
        self.refine = w.ToggleButtons(options=list(REFINE_METHODS), value=refine, description="refine",
                                      **_wide())
        self.output = w.Output()
        self._small: dict[str, np.ndarray] = {}
        self._rgb: dict[str, np.ndarray] = {}
        self.redraws = 0
        for widget in (self.image, self.mode, self.bg_color, self.refine):
            widget.observe(lambda _change: self.redraw(), names="value")
        self.box = w.VBox([self.image, self.mode, self.bg_color, self.refine, self.output])
        if draw:
            self.redraw()

    def _mask(self) -> tuple[np.ndarray, np.ndarray]:
        from RMBG.predict import DEFAULT_RUNTIME, finish_mask, to_rgb
        from RMBG.runtime import load_segmenter

        key = self.image.value
        if key not in self._small:
            self._rgb[key] = to_rgb(key)
            segmenter = load_segmenter(self.model, runtime=DEFAULT_RUNTIME)
            self._small[key] = segmenter.predict_small([self._rgb[key]])[0]
        image = self._rgb[key]
        return image, finish_mask(image, self._small[key], self.refine.value)

    def result(self) -> Image.Image:
        """The output picture for the current choices (what ``remove_background`` returns)."""
        image, mask = self._mask()
        return _compose(image, mask, self.mode.value, self.bg_color.value, self.bg_image)

    def figure(self) -> Figure:
        picture = self.result()
        label = f"mode={self.mode.value}, refine={self.refine.value}"
        if self.mode.value == "color":
            label += f", {self.bg_color.value}"
        return side_by_side([self.image.value], [picture], labels=("before", label))

    def redraw(self) -> Figure:
        """Recompute for the current choices and show it under the widgets."""
        from IPython.display import display

        fig = self.figure()
        self.redraws += 1
        self.output.clear_output(wait=True)
        with self.output:
            display(fig)
        return fig



def remove_widgets(photos: Sequence, model=None, **kwargs) -> RemoveWidgets:
    """The background-removal widgets (see :class:`RemoveWidgets`)."""
    return RemoveWidgets(photos, model, **kwargs)


enable_inline_figures()
