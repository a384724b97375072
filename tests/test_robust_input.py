"""Odd and bad input files, each made here: every one works or fails naming the file and why.

Runs ``python -m RMBG remove`` in-process with the peer model (fast, no
TensorFlow), except the two huge pictures, which run the default runtime in a
subprocess that reports its own peak memory.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from shared_sets import BAD_FILES

from RMBG.commands.remove import main

PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: The issue's bound for a 6000x4000 photo.
PEAK_LIMIT_BYTES = 2 * 1024**3
#: Runs ``python -m RMBG ...`` and prints its own peak RSS in KiB. ``VmHWM`` belongs to
#: the process's own memory map, which exec starts afresh; ``ru_maxrss`` would not do:
#: Linux carries it over from the parent (a large pytest process) through fork and exec.
DRIVER = (
    "import re, sys\n"
    "from RMBG.__main__ import main\n"
    "code = main(sys.argv[1:])\n"
    "status = open('/proc/self/status').read()\n"
    "print('MAXRSS_KB', re.search(r'VmHWM:\\s+(\\d+) kB', status).group(1))\n"
    "sys.exit(code)\n"
)


@pytest.fixture(scope="module")
def portrait(shared_data) -> Image.Image:
    """A real portrait from the shared people set (wider than tall or the reverse)."""
    path = sorted((shared_data / "people" / "images").glob("*.jpg"))[0]
    with Image.open(path) as img:
        picture = img.convert("RGB")
    assert picture.width != picture.height
    return picture


def remove(files, out: Path, model: Path, *extra: str) -> int:
    return main([*map(str, files), "--out", str(out), "--model", str(model), "--quiet", *extra])


def outputs(folder: Path) -> list[Path]:
    """Every file in ``folder``, hidden temporaries included."""
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def rgba_of(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        assert img.mode == "RGBA"
        return np.asarray(img)


# ---------------------------------------------------------------------------
# Files that cannot be used: exit 1, the file named with the reason, nothing written
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_bad_file_fails_with_its_name_and_reason(kind, tmp_path, portrait, peer_onnx, capsys):
    name, make, reason = BAD_FILES[kind]
    bad = tmp_path / "in" / name
    bad.parent.mkdir()
    make(bad, portrait)
    good = tmp_path / "in" / "good.jpg"
    portrait.save(good)
    before = bad.read_bytes()
    out = tmp_path / "out"
    assert remove([bad, good], out, peer_onnx) == 1
    report = capsys.readouterr().out
    assert f"failed  {bad}: {reason}" in report
    assert "done 1, skipped 0, failed 1" in report
    assert [p.name for p in outputs(out)] == ["good.png"]  # the other file is still done
    assert bad.read_bytes() == before


# ---------------------------------------------------------------------------
# Odd files that work
# ---------------------------------------------------------------------------
def _run_one(tmp_path: Path, peer_onnx: Path, picture: Image.Image, name: str, **save) -> np.ndarray:
    source = tmp_path / "in" / name
    source.parent.mkdir(exist_ok=True)
    picture.save(source, **save)
    out = tmp_path / "out"
    # these tests are about decoding, so the cut-out keeps the decoded colours at soft edges too
    assert remove([source], out, peer_onnx, "--no-foreground-estimation") == 0
    return rgba_of(out / (Path(name).stem + ".png"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory, portrait, peer_onnx):
    """The rgba output for the plain RGB PNG of the portrait."""
    return _run_one(tmp_path_factory.mktemp("ref"), peer_onnx, portrait, "plain.png")


def test_cmyk_jpeg_works_with_its_colours(tmp_path, portrait, peer_onnx, reference):
    out = _run_one(tmp_path, peer_onnx, portrait.convert("CMYK"), "cmyk.jpg", quality=95)
    assert out.shape == reference.shape
    assert np.abs(out[..., :3].astype(int) - reference[..., :3]).mean() < 6
    assert np.abs(out[..., 3].astype(int) - reference[..., 3]).mean() / 255 < 0.03


def test_16bit_png_works_scaled_to_8_bits(tmp_path, portrait, peer_onnx):
    grey8 = np.asarray(portrait.convert("L"))
    sixteen = Image.fromarray(grey8.astype(np.uint16) * 257)  # full 16-bit range, mode I;16
    assert sixteen.mode == "I;16"
    out16 = _run_one(tmp_path, peer_onnx, sixteen, "deep.png")
    out8 = _run_one(tmp_path, peer_onnx, Image.fromarray(grey8), "grey.png")
    assert np.abs(out16[..., 0].astype(int) - grey8).max() <= 1
    assert np.abs(out16[..., 3].astype(int) - out8[..., 3]).mean() / 255 < 0.01


def test_greyscale_works_as_grey_rgb(tmp_path, portrait, peer_onnx):
    grey = portrait.convert("L")
    out = _run_one(tmp_path, peer_onnx, grey, "grey.jpg", quality=95)
    assert out.shape[:2] == (grey.height, grey.width)
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
    assert 0 < out[..., 3].mean() < 255  # a real cut-out, not all or nothing


def test_palette_png_works_with_its_colours(tmp_path, portrait, peer_onnx, reference):
    palette = portrait.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    out = _run_one(tmp_path, peer_onnx, palette, "palette.png")
    assert np.array_equal(out[..., :3], np.asarray(palette.convert("RGB")))
    assert np.abs(out[..., 3].astype(int) - reference[..., 3]).mean() / 255 < 0.03


def test_rgba_uses_its_colour_and_ignores_its_alpha(tmp_path, portrait, peer_onnx, reference):
    rgba = portrait.convert("RGBA")
    alpha = np.full((portrait.height, portrait.width), 255, np.uint8)
    alpha[:, : portrait.width // 2] = 0  # half of it fully transparent
    rgba.putalpha(Image.fromarray(alpha))
    out = _run_one(tmp_path, peer_onnx, rgba, "rgba.png")
    assert np.array_equal(out[..., :3], np.asarray(portrait))
    assert np.array_equal(out[..., 3], reference[..., 3])  # the same mask as the opaque photo


def test_exif_rotated_output_follows_the_displayed_orientation(tmp_path, portrait, peer_onnx, reference):
    stored = portrait.transpose(Image.Transpose.ROTATE_90)  # orientation 6 turns it back
    exif = Image.Exif()
    exif[0x0112] = 6
    out = _run_one(tmp_path, peer_onnx, stored, "rotated.jpg", exif=exif, quality=95)
    assert out.shape == reference.shape  # displayed size, not stored size
    assert np.abs(out[..., 3].astype(int) - reference[..., 3]).mean() / 255 < 0.03


def test_one_pixel_image_works(tmp_path, peer_onnx):
    out = _run_one(tmp_path, peer_onnx, Image.new("RGB", (1, 1), (200, 30, 30)), "dot.png")
    assert out.shape == (1, 1, 4) and tuple(out[0, 0, :3]) == (200, 30, 30)


# ---------------------------------------------------------------------------
# Never over an input; no half files
# ---------------------------------------------------------------------------
def test_output_onto_the_input_is_refused(tmp_path, portrait, peer_onnx, capsys):
    source = tmp_path / "photo.png"
    portrait.save(source)
    before = source.read_bytes()
    assert remove([source], tmp_path, peer_onnx, "--overwrite") == 1
    assert f"failed  {source}: output {source} would overwrite an input file" in capsys.readouterr().out
    assert source.read_bytes() == before


def test_interrupted_run_leaves_no_half_file(tmp_path, portrait, peer_onnx, monkeypatch):
    source = tmp_path / "in" / "photo.jpg"
    source.parent.mkdir()
    portrait.save(source)
    out = tmp_path / "out"

    def save_half_then_stop(self, fp, *args, **kwargs):
        Path(fp).write_bytes(b"\x89PNG half written")
        raise KeyboardInterrupt  # as if the user pressed Ctrl-C in the middle of writing

    monkeypatch.setattr(Image.Image, "save", save_half_then_stop)
    with pytest.raises(KeyboardInterrupt):
        remove([source], out, peer_onnx)
    assert outputs(out) == []


# ---------------------------------------------------------------------------
# Huge pictures, in a subprocess that reports its peak memory
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def runtime_model(peer_onnx) -> list[str]:
    """``--model`` arguments for the huge-picture runs: the default model's fast copy, else the peer."""
    from RMBG.runtime.engines import default_model_path, fast_segmenter

    try:
        segmenter = fast_segmenter(default_model_path())  # converts once, cached under Data/cache
    except FileNotFoundError:
        return ["--model", str(peer_onnx)]
    return ["--model", str(segmenter.path)]


def run_child(args: list[str]) -> tuple[int, str, int]:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, *args], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    peak = [int(line.split()[1]) * 1024 for line in done.stdout.splitlines() if line.startswith("MAXRSS_KB")]
    assert peak, done.stdout + done.stderr
    return done.returncode, done.stdout, peak[0]


def test_6000x4000_photo_stays_under_2_gib(tmp_path, runtime_model):
    picture = np.zeros((4000, 6000, 3), np.uint8)
    picture[:] = (40, 90, 160)
    picture[1000:3500, 2000:4000] = (220, 180, 120)  # cheap content: a block on a plain ground
    source = tmp_path / "big.jpg"
    Image.fromarray(picture).save(source, quality=90)
    out = tmp_path / "out"
    code, report, peak = run_child(["remove", str(source), "--out", str(out), "--quiet", *runtime_model])
    assert code == 0, report
    with Image.open(out / "big.png") as result:
        assert result.size == (6000, 4000) and result.mode == "RGBA"
    assert peak < PEAK_LIMIT_BYTES, f"peak RSS {peak / 2**30:.2f} GiB"


def test_10000x10000_image_works(tmp_path, runtime_model):
    source = tmp_path / "huge.png"
    Image.new("RGB", (10000, 10000), (30, 120, 200)).save(source)
    out = tmp_path / "out"
    code, report, peak = run_child(["remove", str(source), "--out", str(out), "--quiet", "--mode", "mask", *runtime_model])
    assert code == 0, report
    with Image.open(out / "huge.png") as result:
        assert result.size == (10000, 10000) and result.mode == "L"
    assert peak < 2 * PEAK_LIMIT_BYTES, f"peak RSS {peak / 2**30:.2f} GiB"
