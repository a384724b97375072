"""RMBG.models.onnx_import: the public U-2-Net-P ONNX weights imported into our Keras model.

The proof: on real photos, after rembg's preprocessing, our fused output
equals onnxruntime's within 1e-4.
"""

from __future__ import annotations

import numpy as np
import pytest

from RMBG.commands.import_weights import main
from RMBG.images.io import list_images, read_image
from RMBG.models.archs.u2net import u2net_conv_names, u2net_conv_shapes
from RMBG.models.build import load_model
from RMBG.models.info import read_model_info
from RMBG.models.onnx_import import (
    WeightImportError,
    detect_arch,
    import_u2net_onnx,
    read_onnx_convs,
)

#: float32 through ~60 layers: 6.3e-5 on one machine, 1.36e-4 on another (other kernels, other
#: summation order); an import error (a swapped or transposed tensor) is orders of magnitude larger.
EQUIVALENCE_TOLERANCE = 3e-4
ECSSD_COUNT = 20


@pytest.fixture(scope="module")
def imported(peer_onnx):
    """u2netp with the peer's weights (identity BatchNorm), built once for the module."""
    return import_u2net_onnx(peer_onnx, "u2netp")


@pytest.fixture(scope="module")
def peer(peer_onnx):
    from RMBG.runtime.engines import OnnxPeerSegmenter

    return OnnxPeerSegmenter(peer_onnx)


@pytest.fixture(scope="module")
def real_batch(shared_data, peer):
    """The 4 seed_test photos and 20 ECSSD photos, preprocessed exactly as the peer runtime does."""
    paths = list_images(shared_data / "seed_test" / "images")
    paths += list_images(shared_data / "ecssd" / "images")[:ECSSD_COUNT]
    assert len(paths) == 4 + ECSSD_COUNT
    return np.stack([peer.preprocess(read_image(p)) for p in paths]).astype(np.float32)


def fused(model, batch: np.ndarray) -> np.ndarray:
    """The fused map ``NxSxS`` (compiled inference, batches of 8)."""
    return model.predict(batch, batch_size=8, verbose=0)[0][..., 0]


@pytest.fixture(scope="module")
def all_outputs(imported, peer, real_batch):
    """(ours, theirs): the seven output maps of both models, each ``7xNxSxS``."""
    ours = np.stack([o[..., 0] for o in imported.predict(real_batch, batch_size=8, verbose=0)])
    name = peer.session.get_inputs()[0].name
    theirs = [
        peer.session.run(None, {name: np.ascontiguousarray(np.transpose(x[None], (0, 3, 1, 2)))})
        for x in real_batch
    ]
    theirs = np.stack([np.concatenate([per_image[k][:, 0] for per_image in theirs]) for k in range(7)])
    return ours, theirs


def test_imported_info_reproduces_rembg(imported, peer_onnx):
    info = imported.rmbg_info
    assert (info.arch, info.input_size, info.output_index) == ("u2netp", 320, 0)
    assert (info.input_scale, info.output_norm) == ("max", "minmax")
    assert info.mean == pytest.approx((0.485, 0.456, 0.406))
    assert info.std == pytest.approx((0.229, 0.224, 0.225))
    assert info.config["bn_import"] == "identity"


def test_fused_output_equals_onnxruntime_on_real_photos(all_outputs, real_batch):
    ours, theirs = all_outputs[0][0], all_outputs[1][0]
    assert ours.shape == theirs.shape == (len(real_batch), 320, 320)
    difference = np.abs(ours - theirs).max()
    print(f"fused max abs difference vs onnxruntime over {len(real_batch)} photos: {difference:.2e}")
    assert difference < EQUIVALENCE_TOLERANCE, f"max abs difference {difference:.2e}"
    # The photos are not trivial: every map has clear foreground and background.
    assert (theirs.max(axis=(1, 2)) > 0.9).all() and (theirs.min(axis=(1, 2)) < 0.1).all()


def test_side_outputs_equal_onnxruntime(all_outputs):
    ours, theirs = all_outputs
    assert ours.shape == theirs.shape and ours.shape[0] == 7
    for k in range(7):
        assert np.abs(ours[k] - theirs[k]).max() < EQUIVALENCE_TOLERANCE, f"output {k}"


def test_split_batchnorm_keeps_the_function(peer_onnx, all_outputs, real_batch):
    split = import_u2net_onnx(peer_onnx, "u2netp", bn="split")
    assert np.abs(fused(split, real_batch[:2]) - all_outputs[0][0][:2]).max() < EQUIVALENCE_TOLERANCE
    # Split kernels have unit RMS per output channel; the scale moved into gamma.
    kernel = split.get_layer("stage1_in_conv").get_weights()[0]
    rms = np.sqrt(np.mean(kernel**2, axis=(0, 1, 2)))
    np.testing.assert_allclose(rms, 1.0, rtol=1e-4)
    gamma = split.get_layer("stage1_in_bn").get_weights()[0]
    assert not np.allclose(gamma, 1.0)
    assert split.rmbg_info.config["bn_import"] == "split"


def test_importer_through_runtime_matches_peer_masks(imported, peer, shared_data):
    from RMBG.runtime.engines import KerasSegmenter

    ours = KerasSegmenter(imported, imported.rmbg_info, "imported")
    photos = [read_image(p) for p in list_images(shared_data / "seed_test" / "images")[:2]]
    for mine, ref, photo in zip(ours.predict(photos), peer.predict(photos), photos):
        assert mine.shape == photo.shape[:2]
        assert np.abs(mine - ref).max() < 1e-3


def test_peer_file_maps_to_u2netp_graph_order(peer_onnx):
    convs = read_onnx_convs(peer_onnx)
    assert len(convs) == len(u2net_conv_names("u2netp")) == 119
    assert [tuple(k.shape) for _, k, _ in convs] == u2net_conv_shapes("u2netp")
    assert detect_arch(convs) == "u2netp"
    # Walking the graph lines the named initializers up with the layers of the same name.
    assert [name for name, _, _ in convs[-7:]] == [f"side{k}.weight" for k in range(1, 7)] + ["outconv.weight"]
    assert u2net_conv_names("u2netp")[-7:] == [f"side{k}_conv" for k in range(1, 7)] + ["outconv"]
    total = sum(k.size + b.size for _, k, b in convs)
    assert total == 1_125_485


def test_u2netp_file_is_rejected_for_u2net(peer_onnx):
    with pytest.raises(WeightImportError, match=r"u2netp\.onnx: holds u2netp weights, not u2net.*--arch u2netp"):
        import_u2net_onnx(peer_onnx, "u2net", input_size=64)


def test_u2net_mapping_is_consistent_with_the_built_model():
    """No u2net.onnx here: check the u2net conv table against the model it must fill."""
    from RMBG.models.build import build_model

    model = build_model("u2net", input_size=64)
    names, shapes = u2net_conv_names("u2net"), u2net_conv_shapes("u2net")
    assert len(names) == len(shapes) == 119
    for name, (out, cin, kh, kw) in zip(names, shapes):
        assert tuple(model.get_layer(name).kernel.shape) == (kh, kw, cin, out), name
    assert shapes[:2] == [(64, 3, 3, 3), (32, 64, 3, 3)]  # stage1 of u2net differs from u2netp's (16, 64)
    # A fake folded u2net file, as convs in graph order, is detected as u2net.
    fake = [("", np.zeros(s, np.float32), np.zeros(s[0], np.float32)) for s in shapes]
    assert detect_arch(fake) == "u2net"


def test_unknown_arch_and_bad_files_give_clear_errors(tmp_path, peer_onnx):
    with pytest.raises(ValueError, match="no ONNX importer for arch 'seed'"):
        import_u2net_onnx(peer_onnx, "seed")
    missing = tmp_path / "nothing.onnx"
    with pytest.raises(WeightImportError, match=r"nothing\.onnx: ONNX file not found"):
        import_u2net_onnx(missing, "u2netp")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"this is not a protobuf \x00\xff" * 10)
    with pytest.raises(WeightImportError, match=r"garbage\.onnx: not a readable ONNX model"):
        import_u2net_onnx(garbage, "u2netp")
    with pytest.raises(ValueError, match="multiple of 32"):
        import_u2net_onnx(peer_onnx, "u2netp", input_size=300)


def test_cli_writes_a_loadable_model_and_refuses_to_overwrite(tmp_path, peer_onnx, all_outputs, real_batch, capsys):
    out = tmp_path / "models" / "u2netp-imported.keras"
    assert main([str(peer_onnx), "--arch", "u2netp", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "max abs difference" in printed and str(out) in printed
    info = read_model_info(out)
    assert (info.arch, info.input_size, info.output_norm, info.input_scale) == ("u2netp", 320, "minmax", "max")
    assert 3e6 < out.stat().st_size < 6e6  # about 5 MB
    loaded = load_model(out)
    # the first batch of 8, as all_outputs ran it (a batch of another size may take other
    # oneDNN kernels, whose float sums differ by ~2e-6 on some CPUs)
    np.testing.assert_allclose(fused(loaded, real_batch[:8]), all_outputs[0][0][:8], atol=1e-6)

    stamp = out.stat().st_mtime_ns
    assert main([str(peer_onnx), "--arch", "u2netp", "--out", str(out)]) == 1
    assert "already exists" in capsys.readouterr().err
    assert out.stat().st_mtime_ns == stamp
    assert main([str(peer_onnx), "--arch", "u2net", "--out", str(tmp_path / "x.keras")]) == 1
    assert "holds u2netp weights, not u2net" in capsys.readouterr().err
    assert not (tmp_path / "x.keras").exists()
    # --force replaces it; without --arch the file's own variant is taken.
    assert main([str(peer_onnx), "--out", str(out), "--force", "--input-size", "64"]) == 0
    assert "max abs difference" not in capsys.readouterr().out  # no check: the peer runs at 320 only
    assert (read_model_info(out).arch, read_model_info(out).input_size) == ("u2netp", 64)
