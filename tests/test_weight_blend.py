"""RMBG.models.blend: weight-space blending of a fine-tune with its start (the math, the files, the CLI)."""

from __future__ import annotations

import numpy as np
import pytest

from RMBG.commands.blend import main
from RMBG.constants import DEFAULT_MODEL_PATH, IMPORTED_U2NETP_PATH
from RMBG.models.blend import blend_files, blend_weights
from RMBG.models.build import build_model, default_info, load_model, save_model
from RMBG.models.info import ModelFileError, read_model_info

shipped = pytest.mark.skipif(
    not (DEFAULT_MODEL_PATH.is_file() and IMPORTED_U2NETP_PATH.is_file()), reason="the shipped models are absent"
)


def test_blend_weights_is_the_straight_line_between_the_two():
    rng = np.random.default_rng(0)
    start = [rng.normal(size=(3, 3, 2, 4)).astype(np.float32), rng.normal(size=4).astype(np.float32)]
    tuned = [a + rng.normal(size=a.shape).astype(np.float32) for a in start]
    for share in (0.0, 0.3, 1.0):
        mixed = blend_weights(start, tuned, share)
        for a, b, m in zip(start, tuned, mixed):
            assert m.dtype == np.float32
            np.testing.assert_allclose(m, (1 - share) * a + share * b, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(blend_weights(start, tuned, 0.0)[0], start[0])
    np.testing.assert_array_equal(blend_weights(start, tuned, 1.0)[1], tuned[1])


def test_blend_weights_takes_counters_from_the_tuned_model_and_refuses_other_networks():
    counter_start, counter_tuned = np.array(3, np.int64), np.array(250, np.int64)
    out = blend_weights([np.zeros(2, np.float32), counter_start], [np.ones(2, np.float32), counter_tuned], 0.5)
    np.testing.assert_allclose(out[0], [0.5, 0.5])
    assert out[1] == 250 and out[1].dtype == np.int64
    with pytest.raises(ValueError, match=r"tensor 0 has shape \(2,\) in one model and \(3,\)"):
        blend_weights([np.zeros(2)], [np.zeros(3)], 0.5)
    with pytest.raises(ValueError, match="1 and 2 weight tensors"):
        blend_weights([np.zeros(2)], [np.zeros(2), np.zeros(2)], 0.5)
    for share in (-0.1, 1.5):
        with pytest.raises(ValueError, match=r"must be in \[0, 1\]"):
            blend_weights([np.zeros(2)], [np.zeros(2)], share)


@shipped
def test_blend_files_writes_the_blend_and_records_it(tmp_path):
    out = blend_files(IMPORTED_U2NETP_PATH, DEFAULT_MODEL_PATH, 0.25, tmp_path / "mix.keras")
    start, tuned, mixed = (load_model(p) for p in (IMPORTED_U2NETP_PATH, DEFAULT_MODEL_PATH, out))
    moved = 0
    for a, b, m in zip(start.get_weights(), tuned.get_weights(), mixed.get_weights()):
        np.testing.assert_allclose(m, 0.75 * a + 0.25 * b, rtol=1e-6, atol=1e-6)
        moved += not np.array_equal(a, b)
    assert moved > 0  # the two files really differ, so the check above tests something
    info, tuned_info = read_model_info(out), read_model_info(DEFAULT_MODEL_PATH)
    assert info.config["blend"]["share"] == 0.25
    assert info.config["blend"]["start"] == IMPORTED_U2NETP_PATH.name
    assert "weights blended: 0.25 fine-tuned + 0.75 u2netp-imported.keras" in info.notes
    # the tuned model's preprocessing is kept as it is
    assert (info.arch, info.input_size, info.input_scale, info.output_norm, info.mean) == (
        tuned_info.arch, tuned_info.input_size, tuned_info.input_scale, tuned_info.output_norm, tuned_info.mean,
    )
    # an existing file is never replaced unless asked (test_blend_cli replaces one)
    before = out.read_bytes()
    with pytest.raises(FileExistsError, match="already exists"):
        blend_files(IMPORTED_U2NETP_PATH, DEFAULT_MODEL_PATH, 0.5, out)
    assert out.read_bytes() == before


@shipped
def test_blend_refuses_another_architecture_naming_the_files(tmp_path):
    other = build_model("u2netp_refine", 32)
    other_path = save_model(other, tmp_path / "refine.keras", default_info("u2netp_refine", 32))
    with pytest.raises(ModelFileError, match=r"refine\.keras: holds a u2netp_refine model but .*u2netp-imported"):
        blend_files(IMPORTED_U2NETP_PATH, other_path, 0.5, tmp_path / "x.keras")
    assert not (tmp_path / "x.keras").exists()


@shipped
def test_blend_cli(tmp_path, capsys):
    out = tmp_path / "cli.keras"
    args = ["--start", str(IMPORTED_U2NETP_PATH), "--tuned", str(DEFAULT_MODEL_PATH), "--out", str(out)]
    assert main([*args, "--share", "0.6"]) == 0
    assert f"blended model: {out}" in capsys.readouterr().out
    assert read_model_info(out).config["blend"]["share"] == 0.6
    assert main([*args, "--share", "0.4"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert read_model_info(out).config["blend"]["share"] == 0.6
    assert main([*args, "--share", "0.4", "--overwrite"]) == 0
    capsys.readouterr()
    assert read_model_info(out).config["blend"]["share"] == 0.4
    assert main([*args, "--share", "2", "--overwrite"]) == 2
    assert "must be in [0, 1], got 2.0" in capsys.readouterr().err
    missing = tmp_path / "missing.keras"
    assert main(["--start", str(missing), "--tuned", str(DEFAULT_MODEL_PATH), "--out", str(tmp_path / "y.keras"),
                 "--share", "0.5"]) == 2
    assert f"{missing}: model file not found" in capsys.readouterr().err
