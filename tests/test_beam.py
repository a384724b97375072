"""The Beam pipeline (``python -m RMBG beam``) on the DirectRunner, in-process and multi-processing.

20 shared photos plus the bad files of ``shared_sets.BAD_FILES``: the outputs equal
``remove``'s on the same folder (within 1/255), the manifest has one line per
input with the bad ones ``failed`` and their reason, a rerun with
``--skip-existing`` makes no model call, and the handler batches.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("apache_beam", reason="apache-beam is not installed (pip install -e .[beam])")

from shared_sets import BAD_FILES  # noqa: E402

from RMBG.apps.beam import pipeline  # noqa: E402
from RMBG.apps.beam.handler import Photo, RemovalModelHandler, RemoverSpec  # noqa: E402
from RMBG.commands import beam as beam_command  # noqa: E402
from RMBG.commands.remove import main as remove_main  # noqa: E402

#: Shared photos per set (ecssd objects, people portraits): 20 in all.
PER_SET = 10


@pytest.fixture(scope="module")
def model(model_path) -> Path:
    """The shipped model (a skip with the reason when it is absent)."""
    return model_path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, shared_data) -> tuple[Path, dict[str, str]]:
    """A folder of 20 shared photos and one file of each bad kind; the bad names -> their reasons."""
    folder = tmp_path_factory.mktemp("beam") / "in"
    folder.mkdir()
    photos = []
    for name in ("ecssd", "people"):
        photos += sorted((shared_data / name / "images").glob("*.jpg"))[:PER_SET]
    assert len(photos) == 2 * PER_SET
    for photo in photos:
        shutil.copy(photo, folder / photo.name)
    with Image.open(photos[-1]) as img:
        portrait = img.convert("RGB")
    bad = {}
    for kind, (name, make, reason) in BAD_FILES.items():
        # "not an image" as a .jpg: a text file with a photo's name
        suffix = ".jpg" if kind == "not an image" else Path(name).suffix
        path = folder / f"bad_{kind.replace(' ', '_')}{suffix}"
        make(path, portrait)
        bad[str(path)] = reason
    return folder, bad


def rows(folder: Path) -> list[dict]:
    lines = (folder / pipeline.MANIFEST_NAME).read_text().splitlines()
    return sorted((json.loads(line) for line in lines), key=lambda row: row["input"])


def pictures(folder: Path) -> dict[str, Path]:
    """Every file under ``folder`` but the manifest, hidden ones included, by relative path."""
    return {str(p.relative_to(folder)): p for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != pipeline.MANIFEST_NAME}


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        assert img.mode == "RGBA"
        return np.asarray(img).astype(np.int16)


def beam(folder: Path, out: Path, model: Path, *extra: str) -> tuple[int, dict[str, int]]:
    return beam_command.run(["--input", str(folder), "--output", str(out), "--model", str(model), *extra])


@pytest.fixture(scope="module")
def reference(inputs, model) -> Path:
    """``remove`` on the same folder, model and mode."""
    folder, _ = inputs
    out = folder.parent / "remove"
    assert remove_main([str(folder), "--out", str(out), "--model", str(model), "--quiet"]) == 1  # the bad files
    return out


@pytest.fixture(scope="module")
def first_run(inputs, model):
    """The in-process run: its exit status, counters, manifest and output mtimes (before any rerun)."""
    folder, _ = inputs
    out = folder.parent / "beam"
    code, totals = beam(folder, out, model)
    return code, totals, rows(out), {name: p.stat().st_mtime_ns for name, p in pictures(out).items()}, out


def test_outputs_equal_those_of_remove(first_run, reference):
    *_, out = first_run
    ours, theirs = pictures(out), pictures(reference)
    assert len(theirs) == 2 * PER_SET
    assert sorted(ours) == sorted(theirs)  # same names, no temporaries or bad-file outputs left
    for name, path in theirs.items():
        difference = np.abs(pixels(ours[name]) - pixels(path))
        assert difference.max() <= 1, f"{name}: differs from remove's output by {difference.max()}/255"


def test_manifest_has_one_line_per_input_and_the_reasons(first_run, inputs):
    code, totals, lines, _, out = first_run
    folder, bad = inputs
    assert code == 1  # some inputs failed
    assert [row["input"] for row in lines] == sorted(str(p) for p in folder.iterdir())
    assert all(set(row) == {"input", "status", "output", "error", "seconds"} for row in lines)
    failed = {row["input"]: row for row in lines if row["status"] == "failed"}
    assert sorted(failed) == sorted(bad)
    for path, reason in bad.items():
        assert reason in failed[path]["error"]
        assert failed[path]["output"] is None
        assert not (out / (Path(path).stem + ".png")).exists()
    done = [row for row in lines if row["status"] == "ok"]
    assert len(done) == 2 * PER_SET
    for row in done:
        assert row["error"] is None and row["seconds"] > 0
        assert Path(row["output"]) == out / (Path(row["input"]).stem + ".png")
        assert Path(row["output"]).is_file()
    assert (totals["ok"], totals["skipped"], totals["failed"]) == (2 * PER_SET, 0, len(bad))


def test_the_handler_batches(first_run):
    _, totals, *_ = first_run
    assert 1 <= totals["model_calls"] < 2 * PER_SET


def test_rerun_with_skip_existing_computes_nothing(first_run, inputs, model):
    *_, before, out = first_run
    folder, bad = inputs
    code, totals = beam(folder, out, model, "--skip-existing")
    assert code == 1 and totals["model_calls"] == 0
    assert (totals["ok"], totals["skipped"], totals["failed"]) == (0, 2 * PER_SET, len(bad))
    assert {name: p.stat().st_mtime_ns for name, p in pictures(out).items()} == before
    lines = rows(out)
    assert len(lines) == 2 * PER_SET + len(bad)
    assert sorted(row["input"] for row in lines if row["status"] == "skipped") == sorted(
        str(p) for p in folder.iterdir() if str(p) not in bad)
    # Without --skip-existing or --overwrite an existing output is refused, and still not computed.
    code, totals = beam(folder, out, model)
    assert code == 1 and totals["model_calls"] == 0 and totals["failed"] == 2 * PER_SET + len(bad)
    assert sum("(pass --skip-existing or --overwrite)" in (row["error"] or "") for row in rows(out)) == 2 * PER_SET
    assert {name: p.stat().st_mtime_ns for name, p in pictures(out).items()} == before


def test_multi_processing_run_matches(inputs, model, reference, tmp_path):
    folder, bad = inputs
    some = tmp_path / "in"
    some.mkdir()
    chosen = sorted(folder.glob("*_000*.jpg"))[:4] + [Path(p) for p in sorted(bad)[:1]]
    for path in chosen:
        shutil.copy(path, some / path.name)
    out = tmp_path / "out"
    code, totals = beam(some, out, model, "--direct_running_mode", "multi_processing", "--direct_num_workers", "2")
    assert code == 1 and (totals["ok"], totals["failed"]) == (4, 1)
    lines = rows(out)
    assert [row["status"] for row in lines if row["input"].endswith(Path(chosen[-1]).name)] == ["failed"]
    assert len(lines) == len(chosen)
    for path in chosen[:4]:
        name = path.stem + ".png"
        assert np.abs(pixels(out / name) - pixels(reference / name)).max() <= 1


def test_a_photo_the_model_fails_on_fails_alone(model):
    handler = RemovalModelHandler(RemoverSpec(str(model)), max_batch_size=4)
    remover = handler.load_model()
    size = remover.input_size
    image = np.full((40, 30, 3), 128, np.uint8)
    good = remover.segmenter.preprocess(image)
    batch = [(Photo(f"p{i}", f"t{i}", image), tensor)
             for i, tensor in enumerate([good, np.zeros((size + 1, size, 3), np.float32), good])]
    results = list(handler.run_inference(batch, remover))
    assert [photo.source for photo, _ in results] == ["p0", "p1", "p2"]
    assert isinstance(results[1][1], Exception)
    expected = remover.small_masks([image])[0]
    for _, mask in (results[0], results[2]):
        assert mask.shape == (size, size) and np.abs(mask - expected).max() < 1e-3
    assert handler.batch_elements_kwargs() == {"min_batch_size": 1, "max_batch_size": 4}


def test_output_names_follow_remove():
    assert pipeline.pattern_base("gs://bucket/photos/**/*.jpg") == "gs://bucket/photos"
    assert pipeline.pattern_base("/data/a/b.png") == "/data/a"
    assert pipeline.target_of("/in/x/y.jpg", "/in", "/out", "rgba") == "/out/x/y.png"
    assert pipeline.target_of("/in/x/y.jpg", "/in", "/out", "color") == "/out/x/y.jpg"
    assert pipeline.target_of("/in/x/y.gif", "/in", "/out", "color") == "/out/x/y.png"
    assert pipeline.expand_pattern("gs://b/in/") == "gs://b/in/**"


def test_bad_options_are_refused_before_running(tmp_path, capsys):
    assert beam_command.main(["--input", str(tmp_path), "--output", str(tmp_path / "o"), "--threshold", "2"]) == 2
    assert beam_command.main(["--input", str(tmp_path), "--output", str(tmp_path / "o"),
                           "--model", str(tmp_path / "missing.tflite")]) == 2
    assert "missing.tflite: file not found" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
