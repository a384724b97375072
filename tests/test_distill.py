"""Distillation (issue 23): the real U-2-Net imported, teacher labels, the mixed training folder, the split.

The U-2-Net teacher (176 MB) is not in ``../shared``: tests that need it use
``~/.u2net/u2net.onnx`` (``python -m RMBG fetch-teacher`` puts it there; CI
fetches it once) and skip with the reason when it is absent.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
from shared_sets import link_pairs
from shared_sets import pairs as shared_pairs

from RMBG.constants import IMPORTED_U2NETP_PATH, MODELS_DIR
from RMBG.images.io import read_image, read_mask
from RMBG.training.distill_set import build_distill_set
from RMBG.training.label import Teachers, label_images

SPLIT_LISTS = {split: MODELS_DIR / f"rmbg-default-{split}.txt" for split in ("train", "val", "test")}


def read_list(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def test_the_real_u2net_imports_and_reproduces_onnxruntime_on_real_photos(tmp_path, teacher_u2net, shared_data):
    from RMBG.commands.import_weights import main as import_main
    from RMBG.runtime.engines import KerasSegmenter, OnnxPeerSegmenter

    out = tmp_path / "u2net-imported.keras"
    # the CLI's own check runs on a random image; this test checks real photos instead
    assert import_main([str(teacher_u2net), "--arch", "u2net", "--out", str(out), "--no-verify"]) == 0
    ours = KerasSegmenter.from_file(out)
    peer = OnnxPeerSegmenter(teacher_u2net)
    photos = [read_image(image) for folder in ("people", "cats") for image, _ in shared_pairs(shared_data / folder, 1)]
    differences = [np.abs(a - b).max() for a, b in zip(ours.predict(photos), peer.predict(photos))]
    assert max(differences) < 1e-3, differences
    # and the masks are real masks, not a constant
    assert all(m.std() > 0.1 for m in peer.predict(photos))


def test_label_writes_the_teachers_maps_and_resumes_without_recomputing(tmp_path, shared_data, peer_onnx):
    from RMBG.runtime.engines import OnnxPeerSegmenter

    photos = [image for image, _ in shared_pairs(shared_data / "ecssd", 5)]
    bad = tmp_path / "in" / "broken.jpg"
    bad.parent.mkdir()
    bad.write_bytes(b"not a jpeg")
    out = tmp_path / "labelled"
    teachers = Teachers([peer_onnx], tta="flip")
    result = label_images([str(p) for p in photos] + [str(bad)], out, teachers, progress=False)
    assert len(result.written) == 5 and result.failed and result.failed[0][0] == str(bad)

    runtime = OnnxPeerSegmenter(peer_onnx)
    with open(out / "index.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 5
    for photo, row in zip(photos, rows):
        image = read_image(photo)
        flipped = runtime.predict([image[:, ::-1]])[0][:, ::-1]
        expected = (runtime.predict([image])[0] + flipped) / 2
        written = read_mask(out / row["Mask Path"])
        assert written.shape == image.shape[:2]
        assert np.abs(written - expected).max() <= 1 / 255 + 1e-6
        assert len(np.unique(np.round(written * 255))) > 10  # soft: grey levels kept, not binarised
        assert row["Teacher"] == peer_onnx.name and len(row["Teacher Digest"]) == 16 and row["TTA"] == "flip"
        assert row["split"] == "train" and Path(row["Source Image"]) == photo.resolve()
        assert (out / row["Image Path"]).read_bytes() == photo.read_bytes()

    stamps = {p: p.stat().st_mtime_ns for p in (out / "masks").iterdir()}

    class Refusing:  # a teacher that must not be asked again
        tta, names, digests = "flip", "x", "x"

        def soft_map(self, image):
            raise AssertionError("a labelled photo was recomputed")

    again = label_images([str(p) for p in photos], out, Refusing(), progress=False)
    assert again.already_done == 5 and not again.written
    assert {p: p.stat().st_mtime_ns for p in (out / "masks").iterdir()} == stamps


def test_the_split_lists_are_disjoint_complete_and_stratified(shared_data):
    from RMBG.images.dataset import assign_split

    lists = {split: read_list(path) for split, path in SPLIT_LISTS.items()}
    names = {split: set(files) for split, files in lists.items()}
    assert not names["train"] & names["val"] and not names["train"] & names["test"] and not names["val"] & names["test"]
    every = sorted(
        str(p.relative_to(shared_data)) for folder in ("people", "ecssd", "cats")
        for p in (shared_data / folder / "images").glob("*.jpg")
    )
    assert sorted(names["train"] | names["val"] | names["test"]) == every
    # the proportions and the stratification the split promises (the exact reproduction: the test below)
    for category, total in (("cat", 195), ("object", 400), ("person", 290)):
        for split in ("val", "test"):
            count = sum(Path(f).name.startswith(category + "_") for f in names[split])
            assert count == round(0.2 * total), (category, split, count)
    # the validation part is the one earlier choices were made on: drawn before the test part
    labels = assign_split([f"x_{i}" for i in range(50)], ["x"] * 50, 0.2, test_fraction=0.2)
    two_way = assign_split([f"x_{i}" for i in range(50)], ["x"] * 50, 0.2)
    assert [a == "val" for a in labels] == [b == "val" for b in two_way]
    assert labels.count("test") == 10


def test_prepare_reproduces_the_shipped_split_lists_exactly(tmp_path, shared_data):
    """The model card's claim: the command in the lists' header rebuilds them line for line."""
    from Preprocess.prepare import prepare, write_split_lists

    prepared = tmp_path / "shared"
    prepare([("people", shared_data / "people"), ("folder", shared_data / "ecssd"), ("folder", shared_data / "cats")],
            prepared, val_fraction=0.2, test_fraction=0.2)
    counts = write_split_lists(prepared, tmp_path / "rebuilt", shared_data)
    assert counts == {"train": 531, "val": 177, "test": 177}
    for split, shipped in SPLIT_LISTS.items():
        assert read_list(tmp_path / f"rebuilt-{split}.txt") == read_list(shipped), split


def test_the_distill_folder_mixes_truth_and_teacher_and_keeps_val_and_test_on_truth(tmp_path, shared_data, peer_onnx):
    from Preprocess.prepare import prepare

    source = link_pairs(shared_pairs(shared_data / "ecssd", 10), tmp_path / "src")
    labelled = tmp_path / "prepared"
    prepare([("folder", source)], labelled, val_fraction=0.2, test_fraction=0.2)
    with open(labelled / "index.csv", newline="") as handle:
        index = list(csv.DictReader(handle))
    train = [labelled / r["Image Path"] for r in index if r["split"] == "train"]
    held_out_sources = [r["Source Image"] for r in index if r["split"] != "train"]
    assert len(train) == 6 and len(held_out_sources) == 4

    teacher_dir = tmp_path / "teacher"
    teachers = Teachers([peer_onnx])
    # the teacher labels the training photos, two photos of its own, and (by mistake) a test photo's source
    extra = [image for image, _ in shared_pairs(shared_data / "cats", 2)]
    label_images([str(p) for p in train + extra] + [held_out_sources[0]], teacher_dir, teachers, progress=False)
    out = tmp_path / "distill"
    result = build_distill_set(labelled, [teacher_dir], out, gt_share=0.7)
    with open(out / "index.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))

    by_split = {s: [r for r in rows if r["split"] == s] for s in ("train", "val", "test")}
    assert [r["Target"] for r in by_split["train"]].count("mix:0.7") == 6
    assert [r["Target"] for r in by_split["train"]].count("teacher") == 2
    assert all(r["Target"] == "gt" for r in by_split["val"] + by_split["test"]) and len(by_split["val"] + by_split["test"]) == 4
    # no teacher map or teacher-labelled photo reaches validation or test, and the mistaken one is reported
    teacher_files = {str(p.resolve()) for p in teacher_dir.rglob("*") if p.is_file()}
    assert not {r["Image Path"] for r in by_split["val"] + by_split["test"]} & teacher_files
    assert not {r["Mask Path"] for r in by_split["val"] + by_split["test"]} & teacher_files
    assert [why for path, why in result.problems if path == str(Path(held_out_sources[0]).resolve())]
    # a mixed target is 0.7 truth + 0.3 teacher at the photo's size
    mixed = by_split["train"][0]
    name = Path(mixed["Image Path"]).name
    truth = read_mask(labelled / "masks" / f"{Path(name).stem}.png")
    with open(teacher_dir / "index.csv", newline="") as handle:
        taught = {Path(r["Source Image"]).name: r for r in csv.DictReader(handle)}
    soft = read_mask(teacher_dir / taught[name]["Mask Path"])
    target = read_mask(mixed["Mask Path"])
    assert target.shape == soft.shape
    assert np.abs(target - (0.7 * truth + 0.3 * soft)).max() <= 1.5 / 255


def test_the_distill_preset_trains_two_steps_on_a_mixed_folder(tmp_path, shared_data, peer_onnx):
    from Preprocess.prepare import prepare
    from RMBG.models.info import read_model_info
    from RMBG.training.config import TrainConfig
    from RMBG.training.fit import fit

    source = link_pairs(shared_pairs(shared_data / "people", 10), tmp_path / "src")
    labelled = tmp_path / "prepared"
    prepare([("folder", source)], labelled, val_fraction=0.2, test_fraction=0.2)
    with open(labelled / "index.csv", newline="") as handle:
        train = [str(labelled / r["Image Path"]) for r in csv.DictReader(handle) if r["split"] == "train"]
    extra = [str(image) for image, _ in shared_pairs(shared_data / "cats", 4)]
    label_images(train + extra, tmp_path / "teacher", Teachers([peer_onnx]), progress=False)
    build_distill_set(labelled, [tmp_path / "teacher"], tmp_path / "distill")

    config = TrainConfig.from_preset(
        "distill", "u2netp", tmp_path / "distill", tmp_path / "run", verbose=0,
        image_size=64, crop_size=None, batch=4, epochs=1, steps_per_epoch=2, val_every_steps=1,
    )
    assert config.init == str(IMPORTED_U2NETP_PATH)
    result = fit(config)
    info = read_model_info(result.model_path)
    assert info.config["preset"] == "distill" and info.arch == "u2netp"
    # trained on the 6 mixed + 4 teacher photos, judged on the 2 validation photos' truth only
    report = (tmp_path / "run" / "data_report.txt").read_text()
    assert "(10 train, 2 val, 2 test (left out of training and validation)" in report
    with open(tmp_path / "run" / "val_steps.csv", newline="") as handle:
        checks = list(csv.DictReader(handle))
    assert [int(c["step"]) for c in checks] == [0, 1, 2]
    assert np.isfinite(result.best_val_mae) and result.best_val_mae <= result.start_val_mae
    assert os.path.getsize(result.model_path) < 5 * 1024 * 1024


def _hand_teacher(folder: Path, photos: dict[Path, tuple[str, float]]) -> None:
    """A teacher-labelled folder as ``label`` writes it, each photo's map one constant grey."""
    from RMBG.training.label import LABEL_COLUMNS, mask_to_png, write_index_rows

    (folder / "masks").mkdir(parents=True)
    rows = []
    for photo, (category, grey) in photos.items():
        height, width = read_image(photo).shape[:2]
        mask_to_png(np.full((height, width), grey, np.float32)).save(folder / "masks" / f"{photo.stem}.png")
        rows.append({"Image Name": photo.name, "Category": category, "Image Path": str(photo),
                     "Mask Path": f"masks/{photo.stem}.png", "width": width, "height": height,
                     "Source Kind": "teacher", "Source Image": str(photo.resolve()), "split": "train"})
    write_index_rows(folder, LABEL_COLUMNS, rows)


def test_several_teachers_are_averaged_with_weights_per_category(tmp_path, shared_data):
    """Issue 38: a photo's teacher map is sum(w_i * map_i) / sum(w_i), the weights overridable per category."""
    from Preprocess.prepare import prepare
    from RMBG.training.distill_set import TeacherWeights

    sources = {"objects": shared_data / "ecssd", "people": shared_data / "people"}
    prepared = tmp_path / "prepared"
    prepare([("folder", link_pairs(shared_pairs(sources["objects"], 5), tmp_path / "src-o")),
             ("people", link_pairs(shared_pairs(sources["people"], 5), tmp_path / "src-p"))],
            prepared, val_fraction=0.2, test_fraction=0.2)
    with open(prepared / "index.csv", newline="") as handle:
        index = list(csv.DictReader(handle))
    train = {prepared / r["Image Path"]: r["Category"] for r in index if r["split"] == "train"}
    assert set(train.values()) == {"object", "person"}
    unlabelled = shared_pairs(shared_data / "cats", 1)[0][0]
    # teacher A says 0.2 everywhere, teacher B 0.8; B weighs three times as much on people only
    _hand_teacher(tmp_path / "a", {**{p: (c, 0.2) for p, c in train.items()}, unlabelled: ("unlabelled", 0.2)})
    _hand_teacher(tmp_path / "b", {**{p: (c, 0.8) for p, c in train.items()}, unlabelled: ("unlabelled", 0.8)})
    weights = TeacherWeights.parse(["1,1", "person=1,3"], 2)
    result = build_distill_set(prepared, [tmp_path / "a", tmp_path / "b"], tmp_path / "out", gt_share=0.7,
                               weights=weights)
    assert not result.problems
    with open(tmp_path / "out" / "index.csv", newline="") as handle:
        rows = {Path(r["Image Path"]).name: r for r in csv.DictReader(handle)}
    expected_teacher = {"object": 0.5, "person": (0.2 + 3 * 0.8) / 4}
    for photo, category in train.items():
        row = rows[photo.name]
        truth = read_mask(prepared / "masks" / f"{photo.stem}.png")
        target = read_mask(row["Mask Path"])
        assert np.abs(target - (0.7 * truth + 0.3 * expected_teacher[category])).max() <= 1.5 / 255, photo.name
    # the unlabelled photo, labelled by both, trains on their plain mean (no override for its category)
    alone = rows[unlabelled.name]
    assert alone["Target"] == "teacher" and abs(float(read_mask(alone["Mask Path"]).mean()) - 0.5) <= 1 / 255


def test_teacher_weights_refuse_what_they_cannot_mean():
    import pytest

    from RMBG.commands.distill_set import main as distill_main
    from RMBG.training.distill_set import TeacherWeights

    for spec, words in [("1", "give 2 weights"), ("1,-1", "give 2 weights"), ("0,0", "give 2 weights"),
                        ("person=a,b", "must be numbers")]:
        with pytest.raises(ValueError, match=words):
            TeacherWeights.parse([spec], 2)
    with pytest.raises(ValueError, match="given twice"):
        TeacherWeights.parse(["1,1", "1,2"], 2)
    assert TeacherWeights.parse([], 3).for_category("cat", 3) == (1.0, 1.0, 1.0)
    assert distill_main(["--labelled", "x", "--teacher-labels", "a", "--teacher-weights", "1,2", "--out", "y"]) == 2


def test_the_teacher_table_scores_each_teacher_and_the_mix_and_picks_per_category(tmp_path, shared_data):
    """Issue 38 item 2: a teacher that equals the truth wins its category; mixes are the weighted means."""
    from Preprocess.prepare import prepare
    from RMBG.evaluation.metrics import score_image
    from RMBG.evaluation.teacher_choice import score_teachers

    prepared = tmp_path / "prepared"
    prepare([("folder", link_pairs(shared_pairs(shared_data / "ecssd", 5), tmp_path / "src-o")),
             ("people", link_pairs(shared_pairs(shared_data / "people", 5), tmp_path / "src-p"))],
            prepared, val_fraction=0.4)
    with open(prepared / "index.csv", newline="") as handle:
        val = [r for r in csv.DictReader(handle) if r["split"] == "val"]
    assert {r["Category"] for r in val} == {"object", "person"}
    # teacher "good" is the truth on people and its inverse on objects; "flat" is 0.5 grey everywhere
    from RMBG.training.label import LABEL_COLUMNS, mask_to_png, write_index_rows

    for name in ("good", "flat"):
        (tmp_path / name / "masks").mkdir(parents=True)
        rows = []
        for r in val:
            truth = read_mask(prepared / r["Mask Path"])
            soft = (truth if r["Category"] == "person" else 1 - truth) if name == "good" else np.full_like(truth, 0.5)
            mask_to_png(soft).save(tmp_path / name / "masks" / f"{Path(r['Image Name']).stem}.png")
            rows.append({"Image Name": r["Image Name"], "Category": r["Category"], "Image Path": r["Image Path"],
                         "Mask Path": f"masks/{Path(r['Image Name']).stem}.png",
                         "Source Image": str((prepared / r["Image Path"]).resolve()), "split": "train"})
        write_index_rows(tmp_path / name, LABEL_COLUMNS, rows)
    table = score_teachers(prepared, [tmp_path / "good", tmp_path / "flat"], ["good", "flat"])
    summaries = table.summaries()
    assert [c.label for c in table.candidates][0] == "good" and table.candidates[-1].label == "flat"
    assert summaries["good"][1]["person"]["mae"] <= 1 / 255
    # the 0.5 mix of the two, photo by photo, is the mean of the two maps
    half = next(c for c in table.candidates if c.weights == (0.5, 0.5))
    first = val[0]
    truth = read_mask(prepared / first["Mask Path"])
    good = truth if first["Category"] == "person" else 1 - truth
    expected = score_image(np.round((0.5 * good + 0.25) * 255) / 255, truth).mae
    assert abs(half.scores[0].mae - expected) <= 1 / 255
    chosen = table.choice()
    assert chosen["person"].label == "good"
    assert chosen["object"].label == "flat"  # on objects every mix with the inverse is worse than grey alone
    # the mix takes each category's winner: its person figure is "good"'s, its object figure the object winner's
    mix_overall, mix_by_cat = table.mix_summary()
    assert mix_by_cat["person"]["mae"] == summaries["good"][1]["person"]["mae"]
    assert mix_by_cat["object"]["mae"] == summaries[chosen["object"].label][1]["object"]["mae"]
    arguments = table.weights_arguments()
    assert len(arguments) == 2 and arguments[1].startswith(("object=", "person="))


def test_duts_joins_as_a_category_of_its_own_and_its_held_out_photos_never_train(tmp_path, shared_data):
    """Issue 38 item 3: DUTS-TR split three ways as category ``duts``; adding it moves no other photo's split,
    and a teacher map of a DUTS validation or test photo (by its DUTS-TR name) is kept out of training."""
    from Preprocess.prepare import prepare

    prepared = tmp_path / "prepared"
    prepare([("folder", link_pairs(shared_pairs(shared_data / "ecssd", 10), tmp_path / "src-o"))],
            prepared, val_fraction=0.2, test_fraction=0.2)
    with open(prepared / "index.csv", newline="") as handle:
        before = {r["Image Name"]: r["split"] for r in csv.DictReader(handle)}
    duts = shared_pairs(shared_data / "duts-tr", 20)
    prepare([("folder", link_pairs(duts, tmp_path / "src-d"))], prepared, category="duts",
            val_fraction=0.1, test_fraction=0.1)
    with open(prepared / "index.csv", newline="") as handle:
        index = list(csv.DictReader(handle))
    assert {r["Image Name"]: r["split"] for r in index if r["Category"] != "duts"} == before
    duts_rows = [r for r in index if r["Category"] == "duts"]
    assert [r["split"] for r in duts_rows].count("val") == 2 and [r["split"] for r in duts_rows].count("test") == 2
    # a teacher labels every DUTS photo from its own DUTS-TR file name (the linked source, not the prepared copy)
    held_out = {Path(r["Source Image"]).name for r in duts_rows if r["split"] != "train"}
    _hand_teacher(tmp_path / "teacher", {
        tmp_path / "src-d" / "images" / image.name: ("duts", 0.5) for image, _ in duts})
    result = build_distill_set(prepared, [tmp_path / "teacher"], tmp_path / "out", gt_share=0.7)
    with open(tmp_path / "out" / "index.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    trained = {Path(r["Image Path"]).name for r in rows if r["split"] == "train"}
    assert not trained & held_out
    assert {Path(path).name for path, _why in result.problems} == held_out
    assert all(r["Target"] == "gt" for r in rows if r["split"] != "train")
    assert sum(r["Target"] == "mix:0.7" for r in rows if r["Category"] == "duts") == 16
