"""Dataset adapters (Preprocess.datasets) and the prepared folder (Preprocess.prepare, ``prepare`` CLI).

Each KIND gets a tiny fake tree in ``tmp_path`` in its public layout; the
prepared output is checked exactly: names, counts, index rows, mask values.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from shared_sets import tree_digest

from Preprocess.__main__ import main
from Preprocess.datasets import Sample, cod10k_category, dis5k_category, iter_samples
from Preprocess.prepare import prepare


def write_photo(path: Path, size, seed=0, fmt=None, exif_orientation=None) -> Path:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    picture = Image.fromarray(pixels)
    options = {}
    if exif_orientation:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        options["exif"] = exif.tobytes()
    picture.save(path, format=fmt, **options)
    return path


def mask_values(size, style="binary") -> np.ndarray:
    """The expected 0..255 mask: left third foreground, or four grey bands when soft."""
    width, height = size
    values = np.zeros((height, width), dtype=np.uint8)
    if style == "soft":
        for band, level in enumerate([0, 64, 191, 255]):
            values[:, band * width // 4 : (band + 1) * width // 4] = level
    else:
        values[:, : width // 3] = 255
    return values


def write_mask(path: Path, size, style="binary") -> Path:
    """A mask file stored as ``style``: binary, soft, labels (0/1), rgb or rgba (alpha cut-out)."""
    values = mask_values(size, "soft" if style == "soft" else "binary")
    path.parent.mkdir(parents=True, exist_ok=True)
    if style == "labels":
        picture = Image.fromarray(values // 255, mode="L")
    elif style == "rgb":
        picture = Image.fromarray(np.stack([values] * 3, axis=-1), mode="RGB")
    elif style == "rgba":
        colour = np.full((size[1], size[0], 3), 90, dtype=np.uint8)
        picture = Image.fromarray(np.dstack([colour, values]), mode="RGBA")
    else:
        picture = Image.fromarray(values, mode="L")
    picture.save(path)
    return path


# kind -> (folder handed to the adapter, relative to the tree's base; its entries in the order the
# adapter yields them: (image, mask or None, size, mask style, category, prepared stem))
TREES = {
    "p3m10k": (
        "",  # the archive's top folder P3M-10k sits one level down
        [
            ("P3M-10k/train/blurred_image/p_a.jpg", "P3M-10k/train/mask/p_a.png", (30, 40), "soft", "person", "person_1"),
            ("P3M-10k/train/blurred_image/p_b.jpg", "P3M-10k/train/mask/p_b.png", (40, 30), "soft", "person", "person_2"),
            (
                "P3M-10k/validation/P3M-500-NP/original_image/p_x.jpg",
                "P3M-10k/validation/P3M-500-NP/mask/p_x.png",
                (36, 36),
                "binary",
                "person",
                "person_3",
            ),
        ],
    ),
    "cod10k": (
        "COD10K-v3",
        [
            ("COD10K-v3/Train/Image/COD10K-CAM-1-Aquatic-1-BatFish-2.jpg",
             "COD10K-v3/Train/GT_Object/COD10K-CAM-1-Aquatic-1-BatFish-2.png", (40, 30), "binary", "aquatic", "aquatic_1"),
            ("COD10K-v3/Train/Image/COD10K-CAM-3-Flying-53-Bird-3.jpg",
             "COD10K-v3/Train/GT_Object/COD10K-CAM-3-Flying-53-Bird-3.png", (30, 30), "binary", "flying", "flying_1"),
            ("COD10K-v3/Test/Image/COD10K-CAM-1-Aquatic-3-Crab-32.jpg",
             "COD10K-v3/Test/GT_Object/COD10K-CAM-1-Aquatic-3-Crab-32.png", (32, 24), "binary", "aquatic", "aquatic_2"),
            ("COD10K-v3/Test/Image/COD10K-CAM-2-Terrestrial-23-Cat-1.jpg", None, (20, 20), None, None, None),
        ],
    ),
    "people": (
        "",  # images/ and masks/ inside people_segmentation/, one level down
        [
            ("people_segmentation/images/ann.jpg", "people_segmentation/masks/ann.png", (30, 45), "labels", "person", "person_1"),
            ("people_segmentation/images/bob.jpg", "people_segmentation/masks/bob.png", (45, 30), "labels", "person", "person_2"),
        ],
    ),
    "duts": (
        "DUTS",
        [
            ("DUTS/DUTS-TE/DUTS-TE-Image/sun_abc.jpg", "DUTS/DUTS-TE/DUTS-TE-Mask/sun_abc.png", (30, 40), "binary", "object", "object_1"),
            ("DUTS/DUTS-TR/DUTS-TR-Image/ILSVRC2012_test_1.jpg", "DUTS/DUTS-TR/DUTS-TR-Mask/ILSVRC2012_test_1.png",
             (40, 30), "binary", "object", "object_2"),
        ],
    ),
    "dis5k": (
        "DIS5K",
        [
            ("DIS5K/DIS-TR/im/1#Accessories#1#Bag#2339506821_83cf9f1d22_o.jpg",
             "DIS5K/DIS-TR/gt/1#Accessories#1#Bag#2339506821_83cf9f1d22_o.png", (40, 30), "binary", "accessories", "accessories_1"),
            ("DIS5K/DIS-VD/im/2#Aircraft#5#Kite#9.jpg", "DIS5K/DIS-VD/gt/2#Aircraft#5#Kite#9.png",
             (24, 32), "binary", "aircraft", "aircraft_1"),
        ],
    ),
    "folder": (
        "mine",
        [
            ("mine/images/cat_x.jpg", "mine/masks/cat_x.png", (40, 30), "rgb", "cat", "cat_1"),
            ("mine/images/plain.png", "mine/masks/plain.png", (36, 24), "rgba", "mine", "mine_1"),
            ("mine/images/spare.jpg", None, (20, 20), None, None, None),
        ],
    ),
}


def build_tree(kind: str, tmp_path: Path) -> tuple[Path, list[tuple]]:
    """Write the fake tree of ``kind``; return the folder to prepare and its entries (absolute paths)."""
    given, entries = TREES[kind]
    base = tmp_path / "src"
    for seed, (image, mask, size, style, _category, _stem) in enumerate(entries):
        write_photo(base / image, size, seed=seed)
        if mask:
            write_mask(base / mask, size, style)
    return base / given, [(base / e[0], base / e[1] if e[1] else None, *e[2:]) for e in entries]


@pytest.mark.parametrize("kind", sorted(TREES))
def test_adapter_yields_each_pair_with_its_category(kind, tmp_path):
    root, entries = build_tree(kind, tmp_path)
    problems: list = []
    samples = list(iter_samples(kind, root, problems=problems))
    assert samples == [Sample(image, mask, category) for image, mask, _s, _st, category, _stem in entries if mask]
    unpaired = [image for image, mask, *_ in entries if mask is None]
    assert [path for path, _reason in problems] == unpaired
    assert all("without a mask" in reason for _path, reason in problems)


@pytest.mark.parametrize("kind", sorted(TREES))
def test_prepare_writes_exact_names_rows_and_masks(kind, tmp_path):
    root, entries = build_tree(kind, tmp_path)
    before = tree_digest(tmp_path / "src")
    out = tmp_path / "prepared"
    result = prepare([(kind, root)], out)
    assert tree_digest(tmp_path / "src") == before, "the source tree changed"

    paired = sorted((e for e in entries if e[1]), key=lambda e: e[5])
    stems = sorted(e[5] for e in paired)
    assert sorted(p.name for p in (out / "images").iterdir()) == sorted(f"{s}.jpg" for s in stems)
    assert sorted(p.name for p in (out / "masks").iterdir()) == sorted(f"{s}.png" for s in stems)
    index = pd.read_csv(out / "index.csv")
    assert list(index.columns[:6]) == ["Image Name", "Category", "Image Path", "Mask Path", "width", "height"]
    assert "split" not in index.columns
    assert len(index) == len(paired) == result.added
    rows = index.set_index("Image Name")
    for image, mask, size, style, category, stem in paired:
        row = rows.loc[f"{stem}.jpg"]
        assert row["Category"] == category
        assert (row["Image Path"], row["Mask Path"]) == (f"images/{stem}.jpg", f"masks/{stem}.png")
        assert (row["width"], row["height"]) == size
        assert Path(row["Source Image"]) == image.resolve()
        assert Path(row["Source Mask"]) == mask.resolve()
        written_mask = Image.open(out / "masks" / f"{stem}.png")
        assert written_mask.mode == "L" and written_mask.size == size
        expected = mask_values(size, "soft" if style == "soft" else "binary")
        assert np.array_equal(np.asarray(written_mask), expected), f"{stem}: mask values differ"
        written_image = Image.open(out / "images" / f"{stem}.jpg")
        assert written_image.format == "JPEG" and written_image.mode == "RGB" and written_image.size == size
        if image.suffix == ".jpg":
            assert (out / "images" / f"{stem}.jpg").read_bytes() == image.read_bytes()
    assert [p for p, _ in result.problems] == [e[0] for e in entries if e[1] is None]


def test_category_parsers():
    assert cod10k_category("COD10K-CAM-1-Aquatic-1-BatFish-2.jpg") == "aquatic"
    assert cod10k_category("COD10K-NonCAM-5-Background-3-Sky-1436.png") == "background"
    assert cod10k_category("camourflage_00012.jpg") == "object"
    assert dis5k_category("12#Graphics#4#TrafficSign#2211707081_8f5de2a4d6_o.jpg") == "graphics"
    assert dis5k_category("photo.jpg") == "object"
    with pytest.raises(ValueError, match="unknown source kind"):
        iter_samples("kaggle", Path("."))


def test_prepare_continues_counts_across_sources_and_skips_repeats(tmp_path):
    people_root, _ = build_tree("people", tmp_path / "a")
    p3m_root, _ = build_tree("p3m10k", tmp_path / "b")
    out = tmp_path / "prepared"
    prepare([("people", people_root)], out)
    second = prepare([("p3m10k", p3m_root)], out, val_fraction=0.34)
    names = sorted(p.name for p in (out / "images").iterdir())
    assert names == [f"person_{i}.jpg" for i in range(1, 6)]
    index = second.index
    assert list(index["Image Name"]) == [f"person_{i}.jpg" for i in range(1, 6)]
    assert list(index["Source Kind"]) == ["people"] * 2 + ["p3m10k"] * 3
    # the first request for a split splits every row that has none: round(5 * 0.34) = 2 held out
    assert sorted(index["split"]) == ["train", "train", "train", "val", "val"]

    before = tree_digest(out)
    again = prepare([("people", people_root), ("p3m10k", p3m_root)], out)
    assert again.added == 0 and again.already_there == 5
    assert {k: v for k, v in tree_digest(out).items() if k.startswith(("images", "masks"))} == {
        k: v for k, v in before.items() if k.startswith(("images", "masks"))
    }
    assert list(again.index["split"]) == list(index["split"])


def test_prepare_fixes_what_it_can_and_reports_the_rest(tmp_path):
    src = tmp_path / "odd"
    write_photo(src / "images" / "a.jpg", (60, 40), seed=1)
    write_mask(src / "masks" / "a.png", (30, 20))  # half size, same aspect
    write_photo(src / "images" / "b.jpg", (60, 40), seed=2)
    write_mask(src / "masks" / "b.png", (30, 30))  # different aspect
    write_photo(src / "images" / "c.jpg", (60, 40), seed=3, exif_orientation=6)  # shown as 40x60
    write_mask(src / "masks" / "c.png", (40, 60))
    ramp = np.linspace(0, 255, 60, dtype=np.uint8)
    rgb = np.stack([np.tile(ramp, (40, 1)), np.full((40, 60), 200, np.uint8), np.tile(ramp[::-1], (40, 1))], -1)
    Image.fromarray(rgb).convert("CMYK").save(src / "images" / "d.jpg")
    write_mask(src / "masks" / "d.png", (60, 40))
    whole = write_photo(src / "images" / "e.jpg", (60, 40), seed=5).read_bytes()
    (src / "images" / "e.jpg").write_bytes(whole[: len(whole) // 2])
    write_mask(src / "masks" / "e.png", (60, 40))
    write_photo(src / "images" / "f.jpg", (60, 40), seed=6)
    write_mask(src / "masks" / "f.png", (60, 40), "soft")
    before = tree_digest(src)

    out = tmp_path / "prepared"
    assert main(["prepare", "--source", "folder", str(src), "--out", str(out)]) == 0
    assert tree_digest(src) == before
    index = pd.read_csv(out / "index.csv")
    assert list(index["Image Name"]) == ["odd_1.jpg", "odd_2.jpg", "odd_3.jpg", "odd_4.jpg"]
    assert [Path(p).name for p in index["Source Image"]] == ["a.jpg", "c.jpg", "d.jpg", "f.jpg"]
    report = pd.read_csv(out / "prepare_report.csv")
    assert sorted(Path(p).name for p in report["file"]) == ["b.jpg", "e.jpg"]
    assert "aspect" in report.loc[report["file"].str.endswith("b.jpg"), "problem"].item()
    assert "truncated" in report.loc[report["file"].str.endswith("e.jpg"), "problem"].item()

    upsized = np.asarray(Image.open(out / "masks" / "odd_1.png"))
    assert upsized.shape == (40, 60) and set(np.unique(upsized)) == {0, 255}
    assert np.array_equal(upsized, mask_values((60, 40)))
    rotated = Image.open(out / "images" / "odd_2.jpg")
    assert rotated.size == (40, 60) and rotated.getexif().get(0x0112, 1) == 1
    cmyk = Image.open(out / "images" / "odd_3.jpg")
    assert cmyk.mode == "RGB"
    assert np.abs(np.asarray(cmyk).astype(int) - rgb).mean() < 8  # the colours survived the conversion
    assert (out / "images" / "odd_4.jpg").read_bytes() == (src / "images" / "f.jpg").read_bytes()
    assert np.array_equal(np.asarray(Image.open(out / "masks" / "odd_4.png")), mask_values((60, 40), "soft"))


def test_prepare_size_option_scales_the_longer_side(tmp_path):
    src = tmp_path / "src"
    write_photo(src / "images" / "big.jpg", (64, 48))
    write_mask(src / "masks" / "big.png", (64, 48))
    write_photo(src / "images" / "small.jpg", (20, 10))
    write_mask(src / "masks" / "small.png", (20, 10))
    out = tmp_path / "prepared"
    prepare([("folder", src)], out, category="thing", size=32)
    index = pd.read_csv(out / "index.csv").set_index("Source Image")
    big = index.loc[str((src / "images" / "big.jpg").resolve())]
    small = index.loc[str((src / "images" / "small.jpg").resolve())]
    assert (big["width"], big["height"]) == (32, 24)
    assert (small["width"], small["height"]) == (20, 10)  # never enlarged
    big_mask = np.asarray(Image.open(out / big["Mask Path"]))
    assert big_mask.shape == (24, 32) and set(np.unique(big_mask)) == {0, 255}
    assert Image.open(out / big["Image Path"]).size == (32, 24)


def test_prepare_cli_split_and_refusals(tmp_path, capsys):
    src = tmp_path / "src"
    for i in range(10):
        write_photo(src / "images" / f"dog_{i}.jpg", (16, 16), seed=i)
        write_mask(src / "masks" / f"dog_{i}.png", (16, 16))
    for i in range(4):
        write_photo(src / "images" / f"bird_{i}.jpg", (16, 16), seed=20 + i)
        write_mask(src / "masks" / f"bird_{i}.png", (16, 16))
    out = tmp_path / "prepared"
    assert main(["prepare", "--source", "folder", str(src), "--out", str(out), "--val-fraction", "0.2"]) == 0
    index = pd.read_csv(out / "index.csv")
    held = index[index["split"] == "val"]
    assert len(index) == 14
    assert sorted(held["Category"]) == ["bird", "dog", "dog"]

    assert main(["prepare", "--source", "folder", str(tmp_path / "nowhere"), "--out", str(out)]) == 1
    assert "nowhere" in capsys.readouterr().err
    assert main(["prepare", "--source", "folder", str(src), "--out", str(src / "inside")]) == 1
    assert not (src / "inside").exists()
    assert main(["prepare", "--source", "kaggle", str(src), "--out", str(out)]) == 1
    assert "unknown source kind" in capsys.readouterr().err
    empty = tmp_path / "empty"
    (empty / "images").mkdir(parents=True)
    (empty / "masks").mkdir()
    assert main(["prepare", "--source", "folder", str(empty), "--out", str(tmp_path / "p2")]) == 1


def test_prepare_real_people_sizes_every_mask_to_its_photo(shared_data, tmp_path):
    people = shared_data / "people"
    result = prepare([("people", people)], tmp_path / "prepared", val_fraction=0.15)
    assert result.added == 290 and not result.problems
    index = result.index
    assert list(index["Image Name"][:2]) == ["person_1.jpg", "person_2.jpg"]
    assert (index["split"] == "val").sum() == round(290 * 0.15)
    for _, row in index.iloc[::29].iterrows():
        image = Image.open(tmp_path / "prepared" / row["Image Path"])
        mask = Image.open(tmp_path / "prepared" / row["Mask Path"])
        assert mask.mode == "L" and mask.size == image.size == (row["width"], row["height"])
        assert (tmp_path / "prepared" / row["Image Path"]).read_bytes() == Path(row["Source Image"]).read_bytes()
    # person_0053's mask (285x190) is smaller than its photo (512x342): resized, coverage kept
    row = index[index["Source Image"].str.endswith("person_0053.jpg")].iloc[0]
    original = np.asarray(Image.open(people / "masks" / "person_0053.png")) >= 128
    resized = np.asarray(Image.open(tmp_path / "prepared" / row["Mask Path"])) >= 128
    assert resized.shape == (342, 512)
    assert abs(resized.mean() - original.mean()) < 0.01
