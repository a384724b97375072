"""Background removal: output modes, refinement, remove_background and the batch CLI.

The model here is the peer U-2-Net-P (onnxruntime, no TensorFlow import), so
these tests are about what predict/compose/refine do with real masks.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from shared_sets import pairs

from RMBG.apps.batch.jobs import remove_background
from RMBG.commands.remove import main
from RMBG.images.inputs import expand_inputs
from RMBG.images.io import read_image, read_mask
from RMBG.removal import compose as C
from RMBG.removal import edges as R
from RMBG.removal.foreground import spread_band, spread_width
from RMBG.runtime.engines import load_segmenter, upsample_mask


@pytest.fixture(scope="module")
def peer(peer_onnx):
    return load_segmenter(peer_onnx, peer=True)


@pytest.fixture(scope="module")
def people(shared_data):
    """Three real portraits with their ground-truth masks resized to the photo."""
    found = []
    for image_path, mask_path in pairs(shared_data / "people", limit=3):
        image = read_image(image_path)
        mask = cv2.resize(read_mask(mask_path), (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)
        found.append((image_path, image, mask))
    return found


# ---------------------------------------------------------------------------
# Output modes
# ---------------------------------------------------------------------------
def test_rgba_and_mask_carry_the_photo_and_its_mask(people):
    _, image, mask = people[0]
    # the true mask is an exact (hard) matte: no band of estimated colours (model_side=None)
    rgba = np.asarray(C.compose(image, mask, "rgba", model_side=None))
    grey = C.compose(image, mask, "mask")
    assert rgba.shape == image.shape[:2] + (4,)
    assert np.array_equal(rgba[..., :3], image)
    expected = np.rint(np.clip(mask, 0, 1) * 255).astype(np.uint8)
    assert np.array_equal(rgba[..., 3], expected)
    assert grey.mode == "L" and np.array_equal(np.asarray(grey), expected)


def test_side_by_side_is_photo_grey_line_and_cutout_on_checkerboard(people):
    _, image, mask = people[0]
    h, w = image.shape[:2]
    hard = (mask > 0.5).astype(np.float32)
    out = np.asarray(C.compose(image, hard, "side-by-side", model_side=None))  # an exact matte
    assert out.shape == (h, 2 * w + C.SEPARATOR_WIDTH, 3)
    assert np.array_equal(out[:, :w], image)
    assert (out[:, w : w + C.SEPARATOR_WIDTH] == C.SEPARATOR_GREY).all()
    right = out[:, w + C.SEPARATOR_WIDTH :]
    fg = hard > 0.5
    assert np.array_equal(right[fg], image[fg])
    # background shows only the two checkerboard greys, in both of them
    assert set(np.unique(right[~fg])) == {C.CHECKER_DARK, C.CHECKER_LIGHT}


def test_color_mode_blends_with_the_colour(people):
    _, image, mask = people[1]
    out = np.asarray(C.compose(image, mask, "color", bg_color="#00FF00", model_side=None)).astype(int)  # exact matte
    a = np.rint(np.clip(mask, 0, 1) * 255) / 255.0
    expected = image * a[..., None] + np.array([0, 255, 0]) * (1 - a[..., None])
    assert np.abs(out - expected).max() <= 1.0
    assert (out[a == 0] == [0, 255, 0]).all()


def test_image_mode_covers_with_the_background_photo(people):
    _, image, mask = people[0]
    _, other, _ = people[1]
    h, w = image.shape[:2]
    out = np.asarray(C.compose(image, mask, "image", bg_image=other))
    cover = C.cover_resize(other, h, w)
    bg = mask == 0
    assert bg.any()
    assert np.abs(out[bg].astype(int) - cover[bg]).max() <= 1


def test_cover_resize_keeps_aspect_and_crops_the_centre():
    # a 200x100 picture whose left, middle and right thirds differ
    picture = np.zeros((100, 300, 3), np.uint8)
    picture[:, 100:200] = 255
    out = C.cover_resize(picture, 50, 50)  # scale 0.5 -> 50x150, centre crop keeps the white middle
    assert out.shape == (50, 50, 3)
    assert out[:, 5:45].min() >= 250


def test_blur_mode_blurs_the_background_without_a_halo():
    # a pure red subject on black/white stripes: a naive blur would bleed red
    image = np.zeros((200, 200, 3), np.uint8)
    image[:, ::4] = 255
    image[:, 1::4] = 255
    image[60:140, 60:140] = (255, 0, 0)
    alpha = np.zeros((200, 200), np.float32)
    alpha[60:140, 60:140] = 1.0
    out = np.asarray(C.compose(image, alpha, "blur", blur_sigma=0.03)).astype(int)
    assert np.array_equal(out[60:140, 60:140], image[60:140, 60:140])
    ring = out[40:56, 60:140]  # background just above the subject
    assert ring.std() < image[40:56, 60:140].std() / 4  # stripes are blurred out
    assert np.abs(ring[..., 0] - ring[..., 1]).max() <= 6  # no red from the subject


def test_parse_color_accepts_hex_and_names_and_explains_bad_ones():
    assert C.parse_color("#00FF00") == (0, 255, 0)
    assert C.parse_color("#0f0") == (0, 255, 0)
    assert C.parse_color("white") == (255, 255, 255)
    with pytest.raises(ValueError, match="#RRGGBB"):
        C.parse_color("#12345")


# ---------------------------------------------------------------------------
# Refinement
# ---------------------------------------------------------------------------
def test_guided_filter_by_strips_equals_the_whole_picture(people):
    _, image, mask = people[0]
    whole = np.clip(R._guided_block(image.astype(np.float32) / 255, mask.astype(np.float32), 4, 1e-3), 0, 1)
    strips = R.guided_filter(image, mask, radius=4, eps=1e-3, strip_pixels=image.shape[1] * 20)
    assert np.abs(whole - strips).max() < 1e-4


def test_guided_refinement_sharpens_a_low_resolution_mask(people, peer):
    """A mask predicted at 1/4 of the photo and upsampled gets closer to the truth."""
    before, after = [], []
    for _, image, truth in people:
        h, w = image.shape[:2]
        small = peer.predict_small([image])[0]
        coarse = upsample_mask(cv2.resize(small, (w // 4, h // 4), interpolation=cv2.INTER_AREA), (h, w))
        refined = R.refine(image, coarse, "guided")
        assert refined.shape == (h, w) and refined.min() >= 0 and refined.max() <= 1
        before.append(np.abs(coarse - truth).mean())
        after.append(np.abs(refined - truth).mean())
    assert np.mean(after) < np.mean(before) - 0.003, (before, after)


def test_trimap_marks_sure_and_unsure_regions():
    mask = np.zeros((60, 60), np.float32)
    mask[20:40, 20:40] = 1.0
    trimap = R.make_trimap(mask, band=3)
    assert set(np.unique(trimap)) == {0.0, 0.5, 1.0}
    assert trimap[30, 30] == 1.0 and trimap[2, 2] == 0.0
    assert trimap[20, 30] == 0.5 and trimap[19, 30] == 0.5  # the band straddles the edge


def test_matting_keeps_sure_regions_and_resolves_unsure_pixels(people, peer):
    _, image, truth = people[0]
    mask = peer.predict([image])[0]
    matte = R.refine(image, mask, "matting")
    assert matte.shape == mask.shape and matte.min() >= 0 and matte.max() <= 1
    scale = min(1.0, R.MATTING_WORK_SIDE / max(image.shape[:2]))
    assert scale == 1.0  # shared photos are small: the matte is solved at full size
    trimap = R.make_trimap(mask, max(R.MATTING_MIN_BAND, round(R.MATTING_BAND_FRACTION * max(mask.shape))))
    assert np.abs(matte[trimap == 1.0] - 1).max() < 0.02
    assert np.abs(matte[trimap == 0.0]).max() < 0.02
    assert np.abs(matte - truth).mean() < np.abs(mask - truth).mean() + 0.01


def test_refine_rejects_unknown_methods(people):
    _, image, mask = people[0]
    with pytest.raises(ValueError, match="unknown refine"):
        R.refine(image, mask, "sharpen")


# ---------------------------------------------------------------------------
# remove_background
# ---------------------------------------------------------------------------
def test_remove_background_takes_paths_pil_images_and_arrays_alike(people, peer):
    path, image, _ = people[0]
    from_path = np.asarray(remove_background(path, model=peer, mode="mask"))
    from_pil = np.asarray(remove_background(Image.open(path), model=peer, mode="mask"))
    from_array = np.asarray(remove_background(image, model=peer, mode="mask"))
    assert np.array_equal(from_path, from_pil) and np.array_equal(from_path, from_array)
    assert from_path.shape == image.shape[:2]


def test_remove_background_mask_matches_the_ground_truth(people, peer):
    for _, image, truth in people:
        mask = np.asarray(remove_background(image, model=peer, mode="mask"), np.float32) / 255
        assert np.abs(mask - truth).mean() < 0.08


def test_threshold_makes_the_mask_hard(people, peer):
    _, image, _ = people[0]
    soft = np.asarray(remove_background(image, model=peer, mode="mask"))
    hard = np.asarray(remove_background(image, model=peer, mode="mask", threshold=0.5))
    assert set(np.unique(hard)) <= {0, 255}
    assert np.array_equal(hard == 255, soft >= 128)


def test_remove_background_explains_bad_options(people, peer):
    _, image, _ = people[0]
    with pytest.raises(ValueError, match="unknown mode"):
        remove_background(image, model=peer, mode="sticker")
    with pytest.raises(ValueError, match="bg-image"):
        remove_background(image, model=peer, mode="image")
    with pytest.raises(ValueError, match="between 0 and 1"):
        remove_background(image, model=peer, threshold=2)


# ---------------------------------------------------------------------------
# The batch CLI
# ---------------------------------------------------------------------------
def _tree(root: Path, shared_data: Path) -> list[Path]:
    """A folder with a sub-folder: two JPEGs and one PNG from the shared people set."""
    sources = [p for p, _ in pairs(shared_data / "people", limit=3)]
    (root / "sub").mkdir(parents=True)
    made = [root / "a.jpg", root / "sub" / "b.jpg", root / "sub" / "c.png"]
    for source, target in zip(sources, made):
        Image.open(source).save(target)
    return made


def test_cli_folder_keeps_relative_paths_and_formats(tmp_path, shared_data, peer_onnx, capsys):
    made = _tree(tmp_path / "in", shared_data)
    out = tmp_path / "out"
    code = main([str(tmp_path / "in"), "--out", str(out), "--model", str(peer_onnx), "--mode", "side-by-side", "--quiet"])
    assert code == 0
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["a.jpg", "sub/b.jpg", "sub/c.png"]
    with Image.open(out / "sub" / "b.jpg") as picture:
        w, h = Image.open(made[1]).size
        assert picture.format == "JPEG" and picture.size == (2 * w + C.SEPARATOR_WIDTH, h)
    assert "done 3, skipped 0, failed 0" in capsys.readouterr().out


def test_cli_rgba_is_png_and_globs_work(tmp_path, shared_data, peer_onnx):
    _tree(tmp_path / "in", shared_data)
    out = tmp_path / "out"
    code = main([str(tmp_path / "in" / "**" / "*.jpg"), "--out", str(out), "--model", str(peer_onnx), "--quiet"])
    assert code == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == ["a.png", "sub/b.png"]
    with Image.open(out / "a.png") as picture:
        assert picture.mode == "RGBA"


def test_cli_goes_on_after_a_bad_file_and_exits_1(tmp_path, shared_data, peer_onnx, capsys):
    made = _tree(tmp_path / "in", shared_data)
    bad = tmp_path / "in" / "broken.jpg"
    bad.write_bytes(b"this is not a picture")
    out = tmp_path / "out"
    code = main([str(tmp_path / "in"), "--out", str(out), "--model", str(peer_onnx), "--mode", "mask", "--quiet"])
    assert code == 1
    report = capsys.readouterr().out
    assert "done 3, skipped 0, failed 1" in report
    assert str(bad) in report and "not an image" in report
    assert len(list(out.rglob("*.png"))) == len(made)


def test_cli_skip_existing_and_refusing_to_overwrite(tmp_path, shared_data, peer_onnx, capsys):
    _tree(tmp_path / "in", shared_data)
    out = tmp_path / "out"
    args = [str(tmp_path / "in"), "--out", str(out), "--model", str(peer_onnx), "--mode", "mask", "--quiet"]
    assert main(args) == 0
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.png")}
    capsys.readouterr()
    assert main(args + ["--skip-existing"]) == 0
    assert "done 0, skipped 3, failed 0" in capsys.readouterr().out
    assert main(args) == 1
    assert "exists (pass --skip-existing or --overwrite)" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.png")} == stamps
    assert main(args + ["--overwrite"]) == 0
    assert all(p.stat().st_mtime_ns != t for p, t in stamps.items())


def test_cli_never_writes_over_an_input_even_with_overwrite(tmp_path, shared_data, peer_onnx, capsys):
    made = _tree(tmp_path / "in", shared_data)
    before = {p: p.read_bytes() for p in made}
    folder = tmp_path / "in"
    code = main([str(folder), "--out", str(folder), "--model", str(peer_onnx), "--overwrite", "--quiet"])
    assert code == 1  # c.png's rgba output would be c.png itself
    assert "would overwrite an input file" in capsys.readouterr().out
    assert {p: p.read_bytes() for p in made} == before
    assert (folder / "a.png").is_file() and (folder / "sub" / "b.png").is_file()


def test_cli_rejects_bad_options_before_work(tmp_path, peer_onnx, capsys):
    assert main(["x.jpg", "--out", str(tmp_path), "--mode", "image", "--model", str(peer_onnx)]) == 2
    assert "bg-image" in capsys.readouterr().err
    assert main(["x.jpg", "--out", str(tmp_path), "--mode", "color", "--bg-color", "#12"]) == 2


def test_expand_inputs_reports_what_matched_nothing(tmp_path):
    (tmp_path / "empty").mkdir()
    found, missing = expand_inputs([str(tmp_path / "nope.jpg"), str(tmp_path / "empty"), str(tmp_path / "*.png")])
    assert found == []
    reasons = [why for _, why in missing]
    assert reasons == ["file not found", "folder holds no images (.jpg, .jpeg, .png, .bmp, .tif, .tiff, .webp)",
                       "pattern matched no images"]


# ---------------------------------------------------------------------------
# The demo
# ---------------------------------------------------------------------------
def test_demo_writes_every_mode_for_the_packaged_photos(tmp_path, peer_onnx):
    from RMBG.apps.demo import run_demo, sample_sources

    sources = sample_sources()
    assert {"astronaut.png", "coffee.png", "chelsea.png", "grace_hopper.jpg"} <= set(sources)
    written = run_demo(model=peer_onnx, out=tmp_path / "demo", samples=tmp_path / "samples")
    assert sorted(written) == sorted(C.MODES)
    for mode, paths in written.items():
        assert len(paths) == len(sources) and all(p.is_file() for p in paths)
    sample = tmp_path / "samples" / "astronaut.png"
    with Image.open(sample) as photo, Image.open(tmp_path / "demo" / "side-by-side" / "astronaut.png") as pair:
        assert pair.size == (2 * photo.width + C.SEPARATOR_WIDTH, photo.height)
    with Image.open(tmp_path / "demo" / "rgba" / "grace_hopper.png") as cutout:
        alpha = np.asarray(cutout)[..., 3]
    assert alpha.min() == 0 and alpha.max() == 255  # a subject was found, and a background


# ---------------------------------------------------------------------------
# --format, --crop, --no-foreground-estimation, skipped files (issue 21)
# ---------------------------------------------------------------------------
def _animated_gif(path: Path) -> None:
    frames = [Image.new("RGB", (8, 8), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory, shared_data, peer_onnx):
    """One real portrait in a folder with files the CLI does not take, run through ``remove``
    with several option sets; ``name -> (exit code, stdout, stderr, output folder)``."""
    import contextlib
    import io

    root = tmp_path_factory.mktemp("issue21")
    folder = root / "in"
    folder.mkdir()
    source = pairs(shared_data / "people", limit=1)[0][0]
    Image.open(source).save(folder / "photo.jpg", quality=95)
    (folder / "notes.txt").write_text("not a picture\n")
    _animated_gif(folder / "moving.gif")
    Image.new("RGB", (8, 8)).save(folder / "still.gif")
    (folder / ".DS_Store").write_bytes(b"\0\1")
    runs = {}
    option_sets = {
        "png": [], "webp": ["--format", "webp"], "crop": ["--crop", "--margin", "7"],
        "plain": ["--no-foreground-estimation"], "jpg": ["--mode", "color", "--format", "jpg"],
    }
    for name, options in option_sets.items():
        out = root / name
        stdout, stderr = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = main([str(folder), "--out", str(out), "--model", str(peer_onnx), "--quiet", *options])
        runs[name] = (code, stdout.getvalue(), stderr.getvalue(), out)
    runs["photo"] = np.asarray(Image.open(folder / "photo.jpg").convert("RGB"))
    return runs


def _rgba(path: Path) -> np.ndarray:
    with Image.open(path) as picture:
        assert picture.mode == "RGBA"
        return np.asarray(picture)


def test_cli_lists_files_it_does_not_take_as_skipped(cli_runs):
    code, report, _, out = cli_runs["png"]
    assert code == 0
    assert "done 1, skipped 3, failed 0" in report
    assert "moving.gif: animated GIF: not supported" in report
    assert "notes.txt: not an image extension we read: .txt" in report
    assert "still.gif: GIF: not supported" in report
    assert ".DS_Store" not in report  # hidden files are nobody's photos
    assert sorted(p.name for p in out.iterdir()) == ["photo.png"]


def test_cli_webp_keeps_the_alpha_exactly(cli_runs):
    assert cli_runs["webp"][0] == 0
    with Image.open(cli_runs["webp"][3] / "photo.webp") as picture:
        assert picture.format == "WEBP"
    webp = _rgba(cli_runs["webp"][3] / "photo.webp")
    png = _rgba(cli_runs["png"][3] / "photo.png")
    assert 0 < (png[..., 3] == 0).sum() < png[..., 3].size  # a subject and a background
    assert np.array_equal(webp, png)  # lossless: colour and alpha round-trip


def test_cli_crop_is_the_subject_box_plus_the_margin(cli_runs):
    from RMBG.removal.cropping import subject_box

    assert cli_runs["crop"][0] == 0
    whole = _rgba(cli_runs["png"][3] / "photo.png")
    cropped = _rgba(cli_runs["crop"][3] / "photo.png")
    rows, cols = subject_box(whole[..., 3], margin=7)
    present = np.argwhere(whole[..., 3] > round(0.05 * 255))
    (top, left), (bottom, right) = present.min(axis=0), present.max(axis=0) + 1
    h, w = whole.shape[:2]
    assert (rows.start, rows.stop, cols.start, cols.stop) == (
        max(0, top - 7), min(h, bottom + 7), max(0, left - 7), min(w, right + 7))
    assert cropped.shape[:2] == (rows.stop - rows.start, cols.stop - cols.start) != (h, w)
    assert np.array_equal(cropped, whole[rows, cols])


def test_cli_without_foreground_estimation_stores_the_photo_colours(cli_runs):
    estimated = _rgba(cli_runs["png"][3] / "photo.png")
    plain = _rgba(cli_runs["plain"][3] / "photo.png")
    photo = cli_runs["photo"]
    assert np.array_equal(plain[..., 3], estimated[..., 3])
    assert np.array_equal(plain[..., :3], photo)
    band = spread_band(plain[..., 3], spread_width(*photo.shape[:2]))  # soft pixels grown (issue 36)
    assert band.any() and np.array_equal(estimated[~band, :3], photo[~band])
    assert np.abs(estimated[band, :3].astype(int) - photo[band]).mean() > 1


def test_cli_jpg_for_a_flat_mode(cli_runs):
    assert cli_runs["jpg"][0] == 0
    with Image.open(cli_runs["jpg"][3] / "photo.jpg") as picture:
        assert picture.format == "JPEG" and picture.mode == "RGB"


@pytest.mark.parametrize("argv, message", [
    (["--format", "jpg"], "format 'jpg' has no transparency: mode 'rgba' needs png or webp"),
    (["--format", "jpeg", "--mode", "mask"], "format 'jpg' would change the mask's values"),
    (["--margin", "5"], "--margin goes with --crop"),
    (["--crop", "--margin", "-1"], "crop margin -1"),
    (["--watch"], "--watch watches folders: x.jpg is not a folder"),
])
def test_cli_refuses_impossible_output_options(tmp_path, capsys, argv, message):
    assert main(["x.jpg", "--out", str(tmp_path / "out"), *argv]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_unsupported_files_of_a_glob_are_listed(tmp_path):
    from RMBG.images.inputs import unsupported_inputs

    (tmp_path / "a.txt").write_text("x")
    Image.new("RGB", (4, 4)).save(tmp_path / "b.png")
    _animated_gif(tmp_path / "c.gif")
    found = unsupported_inputs([str(tmp_path / "*")])
    assert [(p.name, why) for p, why in found] == [
        ("a.txt", "not an image extension we read: .txt"), ("c.gif", "animated GIF: not supported")]


def test_compose_crop_matches_the_box_and_keeps_a_picture_without_subject(people):
    _, image, mask = people[0]
    from RMBG.removal.cropping import subject_box

    alpha8 = C.alpha_to_uint8(mask)
    rows, cols = subject_box(alpha8, margin=3)
    for mode in ("rgba", "mask", "color", "blur"):
        whole = np.asarray(C.compose(image, alpha8, mode))
        cropped = np.asarray(C.compose(image, alpha8, mode, crop_margin=3))
        assert np.array_equal(cropped, whole[rows, cols]), mode
    pair = C.compose(image, alpha8, "side-by-side", crop_margin=3)
    assert pair.size == (2 * (cols.stop - cols.start) + C.SEPARATOR_WIDTH, rows.stop - rows.start)
    empty = np.zeros_like(alpha8)
    assert subject_box(empty) is None
    assert C.compose(image, empty, "rgba", crop_margin=3).size == (image.shape[1], image.shape[0])
    corner = np.zeros((50, 60), np.uint8)
    corner[0:5, 55:60] = 255
    assert subject_box(corner, margin=10) == (slice(0, 15), slice(45, 60))  # clipped to the picture
