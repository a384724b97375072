"""The example data the notebooks run on: shared sets when present, the shipped demo photos otherwise.

Finding it may write: :func:`heldout_source` links the held-out photos into
a cache folder and :func:`demo_pairs` labels the demo photos with the
default model (through :class:`RMBG.removal.pipeline.Remover`); existing files are kept.
"""

from __future__ import annotations

import os
from pathlib import Path

from RMBG.constants import shared_data_dir

#: Shared sets the notebooks prepare by default: (kind for ``Preprocess.prepare``, folder).
EXAMPLE_SETS = (("people", "people"), ("folder", "cats"))
#: Shared set kept out of the example data, for evaluation.
HELDOUT_SET = "ecssd"
#: Shared folder with the original project's demo inputs and its outputs for them.
ORIGINAL_SET = "seed_test"


def example_sources(data_root: str | os.PathLike | None = None) -> list[tuple[str, Path]]:
    """``[(kind, folder), ...]`` of the photos the notebooks prepare and train on.

    The shared ``people`` and ``cats`` sets when ``../shared/data`` (or
    ``RMBG_DATA``) holds them (ECSSD stays out, for evaluation on photos the
    model never saw); otherwise the shipped demo photos, labelled by the
    default model (see :func:`demo_pairs`), so that every notebook still runs.
    """
    root = Path(data_root) if data_root is not None else shared_data_dir()
    if root is not None:
        found = [(kind, root / name) for kind, name in EXAMPLE_SETS if (root / name / "images").is_dir()]
        if found:
            return found
    return [("folder", demo_pairs())]


def heldout_source(data_root: str | os.PathLike | None = None, out: str | os.PathLike | None = None) -> Path:
    """A folder of photos with masks that neither the notebooks nor the default model trained on.

    The shared ECSSD photos of the default model's validation list
    (``Data/models/rmbg-default-val.txt``), linked into ``out`` (default
    ``Data/cache/heldout``); the whole ECSSD set when that list is absent; the
    demo pairs when ``../shared`` is absent. The validation list, not the test list: the shipped
    default trained on today's test part (its card says why), so only validation photos are unseen.
    """
    from RMBG.constants import DATA_DIR, MODELS_DIR

    root = Path(data_root) if data_root is not None else shared_data_dir()
    if root is None or not (root / HELDOUT_SET / "images").is_dir():
        return demo_pairs()
    val_list = MODELS_DIR / "rmbg-default-val.txt"
    listed = []
    if val_list.is_file():
        lines = [line.strip() for line in val_list.read_text().splitlines()]
        listed = [root / line for line in lines if line.startswith(f"{HELDOUT_SET}/images/")]
    listed = [photo for photo in listed if photo.is_file()]
    if not listed:
        return root / HELDOUT_SET
    folder = Path(out) if out is not None else DATA_DIR / "cache" / "heldout"
    for kind in ("images", "masks"):
        (folder / kind).mkdir(parents=True, exist_ok=True)
    for photo in listed:
        mask = root / HELDOUT_SET / "masks" / f"{photo.stem}.png"
        for source, link in ((photo, folder / "images" / photo.name), (mask, folder / "masks" / mask.name)):
            if not link.exists():
                link.symlink_to(source.resolve())
    return folder


def demo_pairs(out: str | os.PathLike | None = None) -> Path:
    """A folder ``images/`` + ``masks/`` made from the demo photos when no real data is there.

    The photos are the ones ``python -m RMBG demo`` writes; the masks are the
    default model's own predictions, so training on them only shows the flow
    working and scores against them measure agreement with that model, not
    accuracy. Existing files are kept.
    """
    from RMBG.apps.demo import write_samples
    from RMBG.constants import SAMPLES_DIR
    from RMBG.removal.pipeline import Remover

    folder = Path(out) if out is not None else SAMPLES_DIR / "pairs"
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    remover = None  # the default model is loaded only when a mask is missing
    for photo in write_samples():
        photo = Path(photo)
        image_out = folder / "images" / f"demo_{photo.stem}{photo.suffix}"
        mask_out = folder / "masks" / f"demo_{photo.stem}.png"
        if not image_out.exists():
            image_out.write_bytes(photo.read_bytes())
        if not mask_out.exists():
            remover = remover or Remover()
            remover.remove(photo, mode="mask").save(mask_out)
    return folder


def example_photos(n: int | None = None, data_root: str | os.PathLike | None = None) -> list[Path]:
    """Photos to cut out: the original project's demo inputs (when ``../shared`` is there) and
    the demo photos that installed packages ship (``RMBG.apps.demo``), at most ``n``."""
    from RMBG.apps.demo import write_samples
    from RMBG.images.io import list_images

    root = Path(data_root) if data_root is not None else shared_data_dir()
    photos = list_images(root / ORIGINAL_SET / "images") if root is not None else []
    photos += [Path(p) for p in write_samples()]
    return photos[:n] if n is not None else photos


def example_background():
    """A photo to put behind cut-outs in the ``image`` mode (``RMBG.apps.demo``'s), or None."""
    from RMBG.apps.demo import background_source

    return background_source()


def peer_models() -> list[Path]:
    """The peer ONNX models found (rembg's ``u2netp.onnx`` in ``../shared/peers``), maybe none."""
    from RMBG.constants import peer_model_path

    path = peer_model_path()
    return [path] if path is not None else []
