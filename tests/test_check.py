"""Preprocess.check and the ``check`` command: the integrity report and the fixed copy."""

from __future__ import annotations

import stat
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from shared_sets import tree_digest

from Preprocess.__main__ import main
from Preprocess.check import check_dataset, fix_dataset, format_table
from Preprocess.prepare import prepare


def write_photo(path: Path, size=(40, 30), seed=0) -> Path:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def disc(size=(40, 30)) -> np.ndarray:
    """A 0/255 disc in the middle of a ``size`` mask."""
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width]
    return (((xx - width / 2) ** 2 + (yy - height / 2) ** 2) < (min(size) / 3) ** 2).astype(np.uint8) * 255


def write_mask(path: Path, values: np.ndarray, mode: str = "L") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "L":
        picture = Image.fromarray(values, mode="L")
    elif mode == "RGB":
        picture = Image.fromarray(np.stack([values] * 3, axis=-1), mode="RGB")
    elif mode == "RGBA":
        colour = np.full(values.shape + (3,), 30, dtype=np.uint8)
        picture = Image.fromarray(np.dstack([colour, values]), mode="RGBA")
    elif mode == "16":
        picture = Image.fromarray(values.astype(np.uint16) * 257)  # 16-bit greyscale
    else:
        raise ValueError(mode)
    picture.save(path)
    return path


def findings_by_file(report_csv: Path) -> dict[str, set[str]]:
    table: dict[str, set[str]] = {}
    for row in pd.read_csv(report_csv, keep_default_na=False).itertuples(index=False):
        table.setdefault(row.file, set()).add(row.problem)
    return table


def test_real_people_has_198_size_mismatches_and_the_fixed_copy_is_clean(shared_data, tmp_path, capsys):
    people = shared_data / "people"
    before = tree_digest(people)
    report_csv, fixed = tmp_path / "people_report.csv", tmp_path / "people_fixed"
    assert main(["check", str(people), "--report", str(report_csv), "--fix", "--out", str(fixed)]) == 0
    printed = capsys.readouterr().out
    assert "290 pairs" in printed and "NOT USABLE" in printed and "copy USABLE" in printed
    assert tree_digest(people) == before

    report = pd.read_csv(report_csv)
    assert len(report) == 198
    assert set(report["problem"]) == {"size mismatch"} and set(report["severity"]) == {"fixable"}
    assert report["file"].str.startswith("masks/person_").all()

    again = check_dataset(fixed)
    assert again.findings == [] and again.usable and len(again.pairs) == 290
    assert "no problems found" in format_table(again)
    index = pd.read_csv(fixed / "index.csv")
    assert len(index) == 290 and list(index.columns[:4]) == ["Image Name", "Category", "Image Path", "Mask Path"]

    resized = set(Path(f).name for f in report["file"])
    for mask in sorted((people / "masks").glob("*.png")):
        copy = fixed / "masks" / mask.name
        if mask.name not in resized:
            assert copy.read_bytes() == mask.read_bytes()
            continue
        photo_size = Image.open(people / "images" / f"{mask.stem}.jpg").size
        assert Image.open(copy).size == photo_size
        coverage_before = (np.asarray(Image.open(mask)) >= 128).mean()
        coverage_after = (np.asarray(Image.open(copy)) >= 128).mean()
        assert abs(coverage_after - coverage_before) < 0.01, mask.name
    assert all(
        (fixed / "images" / p.name).read_bytes() == p.read_bytes() for p in sorted((people / "images").glob("*"))[::37]
    )


def build_bad_folder(root: Path) -> dict[str, set[str]]:
    """A folder with one problem per pair; returns the findings the check must make."""
    images, masks = root / "images", root / "masks"
    for name in ["good", "corrupt", "empty", "cmyk", "deep", "alpha", "wide", "cut", "colour"]:
        write_mask(masks / f"{name}.png", disc())
        if name not in {"corrupt", "empty", "cmyk", "cut"}:
            write_photo(images / f"{name}.jpg", seed=len(name))
    whole = write_photo(images / "corrupt.jpg", seed=1).read_bytes()
    (images / "corrupt.jpg").write_bytes(whole[:20] + bytes(np.random.default_rng(0).integers(0, 256, 900, np.uint8)))
    (images / "empty.jpg").write_bytes(b"")
    Image.fromarray(np.full((30, 40, 3), 120, np.uint8)).convert("CMYK").save(images / "cmyk.jpg")
    whole = write_photo(images / "cut.jpg", seed=2).read_bytes()
    (images / "cut.jpg").write_bytes(whole[: len(whole) // 2])
    write_mask(masks / "deep.png", disc(), "16")
    write_mask(masks / "alpha.png", disc(), "RGBA")
    write_mask(masks / "colour.png", disc(), "RGB")
    write_mask(masks / "wide.png", disc((30, 30)))
    return {
        "images/corrupt.jpg": {"unreadable"},
        "images/empty.jpg": {"unreadable"},
        "images/cmyk.jpg": {"image is CMYK"},
        "images/cut.jpg": {"truncated"},
        "masks/deep.png": {"mask is 16-bit"},
        "masks/alpha.png": {"mask is RGBA"},
        "masks/colour.png": {"mask is RGB"},
        "masks/wide.png": {"aspect mismatch"},
    }


def test_bad_inputs_are_reported_by_name_and_nothing_in_the_source_changes(tmp_path, capsys):
    source = tmp_path / "bad"
    expected = build_bad_folder(source)
    assert Image.open(source / "masks" / "deep.png").mode.startswith("I")
    before = tree_digest(source)

    report_csv = tmp_path / "bad_report.csv"
    assert main(["check", str(source), "--report", str(report_csv)]) == 1
    printed = capsys.readouterr().out
    assert findings_by_file(report_csv) == expected
    for name in expected:
        assert name in printed, f"{name} is not named on the terminal"
    assert "NOT USABLE" in printed and "aspect mismatch (1)" in printed
    assert tree_digest(source) == before

    copy = tmp_path / "bad_fixed"
    assert main(["check", str(source), "--report", str(report_csv), "--fix", "--out", str(copy)]) == 0
    printed = capsys.readouterr().out
    assert tree_digest(source) == before
    for name in ["corrupt.jpg", "empty.jpg", "cut.jpg", "wide.jpg"]:
        assert f"left out images/{name}" in printed
    assert sorted(p.name for p in (copy / "images").iterdir()) == [
        "alpha.jpg", "cmyk.jpg", "colour.jpg", "deep.jpg", "good.jpg"
    ]
    assert Image.open(copy / "images" / "cmyk.jpg").mode == "RGB"
    for name in ["alpha", "colour", "deep", "good"]:
        mask = Image.open(copy / "masks" / f"{name}.png")
        assert mask.mode == "L" and np.array_equal(np.asarray(mask), disc()), name
    again = check_dataset(copy)
    assert again.usable and again.findings == []


def test_warnings_keep_a_folder_usable_but_shared_stems_and_label_masks_do_not(tmp_path, capsys):
    root = tmp_path / "set"
    write_photo(root / "images" / "a.jpg")
    write_mask(root / "masks" / "a.png", disc())
    write_photo(root / "images" / "lonely.jpg")
    write_mask(root / "masks" / "orphan.png", disc())
    write_photo(root / "images" / "blank.jpg")
    write_mask(root / "masks" / "blank.png", np.zeros((30, 40), np.uint8))
    write_photo(root / "images" / "whole.jpg")
    write_mask(root / "masks" / "whole.png", np.full((30, 40), 255, np.uint8))

    assert main(["check", str(root)]) == 0  # the report goes beside the data when it is writable
    assert "USABLE: 3 pairs, no errors, 4 warnings" in capsys.readouterr().out
    assert findings_by_file(root / "check_report.csv") == {
        "images/lonely.jpg": {"image without mask"},
        "masks/orphan.png": {"mask without image"},
        "masks/blank.png": {"mask empty"},
        "masks/whole.png": {"mask full"},
    }

    write_photo(root / "images" / "a.png")
    write_photo(root / "images" / "labels.jpg")
    write_mask(root / "masks" / "labels.png", disc() // 255)
    report = check_dataset(root)
    problems = {(f.file, f.problem) for f in report.findings}
    assert {("images/a.jpg", "duplicate stem"), ("images/a.png", "duplicate stem")} <= problems
    assert ("masks/labels.png", "mask has 0/1 labels") in problems
    assert not report.usable and "duplicate stem (2)" in report.reason


def test_report_goes_to_the_current_folder_when_the_data_is_read_only(tmp_path, monkeypatch, capsys):
    data, work = tmp_path / "readonly_set", tmp_path / "work"
    write_photo(data / "images" / "x.jpg")
    write_mask(data / "masks" / "x.png", disc())
    work.mkdir()
    monkeypatch.chdir(work)
    data.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP)
    try:
        assert main(["check", str(data)]) == 0
    finally:
        data.chmod(0o755)
    printed = capsys.readouterr().out
    assert (work / "check_report_readonly_set.csv").is_file()
    assert not (data / "check_report.csv").exists()
    assert "read-only" in printed and "check_report_readonly_set.csv" in printed


def test_fix_refuses_to_write_into_the_source_or_a_used_folder(tmp_path, capsys):
    root = tmp_path / "set"
    write_photo(root / "images" / "x.jpg")
    write_mask(root / "masks" / "x.png", disc((20, 15)))
    report = str(tmp_path / "r.csv")
    assert main(["check", str(root), "--report", report, "--fix"]) == 1
    assert "--fix needs --out" in capsys.readouterr().err
    assert main(["check", str(root), "--report", report, "--fix", "--out", str(root / "fixed")]) == 1
    assert not (root / "fixed").exists()
    used = tmp_path / "used"
    used.mkdir()
    (used / "keep.txt").write_text("mine")
    assert main(["check", str(root), "--report", report, "--fix", "--out", str(used)]) == 1
    assert "not empty" in capsys.readouterr().err
    assert sorted(p.name for p in used.iterdir()) == ["keep.txt"]
    assert main(["check", str(tmp_path / "missing")]) == 1
    assert main(["check", str(tmp_path / "used")]) == 1  # no images/ and masks/


def test_a_prepared_folder_is_clean_and_its_index_is_checked(tmp_path):
    raw = tmp_path / "raw"
    for i in range(3):
        write_photo(raw / "images" / f"dog_{i}.jpg", seed=i)
        write_mask(raw / "masks" / f"dog_{i}.png", disc())
    out = tmp_path / "prepared"
    prepare([("folder", raw)], out, val_fraction=0.34)
    report = check_dataset(out)
    assert report.usable and report.findings == []

    index_path = out / "index.csv"
    lines = index_path.read_text().splitlines()
    index_path.write_text("\n".join(lines[:2] + lines[3:]) + "\n")  # drop the row of dog_2 (prepared from dog_1)
    (out / "masks" / "dog_1.png").unlink()
    problems = {(f.file, f.problem, f.severity) for f in check_dataset(out).findings}
    assert problems == {
        ("index.csv", "index row without file", "error"),
        ("images/dog_1.jpg", "image without mask", "warning"),
        ("images/dog_2.jpg", "pair not in index", "warning"),
    }
    report = check_dataset(out)
    assert not report.usable
    fixed = tmp_path / "fixed"
    fix_dataset(report, fixed)
    copy_index = pd.read_csv(fixed / "index.csv")
    assert list(copy_index["Image Name"]) == ["dog_2.jpg", "dog_3.jpg"]
    # dog_3 keeps its split; dog_2 had no row, so it is marked train as prepare would
    old = pd.read_csv(index_path).set_index("Image Name")["split"]
    assert list(copy_index["split"]) == ["train", old["dog_3.jpg"]]
    assert check_dataset(fixed).usable
