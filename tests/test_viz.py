"""RMBG.viz: the figures, tables and widgets the notebooks call."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from PIL import Image

from RMBG import viz

widgets = pytest.importorskip("ipywidgets")


# ---------------------------------------------------------------------------
# fixtures: small folders the tests make
# ---------------------------------------------------------------------------
def make_pair(folder: Path, name: str, size=(60, 40), box=(10, 10, 40, 30), mask_size=None, colour=(200, 30, 30)):
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(folder / "images" / f"{name}.jpg")
    mask = Image.new("L", size, 0)
    mask.paste(255, box)
    if mask_size:
        mask = mask.resize(mask_size, Image.NEAREST)
    mask.save(folder / "masks" / f"{name}.png")


@pytest.fixture
def dataset(tmp_path) -> Path:
    root = tmp_path / "set"
    for k in range(1, 5):
        make_pair(root, f"cat_{k}")
    for k in range(1, 4):
        make_pair(root, f"person_{k}", size=(40, 60), box=(5, 5, 35, 50))
    return root


def visible_axes(fig: Figure):
    return [ax for ax in fig.axes if ax.get_visible() and (ax.images or ax.lines or ax.texts)]


REPORT = {
    "images": 3,
    "models": {
        "ours": {
            "summary": {"mae": 0.05, "max_f": 0.9, "iou": 0.8, "seconds_per_image": 0.3},
            "per_category": {"cat": {"mae": 0.07, "max_f": 0.85, "iou": 0.7, "seconds_per_image": 0.3},
                             "person": {"mae": 0.02, "max_f": 0.95, "iou": 0.9, "seconds_per_image": 0.3}},
        },
        "peer": {
            "summary": {"mae": 0.04, "max_f": 0.92, "iou": None, "seconds_per_image": 0.4},
            "per_category": {"cat": {"mae": 0.05}, "person": {"mae": 0.03}},
        },
    },
}


# ---------------------------------------------------------------------------
# set-up and small helpers
# ---------------------------------------------------------------------------
def test_figures_render_as_png_once_a_shell_is_set_up():
    from IPython.core.formatters import PNGFormatter

    formatter = PNGFormatter()
    fig = Figure()
    fig.add_subplot().plot([0, 1], [1, 0])
    assert formatter(fig) is None  # a bare Figure has no picture until the formatter knows it
    shell = SimpleNamespace(display_formatter=SimpleNamespace(formatters={"image/png": formatter}))
    assert viz.enable_inline_figures(shell) is True
    png = formatter(fig)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert viz.enable_inline_figures(object()) is False


def test_quick_picks_the_small_value_only_in_quick_mode(monkeypatch):
    monkeypatch.delenv("RMBG_QUICK", raising=False)
    monkeypatch.setenv("CI", "true")
    assert viz.quick(3, None) == 3
    monkeypatch.setenv("CI", "false")
    assert viz.quick(3, None) is None
    monkeypatch.setenv("RMBG_QUICK", "1")
    assert viz.quick("small", "full") == "small"


def test_example_sources_use_the_shared_sets_and_keep_the_heldout_one_out(tmp_path):
    for name in ("people", "cats", "ecssd"):
        (tmp_path / name / "images").mkdir(parents=True)
    assert viz.example_sources(tmp_path) == [("people", tmp_path / "people"), ("folder", tmp_path / "cats")]
    assert viz.heldout_source(tmp_path) == tmp_path / "ecssd"
    assert all(path.name != "ecssd" for _kind, path in viz.example_sources(tmp_path))


def test_heldout_source_is_the_default_models_validation_photos(shared_data, tmp_path):
    from RMBG.constants import MODELS_DIR

    listed = {
        line.strip().rsplit("/", 1)[-1]
        for line in (MODELS_DIR / "rmbg-default-val.txt").read_text().splitlines()
        if line.startswith("ecssd/images/")
    }
    folder = viz.heldout_source(shared_data, out=tmp_path / "heldout")
    photos = sorted(p.name for p in (folder / "images").iterdir())
    assert photos and set(photos) == listed
    assert all((folder / "masks" / f"{name.rsplit('.', 1)[0]}.png").is_file() for name in photos)


# ---------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------
def test_pair_grid_shows_each_photo_beside_its_mask(dataset):
    fig = viz.pair_grid(dataset, n=4, cols=2)
    shown = visible_axes(fig)
    assert len(shown) == 8
    titles = [ax.get_title() for ax in shown]
    photos = [t for t in titles if not t.startswith("mask")]
    assert len(photos) == 4 and all(t.split(" ")[0].split("_")[0] in {"cat", "person"} for t in photos)
    # the mask of a 30x20 box on a 60x40 photo covers 25% of it
    assert any(t == "mask, 25% foreground" for t in titles)
    assert "4 of 7 pairs" in fig._suptitle.get_text()


def test_pair_grid_is_seeded_and_refuses_nonsense(dataset):
    first = [ax.get_title() for ax in viz.pair_grid(dataset, n=3).axes]
    again = [ax.get_title() for ax in viz.pair_grid(dataset, n=3).axes]
    assert first == again
    with pytest.raises(ValueError):
        viz.pair_grid(dataset, n=0)
    with pytest.raises(ValueError, match="no image/mask pairs"):
        viz.pair_grid(dataset, n=2, split="val")  # no index.csv: no split


def test_check_table_counts_problems_with_an_example(dataset):
    from Preprocess.check import check_dataset

    make_pair(dataset, "cat_9", size=(60, 40), mask_size=(30, 20))  # same aspect, half size: fixable
    (dataset / "images" / "dog_1.jpg").write_bytes(b"not a jpeg")
    table = viz.check_table(check_dataset(dataset))
    rows = table.set_index("problem")
    assert rows.loc["size mismatch", "severity"] == "fixable" and rows.loc["size mismatch", "count"] == 1
    assert rows.loc["size mismatch", "example"] == "masks/cat_9.png"
    assert rows.loc["image without mask", "count"] == 1


def test_check_sources_has_a_row_per_source_and_problem(dataset, tmp_path):
    clean = tmp_path / "clean"
    make_pair(clean, "cat_1")
    make_pair(dataset, "cat_9", mask_size=(30, 20))
    table = viz.check_sources([("folder", dataset), ("folder", clean)])
    assert list(table["source"]) == ["set (folder)", "clean (folder)"]
    assert list(table["problem"]) == ["size mismatch", "none"]
    assert list(table["pairs"]) == [8, 1]


def test_dataset_widgets_check_the_typed_folder(dataset, tmp_path, capsys):
    box = viz.dataset_widgets(dataset, n=2)
    report = box.run()
    assert len(report.pairs) == 7 and "7 pairs" in capsys.readouterr().out
    box.data_dir.value = str(tmp_path / "nowhere")
    assert box.run().missing_folders == ["images/", "masks/"]


# ---------------------------------------------------------------------------
# evaluation
# ---------------------------------------------------------------------------
def test_metric_table_one_row_per_model(tmp_path):
    table = viz.metric_table(REPORT)
    assert list(table.index) == ["ours", "peer"]
    assert table.loc["ours", "mae"] == pytest.approx(0.05)
    assert np.isnan(table.loc["peer", "iou"])  # unknown (JSON null) stays unknown
    (tmp_path / "report.json").write_text(json.dumps(REPORT))
    assert viz.metric_table(tmp_path).equals(table)  # the folder, or its report.json, work too
    per_category = viz.metric_table(REPORT, per_category=True, keys=("mae",))
    assert per_category.loc[("ours", "person"), "mae"] == pytest.approx(0.02)
    assert len(per_category) == 4


def test_per_image_table_lists_the_worst_first(tmp_path):
    rows = [{"image": f"{k}.jpg", "category": "c", "model": m, "mae": mae}
            for k, mae in enumerate([0.1, 0.5, 0.3]) for m in ("ours", "peer")]
    pd.DataFrame(rows).to_csv(tmp_path / "per_image.csv", index=False)
    worst = viz.per_image_table(tmp_path, worst=2)
    assert list(worst["image"]) == ["1.jpg", "2.jpg"] and set(worst["model"]) == {"ours"}


def test_picture_and_benchmark_without_a_peer(tmp_path):
    Image.new("RGB", (200, 100), (0, 128, 0)).save(tmp_path / "p.png")
    fig = viz.picture(tmp_path / "p.png", title="curve")
    assert fig.axes[0].images[0].get_array().shape[:2] == (100, 200)
    assert fig.get_size_inches()[0] == pytest.approx(9.0)
    assert "skipped" in viz.benchmark(tmp_path, "model.keras", [])


# ---------------------------------------------------------------------------
# training curves
# ---------------------------------------------------------------------------
def write_run(folder: Path, epochs: int = 3) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    log = pd.DataFrame({
        "epoch": range(epochs), "loss": np.linspace(1, 0.5, epochs), "mae": np.linspace(0.4, 0.2, epochs),
        "learning_rate": [1e-3] * epochs, "val_loss": np.linspace(1.1, 0.6, epochs),
        "val_mae": np.linspace(0.5, 0.3, epochs),
    })
    log.to_csv(folder / "log.csv", index=False)
    pd.DataFrame({"step": [0, 3, 6], "epoch": [0, 0, 1], "val_loss": [1, 0.9, 0.95], "val_mae": [0.5, 0.4, 0.45],
                  "val_iou": [0.1, 0.2, 0.2], "best": [1, 1, 0]}).to_csv(folder / "val_steps.csv", index=False)


def test_training_curves_of_a_run_folder(tmp_path):
    write_run(tmp_path / "run")
    fig = viz.training_curves(tmp_path / "run")
    titles = [ax.get_title() for ax in visible_axes(fig)]
    assert titles == ["loss", "mae", "learning_rate", "validation checks"]
    loss = visible_axes(fig)[0]
    assert [line.get_label() for line in loss.lines] == ["training", "validation"]
    assert list(loss.lines[0].get_xdata()) == [1, 2, 3]  # epochs counted from 1
    assert visible_axes(fig)[2].get_yscale() == "log"
    checks = visible_axes(fig)[3]
    assert list(checks.lines[1].get_xdata()) == [0, 3]  # the two improving checks are starred


def test_training_curves_of_a_missing_or_partial_log(tmp_path):
    empty = viz.training_curves(tmp_path / "nothing-yet")
    assert "no training log yet" in empty.axes[0].texts[0].get_text()
    (tmp_path / "half.csv").write_text("epoch,loss\n")
    assert "no training log yet" in viz.training_curves(tmp_path / "half.csv").axes[0].texts[0].get_text()


def test_live_curves_redraw_only_when_the_log_grows(tmp_path):
    run = tmp_path / "run"
    curves = viz.live_training_curves(run)
    assert curves.update() is True and curves.updates == 1  # first draw: "no log yet"
    assert curves.update() is False
    write_run(run, epochs=2)
    assert curves.update() is True
    assert [ax.get_title() for ax in visible_axes(curves.figure)][0] == "loss"
    curves.start(every=0.05)
    write_run(run, epochs=4)
    import time

    deadline = time.monotonic() + 5
    while curves.updates < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    curves.stop()
    assert curves.updates >= 4  # start's forced draw, then the background thread saw the change
    assert len(visible_axes(curves.figure)[0].lines[0].get_xdata()) == 4


# ---------------------------------------------------------------------------
# before / after
# ---------------------------------------------------------------------------
def test_side_by_side_draws_cutouts_on_a_checkerboard(tmp_path):
    photo = np.full((50, 80, 3), 120, np.uint8)
    cutout = np.zeros((50, 80, 4), np.uint8)
    cutout[10:40, 20:60] = (255, 0, 0, 255)
    mask = np.zeros((50, 80), np.float32)
    fig = viz.side_by_side([photo, photo], [cutout, mask], titles=["a", "b"])
    axes = fig.axes
    assert len(axes) == 4
    assert len(axes[1].images) == 2  # checkerboard under the RGBA cut-out
    assert len(axes[3].images) == 1 and axes[3].images[0].get_cmap().name == "gray"
    assert axes[0].get_title() == "a: before"
    with pytest.raises(ValueError, match="2 images but 1 results"):
        viz.side_by_side([photo, photo], [mask])
    with pytest.raises(ValueError):
        viz.side_by_side([], [])


def test_large_pictures_are_shown_as_thumbnails():
    big = np.zeros((1000, 2000, 3), np.uint8)
    fig = viz.side_by_side([big], [big])
    assert max(fig.axes[0].images[0].get_array().shape[:2]) == viz.THUMB_SIDE


# ---------------------------------------------------------------------------
# training widgets
# ---------------------------------------------------------------------------
def test_preset_choice_fills_the_sliders_which_stay_editable(tmp_path):
    from RMBG.training.presets import get_preset

    box = viz.preset_widgets(quick=False, data_dir=tmp_path, out_dir=tmp_path / "run")
    assert isinstance(box.lr, widgets.FloatLogSlider)
    box.preset_box.value = "finetune"
    finetune = get_preset("finetune", "u2netp")
    values = box.values()
    assert (values["image_size"], values["batch"], values["epochs"], values["split"]) == (
        finetune.image_size, finetune.batch, finetune.epochs, finetune.split,
    ) == (320, 8, 3, 0.2)
    assert values["lr"] == pytest.approx(finetune.lr)
    assert values["init"] and values["init"].endswith("u2netp-imported.keras")
    box.batch.value = 4
    box.lr.value = 3e-5
    preset = box.preset()
    assert preset.batch == 4 and preset.lr == pytest.approx(3e-5, rel=0.05)
    assert preset.loss == finetune.loss and preset.freeze == finetune.freeze  # the rest of the recipe kept
    box.preset_box.value = "full"  # a new preset replaces the edits
    assert box.values()["batch"] == get_preset("full", "u2netp").batch and box.values()["init"] is None


def test_architecture_overrides_and_crop_follow_the_image_size(tmp_path):
    box = viz.preset_widgets(quick=False, preset="full", data_dir=tmp_path, out_dir=tmp_path / "run")
    assert box.values()["image_size"] == 320  # full for u2netp: U-2-Net's own 320/288 recipe
    # the description says the architecture changes the generic recipe it names
    assert "512 px" in box.description.value and "for u2netp: image_size=320" in box.description.value
    box.arch.value = "seed"
    assert box.values()["image_size"] == 512 and box.values()["batch"] == 64
    box.arch.value = "u2netp"
    box.image_size.value = 256
    preset = box.preset()
    assert preset.crop_size == 224 and preset.crop_scale == (pytest.approx(0.7656), pytest.approx(0.7656))


def test_config_maps_the_widgets_to_a_train_config(tmp_path):
    box = viz.preset_widgets(quick=True, data_dir=tmp_path / "data", out_dir=tmp_path / "run")
    box.existing.value = "resume"
    config = box.config()
    assert (config.data, config.out) == (str(tmp_path / "data"), str(tmp_path / "run"))
    assert config.resume and not config.overwrite
    assert config.preset.steps_per_epoch == viz.QUICK_OVERRIDES["steps_per_epoch"]
    box.out_dir.value = " "
    with pytest.raises(ValueError, match="run folder"):
        box.config()
    with pytest.raises(ValueError, match="unknown preset"):
        viz.preset_widgets(preset="huge")


def test_preset_table_lists_every_preset_for_the_arch():
    from RMBG.training.presets import PRESETS

    table = viz.preset_table("u2netp")
    assert list(table.index) == list(PRESETS) == ["sample", "finetune", "quick-finetune", "distill", "full"]
    assert table.loc["full", "image_size"] == 320 and viz.preset_table("seed").loc["full", "image_size"] == 512
    # finetune and distill save their weights blended with the start; the others save them as trained
    assert 0 < table.loc["finetune", "blend"] < 1 and table.loc["sample", "blend"] == 1.0
    # distillation is the finetune recipe on another folder, with u2netp's last two encoder stages trained too
    assert table.loc["distill", "loss"] == table.loc["finetune", "loss"] and 0 < table.loc["distill", "blend"] < 1
    assert table.loc["distill", "freeze"] == ("stage1_", "stage2_", "stage3_", "stage4_")
    assert table.loc["finetune", "freeze"] == ("encoder",)


# ---------------------------------------------------------------------------
# things that need the real model and photos
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def default_model():
    from RMBG.runtime.engines import default_model_path

    try:
        return default_model_path()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))


def test_remove_widgets_redraw_on_every_change(default_model, tmp_path):
    photo = tmp_path / "photo.png"
    image = np.zeros((96, 128, 3), np.uint8)
    image[24:72, 40:88] = (250, 200, 40)
    Image.fromarray(image).save(photo)
    second = tmp_path / "second.png"
    Image.fromarray(image[:, ::-1]).save(second)
    box = viz.remove_widgets([photo, second], default_model, mode="color", bg_color="#00ff00")
    assert box.redraws == 1  # drawn at once
    green = np.asarray(box.result())
    assert green.shape == (96, 128, 3) and tuple(green[2, 2]) == (0, 255, 0)  # corner is background
    box.bg_color.value = "#0000ff"
    assert box.redraws == 2 and tuple(np.asarray(box.result())[2, 2]) == (0, 0, 255)
    box.mode.value = "rgba"
    assert box.result().mode == "RGBA" and box.redraws == 3
    box.refine.value = "guided"
    box.image.value = str(second)
    assert box.redraws == 5 and len(box._small) == 2  # one model call per photo
    assert "refine=guided" in box.figure().axes[1].get_title()


def test_evaluate_widgets_run_the_evaluation(shared_data, peer_onnx, tmp_path):
    box = viz.evaluate_widgets(shared_data / "ecssd", peers=[peer_onnx], out_dir=tmp_path / "report", limit=2)
    report = box.run()
    assert report["images"] == 2 and list(report["models"]) == ["u2netp"]
    assert (tmp_path / "report" / "pr_curve.png").is_file()
    box.data_dir.value = str(tmp_path / "nowhere")
    assert box.run() is None


def test_mode_and_refine_grids(default_model, tmp_path):
    photo = tmp_path / "photo.png"
    image = np.zeros((96, 128, 3), np.uint8)
    image[24:72, 40:88] = (250, 200, 40)
    Image.fromarray(image).save(photo)
    modes = viz.mode_grid(photo, default_model, modes=("rgba", "mask", "color", "image"))
    titles = [ax.get_title() for ax in visible_axes(modes)]
    assert titles == ["input", "rgba", "mask", "color"]  # no background photo: no `image` panel
    refine = viz.refine_grid(photo, default_model, methods=("none", "guided"))
    assert [ax.get_title() for ax in refine.axes[:3]] == ["photo.png", "refine=none", "refine=guided"]
    assert len(refine.axes[0].patches) == 1  # the zoom frame


def test_edge_box_finds_the_unsure_band():
    from RMBG.viz.figures import _edge_box

    mask = np.zeros((100, 200), np.float32)
    mask[60:90, 150:190] = 0.5  # the only unsure pixels
    top, bottom, left, right = _edge_box(mask, 0.3)
    assert (bottom - top, right - left) == (30, 60)
    assert top <= 60 and bottom >= 90 - 1 and left <= 150 and right >= 190 - 1


def test_original_comparison_says_when_the_originals_are_absent(tmp_path):
    fig = viz.original_comparison(data_root=tmp_path)
    assert "absent" in fig.axes[0].texts[0].get_text()


def test_example_photos_start_with_the_original_inputs(tmp_path):
    (tmp_path / "seed_test" / "images").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(tmp_path / "seed_test" / "images" / "1.png")
    photos = viz.example_photos(data_root=tmp_path)
    assert photos[0] == tmp_path / "seed_test" / "images" / "1.png"
    assert len(viz.example_photos(n=1, data_root=tmp_path)) == 1


# ---------------------------------------------------------------------------
# the model picker (names present or missing, by $U2NET_HOME)
# ---------------------------------------------------------------------------
def test_model_picker_marks_each_name_present_or_missing(tmp_path, monkeypatch):
    pytest.importorskip("ipywidgets")
    from RMBG.models.names import NAMES

    home = tmp_path / "u2net-home"
    home.mkdir()
    monkeypatch.setenv("U2NET_HOME", str(home))
    options = {o.name: o for o in viz.model_options()}
    assert list(options) == ["default", "u2netp", "u2net", "isnet", "u2net+isnet"] == list(viz.PICKER_NAMES)
    for name in ("u2net", "isnet"):
        assert not options[name].present and options[name].file == str(home / f"{name}.onnx")
        assert options[name].label == f"{name} (missing: python -m RMBG fetch-teacher {name})"
    assert options["u2net+isnet"].get == "python -m RMBG fetch-teacher u2net; python -m RMBG fetch-teacher isnet"
    assert not options["u2net+isnet"].present
    assert options["default"].present == (NAMES["default"].file() is not None)
    table = viz.model_table()
    assert list(table.index) == list(options) and table.loc["isnet", "to get it"].endswith("fetch-teacher isnet")

    # a file in place makes its name (and the ensemble, once both are there) present
    (home / "isnet.onnx").write_bytes(b"stand-in")
    options = {o.name: o for o in viz.model_options()}
    assert options["isnet"].present and options["isnet"].label == "isnet (present)" and options["isnet"].get == ""
    assert not options["u2net+isnet"].present and options["u2net+isnet"].get == "python -m RMBG fetch-teacher u2net"
    (home / "u2net.onnx").write_bytes(b"stand-in")
    assert viz.model_options(["u2net+isnet"])[0].present

    picker = viz.model_picker("isnet")
    assert [label for label, _ in picker.choice.options][3] == "isnet (present)"
    assert picker.value == "isnet" and picker.describe() == f"isnet: {home / 'isnet.onnx'}"
    (home / "isnet.onnx").unlink()
    picker = viz.model_picker("isnet")
    assert picker.describe() == "isnet is missing: run `python -m RMBG fetch-teacher isnet`"
    assert "fetch-teacher isnet" in picker.status.value
    picker.path.value = str(tmp_path / "mine.keras")
    assert picker.value == str(tmp_path / "mine.keras") and "no such file" in picker.status.value

    several = viz.model_picker(["u2netp", tmp_path / "a.onnx"], multiple=True)
    assert several.value == ["u2netp", str(tmp_path / "a.onnx")]
    several.choice.value = ("u2netp", "u2net+isnet")
    assert several.value[:2] == ["u2netp", "u2net+isnet"]


def test_remove_widgets_say_how_to_get_a_missing_model(default_model, tmp_path, monkeypatch):
    monkeypatch.setenv("U2NET_HOME", str(tmp_path / "empty"))
    photo = tmp_path / "photo.png"
    Image.fromarray(np.full((40, 60, 3), 200, np.uint8)).save(photo)
    box = viz.remove_widgets([photo], default_model)
    assert box.picker.value == "default" and box.redraws == 1
    box.picker.choice.value = "isnet"
    assert box.redraws == 1 and box.remover is None and not box._small
    assert box.problem.startswith("cannot use model isnet") and "python -m RMBG fetch-teacher isnet" in box.problem
    box.picker.choice.value = "default"
    assert box.redraws == 2 and box.problem is None and box.remover is not None and len(box._small) == 1
