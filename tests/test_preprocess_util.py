"""Preprocess.util (the original helpers made safe) and RMBG.images.dataset."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from PIL import Image

from Preprocess.util import Rename, create_csv, plot_Data, resize
from RMBG.images.dataset import assign_split


def write_photo(path: Path, size=(40, 30), seed=0, fmt=None) -> Path:
    """A small random RGB picture (JPEG or PNG from the suffix)."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format=fmt)
    return path


def write_disc_mask(path: Path, size=(40, 30), soft=False) -> Path:
    """A 0/255 disc (or a 0..255 ramp when ``soft``) as an 8-bit PNG."""
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width]
    if soft:
        values = (xx * 255 // max(width - 1, 1)).astype(np.uint8)
    else:
        inside = (xx - width / 2) ** 2 + (yy - height / 2) ** 2 < (min(size) / 3) ** 2
        values = inside.astype(np.uint8) * 255
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(values, mode="L").save(path)
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): digest(p) for p in sorted(root.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- #
# split
# --------------------------------------------------------------------------- #


def test_assign_split_is_stratified_seeded_and_independent_of_order():
    names = [f"a_{i}" for i in range(20)] + [f"b_{i}" for i in range(10)] + ["c_1"]
    categories = [n.split("_")[0] for n in names]
    split = dict(zip(names, assign_split(names, categories, 0.2, seed=42)))
    held = [n for n, s in split.items() if s == "val"]
    assert sum(n.startswith("a_") for n in held) == 4
    assert sum(n.startswith("b_") for n in held) == 2
    assert split["c_1"] == "train"  # a category of one file keeps it for training
    assert set(split.values()) == {"train", "val"}

    order = list(range(len(names)))
    random.Random(1).shuffle(order)
    shuffled = dict(
        zip([names[i] for i in order], assign_split([names[i] for i in order], [categories[i] for i in order], 0.2))
    )
    assert shuffled == split
    other_seed = dict(zip(names, assign_split(names, categories, 0.2, seed=7)))
    assert other_seed != split
    assert set(assign_split(names, categories, 0.0)) == {"train"}
    # small categories still give one file to validation and keep one for training
    assert sorted(assign_split(["x_1", "x_2"], ["x", "x"], 0.01)) == ["train", "val"]
    with pytest.raises(ValueError, match="val_fraction"):
        assign_split(names, categories, 1.0)
    with pytest.raises(ValueError, match="unique"):
        assign_split(["a", "a"], ["x", "x"], 0.5)


# --------------------------------------------------------------------------- #
# Rename
# --------------------------------------------------------------------------- #


def make_pairs(tmp_path: Path, stems_and_suffixes) -> tuple[Path, Path]:
    images, masks = tmp_path / "images", tmp_path / "masks"
    for seed, (stem, suffix) in enumerate(stems_and_suffixes):
        write_photo(images / f"{stem}{suffix}", seed=seed)
        write_disc_mask(masks / f"{stem}.png", size=(40, 30), soft=bool(seed % 2))
    return images, masks


def test_rename_dry_run_plans_pairs_and_changes_nothing(tmp_path):
    images, masks = make_pairs(tmp_path, [("zebra", ".jpg"), ("apple", ".png"), ("mango", ".jpg")])
    before = tree_digest(tmp_path)
    plan = Rename(images, "person", mask_path=masks, dry_run=True)
    assert [(old.name, new.name) for old, new in plan] == [
        ("apple.png", "person_1.png"),
        ("mango.jpg", "person_2.jpg"),
        ("zebra.jpg", "person_3.jpg"),
        ("apple.png", "person_1.png"),
        ("mango.png", "person_2.png"),
        ("zebra.png", "person_3.png"),
    ]
    assert [old.parent for old, _ in plan] == [images] * 3 + [masks] * 3
    assert tree_digest(tmp_path) == before


def test_rename_moves_image_and_mask_together(tmp_path):
    images, masks = make_pairs(tmp_path, [("zebra", ".jpg"), ("apple", ".png")])
    contents = {p.stem + p.parent.name: digest(p) for p in tmp_path.rglob("*.*")}
    done = Rename(images, "cat", mask_path=masks)
    assert len(done) == 4
    assert sorted(p.name for p in images.iterdir()) == ["cat_1.png", "cat_2.jpg"]
    assert sorted(p.name for p in masks.iterdir()) == ["cat_1.png", "cat_2.png"]
    assert digest(images / "cat_1.png") == contents["appleimages"]
    assert digest(masks / "cat_1.png") == contents["applemasks"]
    assert digest(images / "cat_2.jpg") == contents["zebraimages"]
    assert digest(masks / "cat_2.png") == contents["zebramasks"]


def test_rename_through_names_that_other_files_still_hold(tmp_path):
    """``a.jpg`` becomes ``person_1.jpg`` while the old ``person_1.jpg`` becomes ``person_2.jpg``."""
    images = tmp_path / "images"
    write_photo(images / "a.jpg", seed=1)
    write_photo(images / "person_1.jpg", seed=2)
    old_a, old_p1 = digest(images / "a.jpg"), digest(images / "person_1.jpg")
    Rename(images, "person")
    assert sorted(p.name for p in images.iterdir()) == ["person_1.jpg", "person_2.jpg"]
    assert digest(images / "person_1.jpg") == old_a
    assert digest(images / "person_2.jpg") == old_p1


def test_rename_refuses_to_overwrite_and_unpaired_files(tmp_path):
    images, masks = make_pairs(tmp_path, [("b", ".jpg"), ("c", ".jpg")])
    (images / "person_2.jpg").mkdir()  # a name taken by something that is not being renamed
    before = tree_digest(tmp_path)
    with pytest.raises(FileExistsError, match="person_2.jpg"):
        Rename(images, "person", mask_path=masks)
    assert tree_digest(tmp_path) == before
    (images / "person_2.jpg").rmdir()

    write_photo(images / "lonely.jpg")
    with pytest.raises(ValueError, match="lonely.jpg"):
        Rename(images, "person", mask_path=masks)
    assert sorted(p.name for p in images.iterdir()) == ["b.jpg", "c.jpg", "lonely.jpg"]
    with pytest.raises(ValueError, match="category"):
        Rename(images, "my_cat")


# --------------------------------------------------------------------------- #
# resize
# --------------------------------------------------------------------------- #


def test_resize_images_into_another_folder_leaves_the_source(tmp_path):
    source = tmp_path / "photos"
    write_photo(source / "a.jpg", size=(64, 32))
    write_photo(source / "b.png", size=(30, 60))
    (source / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    before = tree_digest(source)
    with pytest.warns(UserWarning, match="broken.jpg"):
        written = resize(source, 16, out=tmp_path / "small")
    assert tree_digest(source) == before
    assert sorted(p.name for p in written) == ["a.jpg", "b.png"]
    assert Image.open(tmp_path / "small" / "a.jpg").size == (16, 16)
    assert Image.open(tmp_path / "small" / "b.png").size == (16, 16)

    kept = resize(source / "a.jpg", 20, out=tmp_path / "aspect", keep_aspect=True)
    assert Image.open(kept[0]).size == (20, 10)
    # existing outputs are never overwritten
    with pytest.warns(UserWarning, match="already exists"):
        assert resize(source / "a.jpg", 8, out=tmp_path / "small") == []
    assert Image.open(tmp_path / "small" / "a.jpg").size == (16, 16)


@pytest.mark.parametrize("method", ["lanczos", "nearest"])
def test_resize_binary_masks_stays_binary_and_soft_masks_stay_soft(tmp_path, method):
    masks = tmp_path / "masks"
    write_disc_mask(masks / "disc.png", size=(90, 60))
    write_disc_mask(masks / "ramp.png", size=(90, 60), soft=True)
    resize(masks, (31, 23), mask_method=method)  # in place, detected as masks by the folder name
    disc = np.asarray(Image.open(masks / "disc.png"))
    ramp = np.asarray(Image.open(masks / "ramp.png"))
    assert disc.shape == ramp.shape == (23, 31)
    assert Image.open(masks / "disc.png").mode == "L"
    assert set(np.unique(disc)) == {0, 255}
    assert 0.15 < (disc == 255).mean() < 0.35  # the disc is still there, not blurred away
    assert len(np.unique(ramp)) > 10  # grey levels kept


def test_resize_image_uses_lanczos_not_nearest(tmp_path):
    """A fine checkerboard shrunk by 2 averages to grey with LANCZOS (nearest would keep 0/255)."""
    board = (np.indices((40, 40)).sum(axis=0) % 2 * 255).astype(np.uint8)
    path = tmp_path / "photos" / "board.png"
    path.parent.mkdir()
    Image.fromarray(np.stack([board] * 3, axis=-1)).save(path)
    resize(path, 20, is_mask=False)
    small = np.asarray(Image.open(path))
    assert small.shape == (20, 20, 3)
    assert 100 < small[5:15, 5:15].mean() < 155
    assert np.abs(small[5:15, 5:15].astype(int) - 128).max() < 40


# --------------------------------------------------------------------------- #
# create_csv and plot_Data
# --------------------------------------------------------------------------- #


def test_create_csv_rows_columns_split_and_file(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    for i in range(1, 5):
        write_photo(images / f"person_{i}.jpg", size=(40 + i, 30))
        write_disc_mask(masks / f"person_{i}.png")
    for i in range(1, 3):
        write_photo(images / f"cat_{i}.jpg", size=(20, 50))
        write_disc_mask(masks / f"cat_{i}.png")
    write_photo(images / "cat_3.jpg", size=(20, 50))  # no mask
    with pytest.warns(UserWarning, match="cat_3.jpg"):
        frame = create_csv(images, masks, out=tmp_path / "index.csv", val_fraction=0.25)
    assert list(frame.columns) == ["Image Name", "Category", "Image Path", "Mask Path", "width", "height", "split"]
    assert list(frame["Image Name"]) == [
        "cat_1.jpg", "cat_2.jpg", "cat_3.jpg", "person_1.jpg", "person_2.jpg", "person_3.jpg", "person_4.jpg"
    ]
    assert list(frame["Category"]) == ["cat"] * 3 + ["person"] * 4
    assert frame.loc[3, "Mask Path"] == str(masks / "person_1.png")
    assert frame.loc[2, "Mask Path"] == ""
    assert list(frame["width"]) == [20, 20, 20, 41, 42, 43, 44]
    assert set(frame["height"]) == {30, 50}
    assert (frame["split"] == "val").sum() == 2  # one cat, one person
    assert set(frame.loc[frame["split"] == "val", "Category"]) == {"cat", "person"}
    written = pd.read_csv(tmp_path / "index.csv", keep_default_na=False)
    assert written.astype(str).equals(frame.astype(str))
    with pytest.raises(FileExistsError), pytest.warns(UserWarning, match="cat_3.jpg"):
        create_csv(images, masks, out=tmp_path / "index.csv")


def test_create_csv_on_real_people_reads_sizes_from_headers(shared_data):
    people = shared_data / "people"
    frame = create_csv(people / "images", people / "masks")
    assert len(frame) == 290 and set(frame["Category"]) == {"person"}
    assert (frame["Mask Path"] != "").all()
    sample = frame.iloc[[0, 100, 289]]
    for _, row in sample.iterrows():
        assert Image.open(row["Image Path"]).size == (row["width"], row["height"])


def test_plot_data_returns_a_figure_with_one_bar_per_category(tmp_path):
    folder = tmp_path / "images"
    for name in ["person_1.jpg", "person_2.jpg", "person_3.jpg", "cat_1.jpg", "cat_2.png"]:
        write_photo(folder / name, size=(8, 8))
    fig = plot_Data(folder)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    heights = [bar.get_height() for bar in ax.patches]
    assert dict(zip(labels, heights)) == {"cat": 2, "person": 3}
    fig.savefig(tmp_path / "bars.png")  # draws without a display
    assert (tmp_path / "bars.png").stat().st_size > 0

    frame = pd.DataFrame({"Image Name": ["a_1.jpg"], "Category": ["a"]})
    assert [b.get_height() for b in plot_Data(frame).axes[0].patches] == [1]
