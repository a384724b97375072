"""RMBG.evaluation.evaluate on real ECSSD photos with the rembg peer: report shape, cache, bad data."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from RMBG.commands.evaluate import main
from RMBG.evaluation.evaluate import (
    REPORT_KEYS,
    EvaluationError,
    evaluate,
    find_samples,
    model_key,
)
from RMBG.evaluation.metrics import score_image
from RMBG.images.io import read_mask
from RMBG.runtime.engines import OnnxPeerSegmenter, file_digest


def _cached_prediction(cache_dir: Path, peer: OnnxPeerSegmenter, image: Path) -> np.ndarray:
    """The cached 8-bit prediction of ``peer`` for ``image``."""
    folder = cache_dir / model_key(peer)
    with Image.open(folder / f"{file_digest(image)}.png") as img:
        return np.asarray(img)


class CountingPeer(OnnxPeerSegmenter):
    """The peer, counting the photos it is actually run on."""

    def __init__(self, path):
        super().__init__(path)
        self.photos = 0

    def _infer(self, batch):
        self.photos += len(batch)
        return super()._infer(batch)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    """One prediction cache for the module, so each photo meets the peer once."""
    return tmp_path_factory.mktemp("prediction-cache")


@pytest.fixture(scope="module")
def ecssd_run(shared_data, peer_onnx, cache_dir, tmp_path_factory):
    """The first evaluation of 10 ECSSD photos with the peer (fills the cache)."""
    out = tmp_path_factory.mktemp("report")
    peer = CountingPeer(peer_onnx)
    report = evaluate(shared_data / "ecssd", peers=[peer], out_dir=out, limit=10,
                      cache_dir=cache_dir, progress=False)
    return report, out, peer


def test_report_has_the_issue_shape_and_sane_peer_scores(ecssd_run):
    report, out, peer = ecssd_run
    assert peer.photos == 10  # every photo predicted once (the gallery reuses the cache)
    assert set(report) == {"images", "models"} and report["images"] == 10
    assert list(report["models"]) == ["u2netp"]
    result = report["models"]["u2netp"]
    assert set(result) == {"summary", "per_category"}
    assert list(result["summary"]) == list(REPORT_KEYS)
    assert list(result["per_category"]) == ["object"]
    assert list(result["per_category"]["object"]) == list(REPORT_KEYS)
    summary = result["summary"]
    # About 0.02-0.04 with rembg's preprocessing: a broken pipeline lands far above.
    assert summary["mae"] < 0.08
    assert summary["max_f"] > 0.85 and summary["s_measure"] > 0.85 and summary["iou"] > 0.75
    assert summary["max_f"] >= summary["mean_f"] and summary["max_e"] >= summary["mean_e"]
    assert summary["seconds_per_image"] > 0
    assert json.loads((out / "report.json").read_text()) == report


def test_per_image_csv_and_figures(ecssd_run, shared_data, cache_dir):
    report, out, _ = ecssd_run
    table = pd.read_csv(out / "per_image.csv")
    assert len(table) == 10 and set(table["model"]) == {"u2netp"}
    assert set(REPORT_KEYS[:-1]) <= set(table.columns)
    assert table["mae"].mean() == pytest.approx(report["models"]["u2netp"]["summary"]["mae"], abs=1e-5)
    # A per-image value is the metric of that photo's cached prediction against its own mask.
    row = table.iloc[0]
    gt = read_mask(shared_data / "ecssd" / "masks" / (Path(row["image"]).stem + ".png"))
    pred = _cached_prediction(cache_dir, ecssd_run[2], shared_data / "ecssd" / "images" / row["image"])
    assert row["mae"] == pytest.approx(score_image(pred, gt).mae, abs=1e-6)
    for name in ("pr_curve.png", "gallery.png"):
        with Image.open(out / name) as img:
            assert img.width > 200 and img.height > 200
    run = json.loads((out / "run.json").read_text())
    assert run["models"][0]["kind"] == "peer" and run["skipped_or_warned"] == []


def test_rerun_is_served_from_the_cache_with_identical_numbers(ecssd_run, peer_onnx, shared_data,
                                                               cache_dir, tmp_path):
    first, _, _ = ecssd_run
    peer = CountingPeer(peer_onnx)
    again = evaluate(shared_data / "ecssd", peers=[peer], out_dir=tmp_path, limit=10,
                     cache_dir=cache_dir, progress=False)
    assert peer.photos == 0
    assert again == first
    assert pd.read_csv(tmp_path / "per_image.csv")["cached"].all()


def _copy_pair(shared_data, stem, images, masks, new_stem, mask=True):
    shutil.copy(shared_data / "ecssd" / "images" / f"{stem}.jpg", images / f"{new_stem}.jpg")
    if mask:
        shutil.copy(shared_data / "ecssd" / "masks" / f"{stem}.png", masks / f"{new_stem}.png")


@pytest.fixture
def odd_dataset(shared_data, tmp_path) -> Path:
    """Two good pairs (two categories), a smaller mask, a missing mask, a broken photo."""
    stems = [p.stem for p in sorted((shared_data / "ecssd" / "images").glob("*.jpg"))[:4]]
    root = tmp_path / "odd"
    images, masks = root / "images", root / "masks"
    images.mkdir(parents=True)
    masks.mkdir()
    _copy_pair(shared_data, stems[0], images, masks, "object_good")
    _copy_pair(shared_data, stems[1], images, masks, "person_good")
    _copy_pair(shared_data, stems[2], images, masks, "object_small", mask=False)
    with Image.open(shared_data / "ecssd" / "masks" / f"{stems[2]}.png") as big:
        big.resize((big.width * 9 // 10, big.height * 9 // 10), Image.NEAREST).save(masks / "object_small.png")
    _copy_pair(shared_data, stems[3], images, masks, "object_nomask", mask=False)
    (images / "object_broken.jpg").write_bytes(b"this is not a jpeg")
    shutil.copy(masks / "object_good.png", masks / "object_broken.png")
    names = ["object_broken", "object_good", "object_nomask", "object_small", "person_good"]
    assert [p.stem for p in sorted(images.iterdir())] == names
    pd.DataFrame({"image": [f"images/{n}.jpg" for n in names],
                  "split": ["val", "train", "val", "val", "val"]}).to_csv(root / "index.csv", index=False)
    (root / "small_is").write_text(stems[2])
    return root


def test_odd_pairs_are_resized_reported_or_skipped(odd_dataset, shared_data, peer_onnx, cache_dir, tmp_path):
    peer = CountingPeer(peer_onnx)
    with pytest.warns(UserWarning) as caught:
        report = evaluate(odd_dataset, peers=[peer], out_dir=tmp_path / "r", cache_dir=cache_dir,
                          progress=False, gallery_size=1)
    messages = [str(w.message) for w in caught]
    assert any("object_small.png" in m and "resized" in m for m in messages)
    assert any("object_nomask.jpg" in m and "no mask" in m for m in messages)
    assert any("object_broken.jpg" in m and "skipped" in m for m in messages)
    assert report["images"] == 3  # the two good pairs and the small-mask pair
    assert set(report["models"]["u2netp"]["per_category"]) == {"object", "person"}
    table = pd.read_csv(tmp_path / "r" / "per_image.csv").set_index("image")
    assert set(table.index) == {"object_good.jpg", "person_good.jpg", "object_small.jpg"}
    run = json.loads((tmp_path / "r" / "run.json").read_text())
    assert len(run["skipped_or_warned"]) == 3

    # The small mask is scored at its own size, and nearly as the full-size mask scores
    # the same prediction (the nearest-neighbour shrink moves its edges a little).
    small_mask = read_mask(odd_dataset / "masks" / "object_small.png")
    pred = _cached_prediction(cache_dir, peer, odd_dataset / "images" / "object_small.jpg")
    assert pred.shape != small_mask.shape
    assert table.loc["object_small.jpg", "mae"] == pytest.approx(score_image(pred, small_mask).mae, abs=1e-6)
    original = read_mask(shared_data / "ecssd" / "masks" / f"{(odd_dataset / 'small_is').read_text()}.png")
    assert table.loc["object_small.jpg", "mae"] == pytest.approx(score_image(pred, original).mae, abs=0.01)


def test_split_keeps_only_the_index_rows_of_that_split(odd_dataset):
    with pytest.warns(UserWarning, match="object_nomask"):
        samples, problems = find_samples(odd_dataset, split="val")
    assert [s.name for s in samples] == ["object_broken", "object_small", "person_good"]
    assert len(problems) == 1
    samples, _ = find_samples(odd_dataset, split="train")
    assert [s.name for s in samples] == ["object_good"]
    pd.DataFrame({"image": ["a.jpg"]}).to_csv(odd_dataset / "index.csv", index=False)
    with pytest.raises(EvaluationError, match="index.csv.*no 'split' column"):
        find_samples(odd_dataset, split="val")


def test_bad_data_folder_and_missing_models_fail_clearly(tmp_path, peer_onnx, capsys):
    with pytest.raises(EvaluationError, match="no images/ folder"):
        evaluate(tmp_path, peers=[peer_onnx], out_dir=tmp_path / "r")
    with pytest.raises(EvaluationError, match="at least one model or peer"):
        evaluate(tmp_path, out_dir=tmp_path / "r")
    assert main(["--data", str(tmp_path), "--peer", str(peer_onnx), "--out", str(tmp_path / "r")]) == 1
    assert "no images/ folder" in capsys.readouterr().err
    assert not (tmp_path / "r" / "report.json").exists()


def test_cli_prints_the_summary_table(shared_data, peer_onnx, cache_dir, tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(["--data", str(shared_data / "ecssd"), "--peer", str(peer_onnx), "--out", str(out),
                 "--limit", "3", "--cache", str(cache_dir), "--gallery", "1"])
    assert code == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    mae = report["models"]["u2netp"]["summary"]["mae"]
    assert report["images"] == 3
    assert "u2netp (peer) [object]" in printed and f"{mae:.4f}" in printed
    assert "seconds_per_image" in printed


def test_bench_measures_both_models_on_the_same_photos(shared_data, peer_onnx, tmp_path):
    from RMBG.evaluation.bench import bench, format_result

    ours = OnnxPeerSegmenter(peer_onnx)  # any Segmenter stands in for ours here
    result = bench(shared_data / "ecssd", ours, peer_onnx, n=3, batch_size=2, progress=False)
    assert result["photos"] == 3 and set(result["models"]) == {"ours", "peer"}
    for m in result["models"].values():
        assert m["seconds_per_image"] > 0 and m["images_per_second"] > 0
        assert m["median_seconds_per_image"] <= m["p90_seconds_per_image"]
        assert m["peak_rss_mib"] > 10  # a real process RSS, in MiB
    ours_s, peer_s = (result["models"][r]["seconds_per_image"] for r in ("ours", "peer"))
    assert result["ratio_ours_over_peer"]["seconds_per_image"] == pytest.approx(ours_s / peer_s)
    text = format_result(result)
    assert "ratio ours/peer" in text and "psutil RSS" in text
    with pytest.raises(ValueError, match="no images"):
        bench(tmp_path, ours, peer_onnx, n=1)


def test_bench_and_evaluate_take_several_peers_side_by_side(shared_data, peer_onnx, tmp_path):
    from RMBG.commands.bench import main as bench_main
    from RMBG.evaluation.bench import bench, format_result

    ours = OnnxPeerSegmenter(peer_onnx)
    result = bench(shared_data / "ecssd", ours, [peer_onnx, peer_onnx], n=2, batch_size=2, progress=False)
    assert set(result["models"]) == {"ours", "peer", "peer u2netp"} and set(result["ratios"]) == {"peer", "peer u2netp"}
    for role in ("peer", "peer u2netp"):
        expected = result["models"]["ours"]["seconds_per_image"] / result["models"][role]["seconds_per_image"]
        assert result["ratios"][role]["seconds_per_image"] == pytest.approx(expected)
    assert format_result(result).count("ratio ours/peer") == 2
    assert bench_main(["--data", str(shared_data / "ecssd"), "--n", "1", "--peer", str(peer_onnx),
                       "--peer", str(peer_onnx), "--model", str(peer_onnx)]) == 0

    # two peers in one evaluate run: each gets its own name and its own per-category scores
    data = tmp_path / "cats2"
    for folder in ("images", "masks"):
        (data / folder).mkdir(parents=True)
    for image in sorted((shared_data / "cats" / "images").glob("*.jpg"))[:2]:
        (data / "images" / image.name).symlink_to(image)
        (data / "masks" / f"{image.stem}.png").symlink_to(shared_data / "cats" / "masks" / f"{image.stem}.png")
    report = evaluate(data, models=[], peers=[peer_onnx, peer_onnx], out_dir=tmp_path / "report", progress=False)
    assert set(report["models"]) == {"u2netp", "u2netp-2"}
    first, second = (report["models"][name] for name in ("u2netp", "u2netp-2"))
    assert first["per_category"]["cat"]["mae"] == pytest.approx(second["per_category"]["cat"]["mae"], abs=1e-6)
    assert 0 < first["per_category"]["cat"]["mae"] < 0.5


def test_split_reads_the_index_that_preprocess_prepare_writes(shared_data, tmp_path):
    """``--split val`` on a folder made by ``python -m Preprocess prepare --val-fraction``."""
    from Preprocess.__main__ import main as preprocess_main

    source = tmp_path / "src"
    for folder in ("images", "masks"):
        (source / folder).mkdir(parents=True)
    for image in sorted((shared_data / "ecssd" / "images").glob("*.jpg"))[:6]:
        shutil.copy(image, source / "images" / image.name)
        shutil.copy(shared_data / "ecssd" / "masks" / f"{image.stem}.png", source / "masks")
    out = tmp_path / "prepared"
    assert preprocess_main(["prepare", "--source", "folder", str(source), "--out", str(out), "--val-fraction", "0.5"]) == 0
    index = pd.read_csv(out / "index.csv")
    expected = sorted(Path(name).stem for name in index.loc[index["split"] == "val", "Image Name"])
    samples, problems = find_samples(out, split="val")
    assert [s.name for s in samples] == expected and len(expected) == 3 and not problems


def test_bench_runs_a_keras_file_through_the_runtime_remove_serves(shared_data, peer_onnx):
    from RMBG.evaluation.bench import bench
    from RMBG.runtime.engines import default_model_path

    # no runtime given: the one `remove` uses (RMBG.runtime.engines.DEFAULT_RUNTIME, tflite)
    result = bench(shared_data / "ecssd", default_model_path(), peer_onnx, n=2, batch_size=2, progress=False)
    assert result["models"]["ours"]["runtime"] == "TFLiteSegmenter"
    assert result["models"]["peer"]["runtime"] == "OnnxPeerSegmenter"


def test_category_keeps_only_that_categorys_photos(odd_dataset, peer_onnx, cache_dir, tmp_path, capsys):
    samples, _ = find_samples(odd_dataset, categories=["person"])
    assert [s.name for s in samples] == ["person_good"]
    with pytest.warns(UserWarning, match="object_nomask"):
        samples, _ = find_samples(odd_dataset, split="val", categories=["object"])
    assert [s.name for s in samples] == ["object_broken", "object_small"]
    with pytest.raises(EvaluationError, match="no photo of category 'duts'.*categories there: object, person"):
        find_samples(odd_dataset, categories=["person", "duts"])
    out = tmp_path / "person"
    assert main(["--data", str(odd_dataset), "--peer", str(peer_onnx), "--out", str(out), "--category", "person",
                 "--cache", str(cache_dir), "--gallery", "0"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["images"] == 1 and list(report["models"]["u2netp"]["per_category"]) == ["person"]
    assert json.loads((out / "run.json").read_text())["categories"] == ["person"]
    assert main(["--data", str(odd_dataset), "--peer", str(peer_onnx), "--out", str(tmp_path / "none"),
                 "--category", "duts"]) == 1
    assert "no photo of category 'duts'" in capsys.readouterr().err


def test_an_ensemble_reuses_its_members_cached_maps(ecssd_run, shared_data, peer_onnx, model_path, cache_dir,
                                                     tmp_path):
    from RMBG.evaluation.evaluate import to_uint8
    from RMBG.images.io import read_image
    from RMBG.runtime.engines import load_segmenter
    from RMBG.runtime.ensemble import EnsembleSegmenter

    # ecssd_run cached the counting peer on these photos: as a member it is not run again
    peer, ours = CountingPeer(peer_onnx), load_segmenter(model_path)
    ensemble = EnsembleSegmenter([peer, ours])
    first = evaluate(shared_data / "ecssd", peers=[ensemble], out_dir=tmp_path / "a", limit=3,
                     cache_dir=cache_dir, progress=False, gallery_size=0)
    assert peer.photos == 0
    run = json.loads((tmp_path / "a" / "run.json").read_text())["models"][0]
    assert run["predicted"] == 3 and run["cache"] == f"{cache_dir / model_key(peer)} + {cache_dir / model_key(ours)}"
    # within one 8-bit level of the rounded mean of the members' float maps, and scored as that map
    photos, _ = find_samples(shared_data / "ecssd", limit=3)
    table = pd.read_csv(tmp_path / "a" / "per_image.csv")
    for sample, mae in zip(photos, table["mae"]):
        image = read_image(sample.image)
        exact = to_uint8(ensemble.predict([image])[0]).astype(int)
        mean = np.rint((_cached_prediction(cache_dir, peer, sample.image).astype(np.float32)
                        + _cached_prediction(cache_dir, ours, sample.image)) / 2)
        assert np.abs(mean - exact).max() <= 1
        assert mae == pytest.approx(score_image(mean.astype(np.uint8), read_mask(sample.mask)).mae, abs=1e-6)
    # both members cached now: the same numbers, nothing run, and the time is the members' sum
    again = evaluate(shared_data / "ecssd", peers=[EnsembleSegmenter([CountingPeer(peer_onnx), ours])],
                     out_dir=tmp_path / "b", limit=3, cache_dir=cache_dir, progress=False, gallery_size=0)
    assert again == first and json.loads((tmp_path / "b" / "run.json").read_text())["models"][0]["predicted"] == 0
    single = evaluate(shared_data / "ecssd", peers=[peer], models=[ours], out_dir=tmp_path / "c", limit=3,
                      cache_dir=cache_dir, progress=False, gallery_size=0)["models"]
    times = [m["summary"]["seconds_per_image"] for m in single.values()]
    assert first["models"][ensemble.name]["summary"]["seconds_per_image"] == pytest.approx(sum(times), abs=2e-6)
