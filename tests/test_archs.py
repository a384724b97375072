"""RMBG.models.archs: adding an architecture is one spec in one place (the registry does the rest).

The toy architecture below is registered here and nowhere else; training it
two steps, saving, loading and cutting out a photo with it goes through the
same code as the shipped architectures: presets, train, model files, the
runtime and the removal pipeline read its spec.
"""

from __future__ import annotations

import numpy as np
import pytest
from shared_sets import link_pairs
from shared_sets import pairs as shared_pairs

from RMBG.models.archs import REGISTRY, canonical_name, get_spec, register, unregister
from RMBG.models.archs.spec import ArchSpec

TOY = "toy_tiny_unet"


def toy_tiny_unet(input_size: int = 32, width: int = 4):
    """Two convolutions, a pooling and a bilinear upsampling: the smallest segmenter."""
    import keras
    from keras import layers

    inputs = keras.Input((input_size, input_size, 3), name="image")
    x = layers.Conv2D(width, 3, padding="same", activation="relu", name="enc_conv")(inputs)
    x = layers.MaxPooling2D(2, name="enc_pool")(x)
    x = layers.Conv2D(width, 3, padding="same", activation="relu", name="dec_conv")(x)
    x = layers.UpSampling2D(2, interpolation="bilinear", name="dec_up")(x)
    x = layers.Conv2D(1, 1, name="head")(x)
    return keras.Model(inputs, layers.Activation("sigmoid", name="mask", dtype="float32")(x), name=TOY)


TOY_SPEC = ArchSpec(
    name=TOY,
    factory=toy_tiny_unet,
    summary="a two-layer test network",
    mean=None,
    std=None,
    encoder_prefixes=("enc_",),
    aliases=("toy",),
    preset_overrides={"sample": {"lr": 0.05, "optimizer": "sgd"}},
)


@pytest.fixture
def toy_arch():
    register(TOY_SPEC)
    try:
        yield TOY_SPEC
    finally:
        unregister(TOY)


def test_the_registry_refuses_a_name_twice_and_unknown_names_list_the_valid_ones(toy_arch):
    assert REGISTRY[TOY] is toy_arch and get_spec("toy") is toy_arch and canonical_name("toy") == TOY
    with pytest.raises(ValueError, match="'toy' is already registered"):
        register(ArchSpec(name="other", factory=toy_tiny_unet, summary="", aliases=("toy",)))
    with pytest.raises(ValueError, match=f"unknown architecture 'nope': choose one of .*{TOY}"):
        get_spec("nope")


def test_a_registered_toy_architecture_trains_saves_and_removes_backgrounds(toy_arch, tmp_path, shared_data):
    from RMBG.commands.train import build_parser, config_from_args
    from RMBG.images.io import read_image
    from RMBG.models.build import load_model
    from RMBG.removal.pipeline import Remover
    from RMBG.training.fit import fit
    from RMBG.training.presets import get_preset

    # presets read the spec's overrides, and "encoder" means its encoder layers
    preset = get_preset("sample", TOY)
    assert (preset.lr, preset.optimizer) == (0.05, "sgd")

    chosen = shared_pairs(shared_data / "people", 4)
    root = link_pairs(chosen, tmp_path / "people4")
    args = build_parser().parse_args(  # the CLI lists the new architecture (and its alias)
        ["--preset", "sample", "--arch", "toy", "--data", str(root), "--out", str(tmp_path / "run"),
         "--epochs", "1", "--steps-per-epoch", "2", "--batch", "2", "--split", "0.5", "--freeze", "encoder",
         "--verbose", "0", "--no-check"]
    )
    result = fit(config_from_args(args))

    assert result.steps_per_epoch == 2 and len(result.history["loss"]) == 1
    assert np.isfinite(result.history["loss"][0]) and result.best_val_mae is not None
    model = load_model(result.model_path)
    assert model.rmbg_info.arch == TOY and model.rmbg_info.input_size == 32
    assert [layer.name for layer in model.layers if layer.weights] == ["enc_conv", "dec_conv", "head"]

    # the removal pipeline runs the saved file through the default runtime
    photo = read_image(chosen[0][0])
    alpha = Remover(result.model_path).alpha(photo)
    assert alpha.shape == photo.shape[:2] and alpha.dtype == np.float32
    assert 0.0 <= alpha.min() <= alpha.max() <= 1.0 and alpha.std() > 0  # a map that depends on the photo


def test_freeze_encoder_uses_the_spec_prefixes(toy_arch):
    from RMBG.models.build import build_model
    from RMBG.training.view import freeze_layers

    model = build_model(TOY, 32)
    frozen = freeze_layers(model, ("encoder",), TOY)
    assert sorted(frozen) == ["enc_conv", "enc_pool"]
    assert [layer.name for layer in model.layers if layer.weights and layer.trainable] == ["dec_conv", "head"]
