"""``python -m RMBG demo``: background removal on real photos that installed packages ship.

Copies a few photos from scikit-image's and matplotlib's own package data (no
network, nothing outside the project) to ``Data/samples/``, removes their
backgrounds with the default model, and writes every output mode for each to
``Data/output/demo/MODE/``, the side-by-side pictures included. Re-running
replaces the demo's own outputs; samples already in ``Data/samples/`` are
left as they are.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tqdm import tqdm

from RMBG.constants import OUTPUT_DIR, SAMPLES_DIR
from RMBG.images.io import ImageReadError, read_image, save_image
from RMBG.removal.compose import MODES, PNG_MODES
from RMBG.runtime.engines import DEFAULT_RUNTIME

#: Photos with a clear subject that scikit-image's wheel ships in ``skimage/data``.
SKIMAGE_SAMPLES = ("astronaut.png", "coffee.png", "chelsea.png", "motorcycle_left.png")

#: matplotlib's sample photo (``mpl-data/sample_data``).
MATPLOTLIB_SAMPLES = ("grace_hopper.jpg",)

#: Background for the ``image`` mode (tried in order; scikit-image data).
BACKGROUND_CANDIDATES = ("hubble_deep_field.jpg", "rocket.jpg")

DEMO_OUT = OUTPUT_DIR / "demo"

#: Background colour of the ``color`` mode in the demo.
DEMO_BG_COLOR = "#2E8B57"


def _skimage_data_dir() -> Path | None:
    try:
        import skimage
    except ImportError:
        return None
    return Path(skimage.__file__).parent / "data"


def _matplotlib_sample(name: str) -> Path | None:
    try:
        from matplotlib import cbook

        return Path(cbook.get_sample_data(name, asfileobj=False))
    except (ImportError, OSError, ValueError):
        return None


def sample_sources() -> dict[str, Path]:
    """Name -> path of each demo photo the installed packages actually ship."""
    found: dict[str, Path] = {}
    data = _skimage_data_dir()
    for name in SKIMAGE_SAMPLES:
        if data is not None and (data / name).is_file():
            found[name] = data / name
    for name in MATPLOTLIB_SAMPLES:
        path = _matplotlib_sample(name)
        if path is not None and path.is_file():
            found[name] = path
    return found


def background_source() -> Path | None:
    """A scikit-image photo to put behind the subjects in the ``image`` mode."""
    data = _skimage_data_dir()
    for name in BACKGROUND_CANDIDATES:
        if data is not None and (data / name).is_file():
            return data / name
    return None


def write_samples(folder: Path = SAMPLES_DIR) -> list[Path]:
    """Copy the demo photos (decoded and re-saved, upright RGB) into ``folder``."""
    written = []
    for name, source in sample_sources().items():
        target = folder / name
        if not target.exists():
            save_image(read_image(source), target)
        written.append(target)
    return written


def run_demo(model=None, out: Path = DEMO_OUT, samples: Path = SAMPLES_DIR, runtime: str = DEFAULT_RUNTIME) -> dict[str, list[Path]]:
    """Write every mode for every sample photo; ``{mode: [output paths]}``."""
    from RMBG.removal.pipeline import Remover

    photos = write_samples(samples)
    if not photos:
        raise RuntimeError("no sample photos found in the installed scikit-image or matplotlib")
    background = background_source()
    modes = [m for m in MODES if m != "image" or background is not None]
    bg_image = read_image(background) if background is not None else None
    remover = Remover(model, runtime=runtime)
    written: dict[str, list[Path]] = {mode: [] for mode in modes}
    for photo in tqdm(photos, desc="demo", unit="img"):
        try:
            image = read_image(photo)
        except ImageReadError as exc:
            print(f"skipping {exc}", file=sys.stderr)
            continue
        alpha = remover.alpha(image)
        for mode in modes:
            suffix = ".png" if mode in PNG_MODES else photo.suffix
            target = out / mode / (photo.stem + suffix)
            picture = remover.compose(image, alpha, mode, bg_color=DEMO_BG_COLOR, bg_image=bg_image)
            save_image(picture, target, overwrite=True, **({"quality": 95} if suffix == ".jpg" else {}))
            written[mode].append(target)
    return written
