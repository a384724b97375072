"""Models by name (issue 34): the names table, name resolution in ``load_segmenter``, ``A+B``
ensembles (the mean of their members' maps on real shared photos), and the errors for
unknown names and missing files, in the runtime and in the commands."""

from __future__ import annotations

import json

import numpy as np
import pytest
from shared_sets import pairs

import RMBG.runtime.engines as RT
from RMBG.images.io import read_image
from RMBG.models import names as N
from RMBG.models.info import ModelInfo
from RMBG.runtime.ensemble import EnsembleSegmenter
from RMBG.runtime.segmenter import Segmenter, upsample_mask


@pytest.fixture(scope="module")
def photos(shared_data):
    """Two people, one object and one cat photo of the shared sets (RGB uint8)."""
    chosen = pairs(shared_data / "people", 2) + pairs(shared_data / "ecssd", 1) + pairs(shared_data / "cats", 1)
    return [read_image(image) for image, _ in chosen]


@pytest.fixture
def empty_home(tmp_path, monkeypatch):
    """``$U2NET_HOME`` pointing at an empty folder: u2net and isnet are missing."""
    monkeypatch.setenv("U2NET_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


# ---------------------------------------------------------------------------
# Resolution
# ---------------------------------------------------------------------------
def test_names_resolve_to_their_files_and_load_the_same_cached_model(peer_onnx, model_path):
    assert N.resolve_file("u2netp") == peer_onnx
    assert N.resolve_file("default") == model_path == RT.default_model_path()
    by_name = RT.load_segmenter("u2netp", peer=True)
    assert by_name is RT.load_segmenter(peer_onnx, peer=True)  # one file, one loaded model
    assert by_name is RT.load_segmenter(str(peer_onnx), peer=True)  # a path still works
    assert N.name_of(peer_onnx) == "u2netp" and N.name_of(model_path) == "default"


def test_rembg_files_keep_their_model_info(peer_onnx):
    """The recipe gives rembg's files the same ModelInfo as before names existed (prediction caches
    are keyed by it)."""
    before = ModelInfo(arch="onnx-peer", input_size=320, output_index=0, output_norm="minmax", input_scale="max")
    segmenter = RT.load_segmenter("u2netp")
    assert segmenter.info.to_json() == before.to_json()
    assert segmenter.resample == RT.Image.LANCZOS


def test_isnet_recipe_is_imgly_preprocessing():
    info = N.ISNET_RECIPE.info("onnx-peer")
    pixels = np.array([[[0, 128, 255]]], np.uint8)
    assert np.allclose(info.normalize(pixels), (pixels.astype(np.float32) - 128) / 256, atol=1e-6)
    maps = np.array([[[0.2, 0.7]]], np.float32)
    assert np.array_equal(info.finish(maps), maps)  # already a sigmoid map: no min-max
    assert N.ISNET_RECIPE.resample == "bilinear" and N.ISNET_RECIPE.input_size == 1024
    assert N.recipe_for("elsewhere/some.onnx", 1024) is N.ISNET_RECIPE  # an unknown 1024 file runs as IS-Net
    assert N.recipe_for("elsewhere/some.onnx", 320) is N.U2NET_RECIPE


def test_unknown_names_list_the_names(peer_onnx):
    for spec in ("u2netq", "u2netp+isnett", "u2netp++default"):
        with pytest.raises(N.UnknownModelName, match=r"unknown model|an empty part") as caught:
            RT.load_segmenter(spec)
        if "empty" not in str(caught.value):
            assert "default, u2netp, u2net, isnet" in str(caught.value)
    assert N.check_spec(str(peer_onnx)) == str(peer_onnx)  # paths are not names
    assert N.check_spec("missing/model.keras") == "missing/model.keras"  # ... and fail when loaded
    with pytest.raises(FileNotFoundError, match="missing/model.keras: model file not found"):
        RT.load_segmenter("missing/model.keras")


def test_a_missing_file_says_which_command_gets_it(empty_home):
    with pytest.raises(FileNotFoundError, match=r"model 'isnet': .*home/isnet.onnx is missing; to get it: "
                                                r"python -m RMBG fetch-teacher isnet"):
        RT.load_segmenter("isnet")
    with pytest.raises(FileNotFoundError, match="python -m RMBG fetch-teacher u2net"):
        RT.load_segmenter("u2netp+u2net")
    rows = {row["name"]: row for row in N.catalogue()}
    assert not rows["isnet"]["present"] and rows["isnet"]["size"] == 88_188_479
    assert rows["isnet"]["get"] == "python -m RMBG fetch-teacher isnet"
    assert "AGPL-3.0" in rows["isnet"]["licence"] and "xuebinqin/DIS" in rows["isnet"]["licence"]


# ---------------------------------------------------------------------------
# Ensembles
# ---------------------------------------------------------------------------
def test_ensemble_is_the_mean_of_its_members_maps(photos, peer_onnx, model_path):
    ensemble = RT.load_segmenter("u2netp+default", runtime=RT.DEFAULT_RUNTIME)
    assert isinstance(ensemble, EnsembleSegmenter) and ensemble.input_size == 320
    peer, ours = ensemble.members
    assert peer is RT.load_segmenter(peer_onnx) and ours is RT.load_segmenter(model_path, runtime=RT.DEFAULT_RUNTIME)
    assert ensemble.name == f"u2netp+{model_path.stem}" and ensemble.files == [peer_onnx, ours.path]
    full, small = ensemble.predict(photos), ensemble.predict_small(photos)
    for photo, mask, mask_small, a, b, a_small, b_small in zip(
            photos, full, small, peer.predict(photos), ours.predict(photos),
            peer.predict_small(photos), ours.predict_small(photos)):
        assert mask.shape == photo.shape[:2]
        assert np.allclose(mask, (a + b) / 2, atol=1e-6)  # at the photo's size
        assert np.allclose(mask_small, (a_small + b_small) / 2, atol=1e-6)  # the pipeline's path
        assert np.abs(a - b).mean() > 1e-3  # two different maps: the mean is not either one
    # the batch pipeline's path: preprocess per photo, stack, one call
    batch = np.stack([ensemble.preprocess(photo) for photo in photos[:2]])
    assert np.allclose(ensemble.masks_of_inputs(batch), small[:2], atol=1e-6)


class CoarseGrey(Segmenter):
    """A 64-px 'model' whose map is the input's brightness: a member with another input size."""

    def __init__(self):
        super().__init__(ModelInfo(arch="grey", input_size=64, mean=None, std=None), "grey")

    def _infer(self, batch):
        return batch.mean(axis=-1)


def test_members_with_other_input_sizes_each_run_at_their_own(photos, peer_onnx):
    peer, grey = RT.load_segmenter(peer_onnx), CoarseGrey()
    ensemble = EnsembleSegmenter([grey, peer])
    assert ensemble.input_size == 320 and ensemble.name == "grey+u2netp"
    for photo, mask, small in zip(photos, ensemble.predict(photos), ensemble.predict_small(photos)):
        a, b = grey.predict_one(photo), peer.predict_one(photo)
        assert np.allclose(mask, (a + b) / 2, atol=1e-6)  # exact at the photo's size
        grey_small = upsample_mask(grey.predict_small([photo])[0], (320, 320))
        assert np.allclose(small, (grey_small + peer.predict_small([photo])[0]) / 2, atol=1e-6)
        # the pipeline's path (small mean, then to the photo) stays close to the photo-size mean
        assert np.abs(upsample_mask(small, photo.shape[:2]) - mask).mean() < 0.01


def test_remover_serves_an_ensemble_by_name(photos, peer_onnx):
    from RMBG.apps.server.work import Models
    from RMBG.removal.pipeline import Remover

    remover = Remover("u2netp+u2netp")
    alpha = remover.alpha(photos[0])
    assert alpha.shape == photos[0].shape[:2]
    assert np.allclose(alpha, Remover(peer_onnx).alpha(photos[0]), atol=1e-6)  # the mean of a map with itself
    served = Models([Remover("u2netp"), remover])
    assert [m["names"] for m in served.describe()] == [["u2netp"], ["u2netp", "u2netp"]]
    assert [row["name"] for row in served.catalogue()] == list(N.NAMES)


# ---------------------------------------------------------------------------
# The commands
# ---------------------------------------------------------------------------
def test_cli_refuses_unknown_names_with_the_list(tmp_path, capsys, shared_data):
    from RMBG.commands import evaluate, remove

    photo = pairs(shared_data / "people", 1)[0][0]
    for command, argv in ((remove, [str(photo), "--out", str(tmp_path), "--model", "u2netq"]),
                          (evaluate, ["--data", str(tmp_path), "--out", str(tmp_path), "--peer", "isnett"])):
        with pytest.raises(SystemExit) as exited:
            command.main(argv)
        assert exited.value.code == 2
        err = capsys.readouterr().err
        assert "unknown model" in err and "default, u2netp, u2net, isnet" in err
    assert list(tmp_path.iterdir()) == []


def test_cli_says_which_command_gets_a_missing_model(tmp_path, capsys, shared_data, empty_home):
    from RMBG.commands import label, remove

    photo = pairs(shared_data / "people", 1)[0][0]
    assert remove.main([str(photo), "--out", str(tmp_path / "out"), "--model", "default+isnet"]) == 2
    assert "fetch-teacher isnet" in capsys.readouterr().err
    assert label.main([str(photo), "--out", str(tmp_path / "labels"), "--teacher", "u2net"]) == 2
    err = capsys.readouterr().err
    assert "no teacher: model 'u2net'" in err and "python -m RMBG fetch-teacher u2net" in err
    assert not (tmp_path / "out").exists() and not (tmp_path / "labels").exists()


def test_models_command_lists_every_name(capsys, empty_home, peer_onnx):
    from RMBG.commands import models

    assert models.main(["--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert list(rows) == ["default", "u2netp", "u2net", "isnet"]
    assert rows["u2netp"]["present"] and rows["u2netp"]["file"] == str(peer_onnx)
    assert not rows["u2net"]["present"] and rows["u2net"]["file"] == str(empty_home / "u2net.onnx")
    assert rows["isnet"]["input_size"] == 1024 and "(x - 128) / 256" in rows["isnet"]["preprocessing"]
    assert models.main([]) == 0
    text = capsys.readouterr().out
    assert "isnet" in text and "missing; get it: python -m RMBG fetch-teacher isnet" in text
