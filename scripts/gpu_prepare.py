"""Build ``.gpu_carry/``: everything ``scripts/gpu_check.sh`` and ``scripts/gpu_train.sh`` need on a GPU machine
with JAX and no TensorFlow and no package registry, in at most 50 MiB (the working tree travels beside it).

    python scripts/gpu_prepare.py [--pairs 384] [--size 320] [--out .gpu_carry]
        [--dataset DIR [--dataset-val N] [--dataset-limit N]] [--init FILE]

- ``wheels/``: the pinned Keras (``pip download keras==PIN --no-deps``, the pin read from pyproject.toml) and
  optree for CPython 3.12 (Keras needs it under JAX; installed there only when missing);
- ``duts320.npz``: the first ``--pairs`` pairs of ``../shared/data/duts-tr`` (sorted), decoded and resized to
  ``--size`` by the training pipeline, stored as JPEG (quality 95) and PNG bytes;
- ``u2netp-imported.keras``: the imported u2netp weights (``Data/models/``), where the check starts (with the
  slice only: a training run starts from the copy in ``Data/models/``, which travels with the working tree);
- ``dataset/`` (with ``--dataset``): the training rows of a prepared or ``distill-set`` folder and a seeded
  ``--dataset-val`` of its validation rows (default 150: what fits), for ``gpu_train.sh``. Each photo and mask
  is resized to ``--size`` square as training resizes them and stored as WebP (photos quality 60, masks
  lossless: 2,331 training pairs and 150 validation ones in about 43 MiB, room left for a start file);
  ``index.csv`` has relative paths and the other columns. The test rows stay here: the part no choice touches
  never travels. The validation rows left behind are the ones the shipping rule scores a candidate on
  (``compare --leave-out .gpu_carry/run/checked_photos.txt``). ``--dataset-limit N`` keeps the first N
  training rows (for a try); ``--pairs 0`` leaves the check's slice out;
- ``init.keras`` (with ``--init FILE``): a start file for ``gpu_train.sh --init .gpu_carry/init.keras``, read
  before the folder is made anew (so ``--init .gpu_carry/run/best.keras`` goes on from the last GPU run).

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

#: The most the carried folder may weigh (the device tool's 64 MiB less the working tree).
MAX_BYTES = 50 << 20
#: The splits a packed dataset keeps (the test part never travels) and its photos' WebP quality.
CARRIED_SPLITS = ("train", "val")
CARRIED_WEBP_QUALITY = 60
#: Validation rows carried by default, and the seed that draws them.
CARRIED_VAL = 150
CARRIED_VAL_SEED = 0
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


def pack_dataset(source: Path, size: int, out: Path, val: int = CARRIED_VAL, limit: int | None = None) -> int:
    """The training rows of ``source``'s index and a seeded ``val`` of its validation rows, at ``size``, into
    ``out`` (see the module notes); returns the rows written."""
    import csv

    from RMBG.images.dataset import Pair, read_index, resolve_index_path
    from RMBG.training.py_dataset import load_pair

    columns, rows = read_index(source)
    if "split" not in columns:
        raise SystemExit(f"gpu_prepare: {source}/index.csv has no split column (prepare or distill-set writes one)")
    train = [row for row in rows if (row.get("split") or "").strip() == "train"][:limit]
    val_rows = [row for row in rows if (row.get("split") or "").strip() == "val"]
    chosen = np.random.default_rng(CARRIED_VAL_SEED).permutation(len(val_rows))[:val]
    (out / "images").mkdir(parents=True)
    (out / "masks").mkdir()
    kept = []
    for row in train + [val_rows[i] for i in sorted(chosen)]:
        image = resolve_index_path(source, row["Image Path"], "images")
        mask = resolve_index_path(source, row["Mask Path"], "masks")
        stem = Path(row.get("Image Name") or image.name).stem
        if (out / "images" / f"{stem}.webp").exists():
            raise SystemExit(f"gpu_prepare: {image}: a second photo named {stem} in {source}/index.csv")
        try:
            pixels, alpha = load_pair(Pair(str(image), str(mask), ""), size)
        except Exception as exc:  # noqa: BLE001 - an unreadable pair is named and left out
            print(f"gpu_prepare: {image}: {exc}; left out", file=sys.stderr)
            continue
        Image.fromarray(pixels).save(out / "images" / f"{stem}.webp", "WEBP", quality=CARRIED_WEBP_QUALITY)
        Image.fromarray(alpha[..., 0]).save(out / "masks" / f"{stem}.webp", "WEBP", lossless=True)
        kept.append({**row, "Image Path": f"images/{stem}.webp", "Mask Path": f"masks/{stem}.webp",
                     "width": size, "height": size})
    with open(out / "index.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(kept)
    return len(kept)


def main(argv=None) -> int:
    from RMBG.constants import IMPORTED_U2NETP_PATH, shared_data_dir

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=384)
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--out", default=str(ROOT / ".gpu_carry"))
    parser.add_argument("--data", default=None, help="images/ + masks/ (default ../shared/data/duts-tr)")
    parser.add_argument("--dataset", default=None, help="a prepared or distill-set folder to pack for gpu_train.sh")
    parser.add_argument("--dataset-val", type=int, default=CARRIED_VAL, help="validation rows carried (seeded)")
    parser.add_argument("--dataset-limit", type=int, default=None, help="only the first N training rows")
    parser.add_argument("--init", default=None, help="a start file to carry as init.keras")
    args = parser.parse_args(argv)
    if args.dataset and not (Path(args.dataset) / "index.csv").is_file():
        print(f"gpu_prepare: {args.dataset}: no index.csv (a prepared or distill-set folder has one)", file=sys.stderr)
        return 2
    data = Path(args.data) if args.data else (shared_data_dir() or Path("missing")) / "duts-tr"
    if not data.is_dir():
        print(f"gpu_prepare: {data}: no such dataset folder (pass --data)", file=sys.stderr)
        return 2
    if not IMPORTED_U2NETP_PATH.is_file():
        print(f"gpu_prepare: {IMPORTED_U2NETP_PATH} is missing (python -m RMBG import-weights)", file=sys.stderr)
        return 2
    init = Path(args.init).read_bytes() if args.init else None  # before the folder (which may hold it) goes
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    download_wheels(out / "wheels")
    if args.pairs:
        shutil.copyfile(IMPORTED_U2NETP_PATH, out / "u2netp-imported.keras")
    packed = pack_pairs(data, args.pairs, args.size, out / "duts320.npz") if args.pairs else 0
    if init is not None:
        (out / "init.keras").write_bytes(init)
    if args.dataset:
        rows = pack_dataset(Path(args.dataset), args.size, out / "dataset", args.dataset_val, args.dataset_limit)
        print(f"dataset/: {rows} training and validation rows of {args.dataset} at {args.size} px")
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    for path in sorted(out.iterdir()):
        size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size
        print(f"{path.name}{'/' if path.is_dir() else ''}  {size / 2**20:.1f} MiB")
    print(f"{out}: {packed} check pairs at {args.size} px, {total / 2**20:.1f} MiB in all")
    if total > MAX_BYTES:
        print(f"gpu_prepare: {total / 2**20:.1f} MiB is over the {MAX_BYTES >> 20} MiB limit: "
              "use fewer --pairs or --dataset-val", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
