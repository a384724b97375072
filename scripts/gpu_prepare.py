"""Build ``.gpu_carry/``: everything ``scripts/gpu_check.sh`` needs on a GPU machine with JAX and no TensorFlow
and no package registry, in at most 40 MiB.

    python scripts/gpu_prepare.py [--pairs 384] [--size 320] [--out .gpu_carry]

- ``wheels/``: the pinned Keras (``pip download keras==PIN --no-deps``, the pin read from pyproject.toml) and
  optree for CPython 3.12 (Keras needs it under JAX; installed there only when missing);
- ``duts320.npz``: the first ``--pairs`` pairs of ``../shared/data/duts-tr`` (sorted), decoded and resized to
  ``--size`` by the training pipeline, stored as JPEG (quality 95) and PNG bytes;
- ``u2netp-imported.keras``: the imported u2netp weights (``Data/models/``), where the check starts.

The folder is git-ignored. Run it here (it needs the data and a registry); nothing else uses it.
"""

from __future__ import annotations

import argparse
import io
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

#: The most the carried folder may weigh.
MAX_BYTES = 40 << 20
#: optree for the GPU machine's Python (3.12, manylinux x86-64); the version installed here.
OPTREE_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")


def keras_pin() -> str:
    found = re.search(r'"keras==([^"]+)"', (ROOT / "pyproject.toml").read_text())
    if not found:
        sys.exit("gpu_prepare: no keras==VERSION pin in pyproject.toml")
    return found.group(1)


def download_wheels(folder: Path) -> None:
    from importlib.metadata import version

    folder.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(folder)]
    subprocess.run([*pip, f"keras=={keras_pin()}"], check=True)
    platforms = [item for name in OPTREE_PLATFORMS for item in ("--platform", name)]
    subprocess.run([*pip, "--only-binary=:all:", "--python-version", "3.12", "--implementation", "cp", *platforms,
                    f"optree=={version('optree')}"], check=True)


def pack_pairs(source: Path, count: int, size: int, out: Path) -> int:
    """The first ``count`` readable pairs of ``source`` at ``size``, as JPEG/PNG bytes in one ``.npz``."""
    from RMBG.images import dataset
    from RMBG.training.py_dataset import load_pair

    pairs = sorted(dataset.list_pairs(source)[0], key=lambda p: p.image)
    images, masks, names = [], [], []
    for pair in pairs:
        if len(images) == count:
            break
        try:
            image, mask = load_pair(pair, size)
        except Exception as exc:  # noqa: BLE001 - an unreadable pair is named and left out
            print(f"gpu_prepare: {pair.image}: {exc}; left out", file=sys.stderr)
            continue
        jpeg, png = io.BytesIO(), io.BytesIO()
        Image.fromarray(image).save(jpeg, "JPEG", quality=95)
        Image.fromarray(mask[..., 0]).save(png, "PNG")
        images.append(np.frombuffer(jpeg.getvalue(), np.uint8))
        masks.append(np.frombuffer(png.getvalue(), np.uint8))
        names.append(Path(pair.image).name)

    def packed(chunks):
        return np.concatenate(chunks), np.cumsum([0] + [len(c) for c in chunks])

    jpegs, jpeg_offsets = packed(images)
    pngs, png_offsets = packed(masks)
    np.savez(out, jpeg=jpegs, jpeg_offsets=jpeg_offsets, png=pngs, png_offsets=png_offsets, names=np.array(names),
             size=np.array(size))
    return len(images)


def main(argv=None) -> int:
    from RMBG.constants import IMPORTED_U2NETP_PATH, shared_data_dir

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=384)
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--out", default=str(ROOT / ".gpu_carry"))
    parser.add_argument("--data", default=None, help="images/ + masks/ (default ../shared/data/duts-tr)")
    args = parser.parse_args(argv)
    data = Path(args.data) if args.data else (shared_data_dir() or Path("missing")) / "duts-tr"
    if not data.is_dir():
        print(f"gpu_prepare: {data}: no such dataset folder (pass --data)", file=sys.stderr)
        return 2
    if not IMPORTED_U2NETP_PATH.is_file():
        print(f"gpu_prepare: {IMPORTED_U2NETP_PATH} is missing (python -m RMBG import-weights)", file=sys.stderr)
        return 2
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    download_wheels(out / "wheels")
    shutil.copyfile(IMPORTED_U2NETP_PATH, out / "u2netp-imported.keras")
    packed = pack_pairs(data, args.pairs, args.size, out / "duts320.npz")
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    for path in sorted(out.rglob("*")):
        if path.is_file():
            print(f"{path.relative_to(out)}  {path.stat().st_size / 2**20:.1f} MiB")
    print(f"{out}: {packed} pairs at {args.size} px, {total / 2**20:.1f} MiB in all")
    if total > MAX_BYTES:
        print(f"gpu_prepare: {total / 2**20:.1f} MiB is over the {MAX_BYTES >> 20} MiB limit: use fewer --pairs",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
