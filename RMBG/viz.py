"""Figures, tables and widgets for the notebooks.

The notebooks only call what lives here and in the other modules, so that
everything they show is code that is tested. Figures are built with
:class:`matplotlib.figure.Figure` (no pyplot, no global state) and returned;
Jupyter shows a returned figure as a picture once :func:`enable_inline_figures`
has run (importing this module runs it when an IPython kernel is active), and
``fig.savefig(path)`` writes it anywhere.

- Data: :func:`example_sources` and :func:`heldout_source` (the data the
  notebooks use), :func:`check_sources`,
  :func:`pair_grid` (photos beside their masks), :func:`check_table`.
- Training: :class:`PresetWidgets` (:func:`preset_widgets`),
  :func:`training_curves` and :class:`LiveCurves` (curves redrawn from the
  CSV log while a run trains).
- Evaluation: :func:`metric_table`, :func:`picture` (a PNG a report wrote).
- Removal: :func:`side_by_side` and :class:`RemoveWidgets` (:func:`remove_widgets`).
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
#: Transparency checkerboard of the side-by-side pictures: greys and cell size in pixels.
CHECKER_GREYS = (204, 153)
CHECKER_CELL = 12
#: Shared sets the notebooks prepare by default: (kind for ``Preprocess.prepare``, folder).
EXAMPLE_SETS = (("people", "people"), ("folder", "cats"))
#: Shared set kept out of the example data, for evaluation.
HELDOUT_SET = "ecssd"
#: Metrics shown by :func:`metric_table` unless asked otherwise (see ``RMBG.metrics``).
TABLE_KEYS = ("mae", "max_f", "mean_f", "weighted_f", "s_measure", "max_e", "iou", "seconds_per_image")
#: In quick mode (CI) the training widgets start from this small run.
QUICK_PRESET = "sample"
QUICK_OVERRIDES = {"epochs": 1, "steps_per_epoch": 3, "val_limit": 4}


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


def heldout_source(data_root: str | os.PathLike | None = None) -> Path:
    """A folder of photos with masks that :func:`example_sources` leaves out, for evaluation.

    The shared ECSSD set, or the demo pairs when ``../shared`` is absent.
    """
    root = Path(data_root) if data_root is not None else shared_data_dir()
    if root is not None and (root / HELDOUT_SET / "images").is_dir():
        return root / HELDOUT_SET
    return demo_pairs()


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
    from RMBG.imageio import read_image
    from RMBG.predict import predict_mask

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
            mask = predict_mask(read_image(photo))
            Image.fromarray(np.round(np.clip(mask, 0, 1) * 255).astype(np.uint8), mode="L").save(mask_out)
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


class DatasetWidgets:
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
        self.button.on_click(lambda _button: self.run())
        self.box = w.VBox([self.data_dir, self.n, self.button, self.output])
        self.report = None

    def run(self):
        """Check the folder in the field; show the report and the grid under the widgets."""
        from IPython.display import display

        from Preprocess.check import check_dataset, format_table

        self.output.clear_output()
        with self.output:
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

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.box)


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


class EvaluateWidgets:
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
        self.button.on_click(lambda _button: self.run())
        self.box = w.VBox([self.data_dir, self.models, self.peers, self.out_dir, self.limit,
                           self.button, self.output])
        self.report = None

    @staticmethod
    def _paths(text: str) -> list[str]:
        return [part.strip() for part in text.split(",") if part.strip()]

    def run(self):
        from IPython.display import display

        from RMBG.evaluate import EvaluationError, evaluate

        out = Path(self.out_dir.value.strip())
        self.output.clear_output()
        with self.output:
            try:
                self.report = evaluate(
                    self.data_dir.value.strip(), models=self._paths(self.models.value),
                    peers=self._paths(self.peers.value), out_dir=out, limit=self.limit.value or None,
                    progress=False,
                )
            except (EvaluationError, FileNotFoundError, ValueError) as exc:
                print(f"cannot evaluate: {exc}")
                return None
            display(metric_table(self.report))
            display(picture(out / "pr_curve.png", width=5.5))
            if (out / "gallery.png").is_file():
                display(picture(out / "gallery.png"))
        return self.report

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.box)


def evaluate_widgets(data_dir="", models=(), peers=(), out_dir="", limit=None) -> EvaluateWidgets:
    """The evaluation widgets (see :class:`EvaluateWidgets`)."""
    return EvaluateWidgets(data_dir, models, peers, out_dir, limit)


# ---------------------------------------------------------------------------
# Training curves
# ---------------------------------------------------------------------------
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


def _curve_groups(columns: Sequence[str], x: str) -> dict[str, list[str]]:
    """metric name -> its columns (``loss`` -> ``loss``, ``val_loss``), in log order."""
    groups: dict[str, list[str]] = {}
    for column in columns:
        if column == x or column in {"epoch", "step", "time", "seconds"}:
            continue
        base = column[4:] if column.startswith("val_") else column
        groups.setdefault(base, []).append(column)
    return groups


def training_curves(csv_log: str | os.PathLike | "pd.DataFrame", title: str | None = None) -> Figure:
    """Training curves from a CSV log: one panel per metric (train and ``val_`` together).

    The x axis is ``step`` when the log has that column, else ``epoch``
    (counted from 1). The learning rate, when logged, gets a log-scale panel.
    An empty or missing log gives a figure that says so.
    """
    import pandas as pd

    log = csv_log if isinstance(csv_log, pd.DataFrame) else read_log(csv_log)
    x = "step" if "step" in log.columns else "epoch"
    numeric = [c for c in log.columns if pd.api.types.is_numeric_dtype(log[c])]
    groups = _curve_groups(numeric, x)
    if log.empty or not groups:
        fig = Figure(figsize=(5, 2), layout="constrained")
        ax = fig.add_subplot()
        ax.axis("off")
        ax.text(0.5, 0.5, "no training log yet", ha="center", va="center")
        return fig
    xs = log[x].to_numpy() + (1 if x == "epoch" else 0) if x in log.columns else np.arange(1, len(log) + 1)
    cols = min(3, len(groups))
    rows = math.ceil(len(groups) / cols)
    fig = Figure(figsize=(4.2 * cols, 3.0 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat[len(groups):]:
        ax.axis("off")
    for ax, (name, columns) in zip(axes.flat, groups.items()):
        for column in columns:
            values = log[column].to_numpy(dtype=float)
            label = "validation" if column.startswith("val_") else "training"
            ax.plot(xs, values, marker="o" if len(xs) < 30 else None, markersize=3, label=label)
        if name in {"lr", "learning_rate"}:
            ax.set_yscale("log")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel(x)
        ax.grid(alpha=0.3)
        if len(columns) > 1:
            ax.legend(fontsize=8)
    fig.suptitle(title or f"{Path(str(csv_log)).name if not isinstance(csv_log, pd.DataFrame) else 'log'}: "
                 f"{len(log)} rows", fontsize=10)
    return fig


class LiveCurves:
    """Redraws :func:`training_curves` from a CSV log in one notebook output while a run trains.

    Use it as a Keras callback (``callbacks=[LiveCurves(log)]``: it redraws
    at the end of every epoch, after the CSV logger has written the row) or
    call :meth:`update` from anywhere (a loop polling a background run).
    Outside a notebook it only keeps the latest figure in ``self.figure``.
    """

    def __init__(self, csv_log: str | os.PathLike, title: str | None = None):
        self.csv_log = Path(csv_log)
        self.title = title
        self.figure: Figure | None = None
        self.updates = 0
        self._handle = None
        self._last_size = -1
        self.model = None

    def update(self, force: bool = False) -> bool:
        """Redraw when the log changed since the last call; True when it redrew."""
        size = self.csv_log.stat().st_size if self.csv_log.is_file() else 0
        if size == self._last_size and not force:
            return False
        self._last_size = size
        self.figure = training_curves(self.csv_log, self.title)
        self.updates += 1
        try:
            from IPython import get_ipython
            from IPython.display import display
        except ImportError:
            return True
        if get_ipython() is None:
            return True
        if self._handle is None:
            self._handle = display(self.figure, display_id=True)
        else:
            self._handle.update(self.figure)
        return True

    def poll(self, until: Callable[[], bool], every: float = 5.0, timeout: float | None = None) -> int:
        """Call :meth:`update` every ``every`` seconds until ``until()`` is true; returns the redraws."""
        import time

        start, count = time.monotonic(), 0
        while True:
            done = until()
            count += int(self.update())
            if done or (timeout is not None and time.monotonic() - start > timeout):
                return count
            time.sleep(every)

    # the parts of the Keras callback protocol this class answers (duck-typed, no Keras import)
    def set_model(self, model) -> None:
        self.model = model

    def set_params(self, params) -> None:
        self.params = params

    def on_epoch_end(self, epoch, logs=None) -> None:
        self.update()

    def on_train_end(self, logs=None) -> None:
        self.update()

    def __getattr__(self, name: str):
        if name.startswith("on_"):
            return lambda *args, **kwargs: None
        raise AttributeError(name)


def live_training_curves(csv_log: str | os.PathLike, title: str | None = None) -> LiveCurves:
    """A :class:`LiveCurves` for ``csv_log``: pass it to training as a callback."""
    return LiveCurves(csv_log, title)


# ---------------------------------------------------------------------------
# Before / after
# ---------------------------------------------------------------------------
def _as_array(picture) -> np.ndarray:
    if isinstance(picture, (str, os.PathLike)):
        from RMBG.imageio import open_image

        picture = open_image(picture)
    if isinstance(picture, Image.Image):
        if picture.mode not in {"RGB", "RGBA", "L"}:
            picture = picture.convert("RGBA" if "A" in picture.getbands() else "RGB")
        return np.asarray(picture)
    return np.asarray(picture)


def checkerboard(height: int, width: int, cell: int = CHECKER_CELL) -> np.ndarray:
    """``HxWx3`` uint8 grey checkerboard, the usual picture of transparency."""
    rows = (np.arange(height) // cell)[:, None]
    cols = (np.arange(width) // cell)[None, :]
    board = np.where((rows + cols) % 2 == 0, CHECKER_GREYS[0], CHECKER_GREYS[1]).astype(np.uint8)
    return np.repeat(board[..., None], 3, axis=2)


def _show(ax, picture: np.ndarray) -> None:
    """Draw a photo, a mask (grey) or a cut-out (RGBA over a checkerboard) on ``ax``."""
    thumb = _thumbnail(picture)
    if thumb.ndim == 2:
        ax.imshow(thumb, cmap="gray", vmin=0, vmax=255)
    elif thumb.shape[2] == 4:
        ax.imshow(checkerboard(*thumb.shape[:2], cell=max(4, min(thumb.shape[:2]) // 24)))
        ax.imshow(thumb)
    else:
        ax.imshow(thumb)
    ax.axis("off")


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
    titles = list(titles) if titles is not None else [
        Path(str(p)).name if isinstance(p, (str, os.PathLike)) else f"image {k + 1}" for k, p in enumerate(images)
    ]
    fig = Figure(figsize=(8, 3.6 * len(images)), layout="constrained")
    axes = fig.subplots(len(images), 2, squeeze=False)
    for row, (image, result, title) in enumerate(zip(images, results, titles)):
        _show(axes[row][0], _as_array(image))
        _show(axes[row][1], _as_array(result))
        axes[row][0].set_title(f"{title}: {labels[0]}", fontsize=9)
        axes[row][1].set_title(labels[1], fontsize=9)
    return fig


# ---------------------------------------------------------------------------
# Widgets
# ---------------------------------------------------------------------------
#: Preset fields that have a widget in :class:`PresetWidgets`, in display order.
SLIDER_FIELDS = ("image_size", "batch", "lr", "epochs", "split")


class PresetWidgets:
    """Preset selector whose choice fills editable sliders, plus data/output folders and a run button.

    Choosing a preset (or an architecture) copies its values into the sliders;
    moving a slider afterwards overrides that value only. :meth:`values` reads
    every widget, :meth:`preset` gives the ``RMBG.presets.Preset`` they
    describe and :meth:`config` the training configuration. ``on_run(self)``
    is called when the button is clicked, its output shown under the widgets.

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
        init: str | os.PathLike | None = None,
        quick: bool | None = None,
        on_run: Callable[["PresetWidgets"], Any] | None = None,
    ):
        import ipywidgets as w

        from RMBG.model import ARCHES
        from RMBG.presets import PRESETS, SLIDERS

        self.presets = dict(presets) if presets is not None else dict(PRESETS)
        self.quick = quick_mode() if quick is None else bool(quick)
        self.on_run = on_run
        start = preset or (QUICK_PRESET if self.quick else next(iter(self.presets)))
        if start not in self.presets:
            raise ValueError(f"unknown preset {start!r}: choose one of {', '.join(self.presets)}")
        wide = {"style": {"description_width": "110px"}, "layout": w.Layout(width="460px")}
        self.preset_box = w.Dropdown(options=list(self.presets), value=start, description="preset", **wide)
        self.arch = w.Dropdown(options=list(ARCHES), value=arch, description="architecture", **wide)
        self.description = w.HTML()
        lo, hi, step = SLIDERS["image_size"]
        self.image_size = w.IntSlider(min=lo, max=hi, step=step, description="image size", **wide)
        lo, hi, step = SLIDERS["batch"]
        self.batch = w.IntSlider(min=lo, max=hi, step=step, description="batch", **wide)
        lo, hi, _ = SLIDERS["lr"]
        self.lr = w.FloatLogSlider(
            base=10, min=math.log10(lo), max=math.log10(hi), step=0.1, readout_format=".1e",
            description="learning rate", **wide,
        )
        lo, hi, step = SLIDERS["epochs"]
        self.epochs = w.IntSlider(min=lo, max=hi, step=step, description="epochs", **wide)
        lo, hi, step = SLIDERS["split"]
        self.split = w.FloatSlider(min=lo, max=hi, step=step, readout_format=".2f",
                                   description="validation split", **wide)
        self.data_dir = w.Text(value=str(data_dir), description="data folder", **wide)
        self.out_dir = w.Text(value=str(out_dir), description="run folder", **wide)
        self.init = w.Text(value="" if init is None else str(init), description="start weights", **wide)
        self.note = w.HTML()
        self.run_button = w.Button(description="Train", button_style="primary", icon="play")
        self.output = w.Output()
        self.extra: dict[str, Any] = {}
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
            self.epochs, self.split, self.data_dir, self.out_dir, self.init, self.note,
            self.run_button, self.output,
        ])

    # filling and reading ------------------------------------------------
    def _fill(self, change=None) -> None:
        """Copy the chosen preset's values (for the chosen architecture) into the sliders."""
        preset = self._base()
        for field in SLIDER_FIELDS:
            widget = getattr(self, field)
            value = getattr(preset, field)
            widget.value = min(max(value, widget.min), widget.max) if field != "lr" else value
        self.extra = {}
        self._describe()

    def _describe(self) -> None:
        base = self.presets[self.preset_box.value]
        self.description.value = f"<i>{getattr(base, 'description', '')}</i>"
        if self.extra:
            listed = ", ".join(f"{k}={v}" for k, v in self.extra.items())
            self.note.value = f"<b>quick mode</b> (CI): {self.epochs.value} epoch, also {listed}"
        else:
            self.note.value = ""

    def values(self) -> dict[str, Any]:
        """Every widget's current value: preset, arch, the slider fields, data, out, init."""
        values = {"preset": self.preset_box.value, "arch": self.arch.value}
        values.update({field: getattr(self, field).value for field in SLIDER_FIELDS})
        values["image_size"] = int(values["image_size"])
        values["batch"] = int(values["batch"])
        values["epochs"] = int(values["epochs"])
        values["lr"] = float(f"{values['lr']:.6g}")
        values["split"] = round(float(values["split"]), 4)
        values["data"] = self.data_dir.value.strip()
        values["out"] = self.out_dir.value.strip()
        values["init"] = self.init.value.strip() or None
        return values

    def overrides(self) -> dict[str, Any]:
        """Preset fields that the widgets set: the slider fields plus quick-mode extras."""
        values = self.values()
        changes = {field: values[field] for field in SLIDER_FIELDS}
        changes.update(self.extra)
        return changes

    def _base(self):
        """The chosen preset for the chosen architecture, before the widgets' changes."""
        from RMBG.presets import PRESETS, get_preset

        name = self.preset_box.value
        if name in PRESETS and self.presets[name] is PRESETS[name]:
            return get_preset(name, self.arch.value)
        return self.presets[name]

    def preset(self):
        """The ``RMBG.presets.Preset`` the widgets describe (validated)."""
        from dataclasses import replace

        return replace(self._base(), **self.overrides())

    def config(self, **changes):
        """The ``RMBG.train.TrainConfig`` for these values (``changes`` override any field)."""
        from RMBG.train import TrainConfig

        values = self.values()
        return TrainConfig.from_preset(
            self.preset(), arch=values["arch"], data=values["data"], out=values["out"],
            init=values["init"], **changes,
        )

    # running ------------------------------------------------------------
    def _clicked(self, _button) -> None:
        self.output.clear_output()
        with self.output:
            if self.on_run is not None:
                self.on_run(self)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.box)


def preset_widgets(presets: Mapping | None = None, **kwargs) -> PresetWidgets:
    """The training widgets (see :class:`PresetWidgets`)."""
    return PresetWidgets(presets, **kwargs)


enable_inline_figures()
