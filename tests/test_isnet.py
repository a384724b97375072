"""IS-Net's file run the publisher's way (``--peer isnet``, onnxruntime) on real shared photos (issue 34);
its faster copies, which ``isnet`` by name runs, are pinned in ``test_public_copies.py``.

Needs ``isnet.onnx`` in ``$U2NET_HOME`` (``~/.u2net``), which only the opt-in
``python -m RMBG fetch-teacher isnet`` puts there: skipped with that reason
otherwise. About 5-10 s a photo on this project's 2-core machines.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from shared_sets import pairs

import RMBG.runtime.engines as RT
from RMBG.images.io import read_image

#: The photos' masks must be at least this close to the truth (mean absolute error).
MAX_MAE = 0.1


@pytest.fixture(scope="module")
def isnet(isnet_onnx):
    return RT.load_segmenter("isnet", peer=True)


def imgly_map(segmenter, image: np.ndarray) -> np.ndarray:
    """IS-Net's 1024x1024 map of ``image`` computed as imgly does, written out here independently of
    the runtime's preprocessing: bilinear to 1024 (uint8), (x - 128) / 256, NCHW, output ``output`` as is."""
    small = np.asarray(Image.fromarray(image).resize((1024, 1024), Image.BILINEAR), np.float32)
    feed = ((small - 128.0) / 256.0).transpose(2, 0, 1)[None]
    return segmenter.session.run(["output"], {"input": feed})[0][0, 0]


def test_isnet_gives_sane_masks_on_people(isnet, shared_data):
    assert isinstance(isnet, RT.OnnxPeerSegmenter) and isnet.input_size == 1024
    for index, (image_path, mask_path) in enumerate(pairs(shared_data / "people", 2)):
        image = read_image(image_path)
        truth = np.asarray(Image.open(mask_path).convert("L"), np.float32) / 255.0
        mask = isnet.predict_one(image)
        assert mask.shape == truth.shape and 0.0 <= mask.min() and mask.max() <= 1.0
        mae = float(np.abs(mask - truth).mean())
        assert mae < MAX_MAE, f"{image_path.name}: MAE {mae:.4f}"
        assert abs(mask.mean() - truth.mean()) < 0.05  # the subject's share of the photo, not nothing or all
        hard, true = mask > 0.5, truth > 0.5
        assert (hard & true).sum() / (hard | true).sum() > 0.8  # IoU
        if index == 0:  # the recipe matches imgly's, computed independently
            # ((x/255 - 128/255) / (256/255) rounds apart from (x - 128) / 256 by ~1e-7; the fp16 network
            # turns that into at most ~3e-4 on a pixel)
            assert np.abs(isnet.predict_small([image])[0] - imgly_map(isnet, image)).max() < 1e-3
