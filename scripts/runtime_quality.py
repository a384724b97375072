"""Held-out quality of serving runtimes against the fp32 Keras model, per category.

    python scripts/runtime_quality.py [--model PATH] [--per-set N] [--data ../shared/data]
                                      [--candidate LABEL=SPEC ...] [--json OUT]
    python scripts/runtime_quality.py --name u2net [--index Data/dataset/shared/index.csv] [--split val]
                                      [--candidate LABEL=FILE ...]

``--name`` judges a public network's faster copy (LiteRT, bfloat16 Keras, fp32 ONNX) (:mod:`RMBG.models.public_copies`,
made or taken from the runtime cache as ``remove --model NAME`` does) against the
publisher's float file run through onnxruntime (``--peer NAME``), on the rows
of a prepared index's split (the validation rows by default), per category.

A candidate SPEC is a runtime name of :data:`RMBG.runtime.engines.KERAS_RUNTIMES`
(``tflite``, ``tflite-int8``; served from the runtime cache as ``remove``
serves them) or a model file (``.tflite`` / ``.onnx`` export). By default the
candidates are every cached runtime of the model besides ``keras``.

Every photo of the shared labelled sets (``people``, ``ecssd``, ``cats``; the
first ``--per-set`` of each, spread over the set, when given) goes through the
reference (the ``.keras`` model run by Keras) and every candidate; each mask is
brought to the photo's size the way ``remove`` does, rounded to 8 bits, and
scored against the ground truth (:mod:`RMBG.evaluation.metrics`, pysodmetrics, at the
mask's size). Printed per category (person, object, cat) and overall: MAE and
max-F of each runtime, their differences from the reference (the bound of
issue 16: |MAE diff| <= 0.001 and max-F no more than 0.002 lower), and the mean
absolute difference of the masks themselves from the reference; per candidate and
category, the median of the photos' MAE changes and the photo that changed most
(a category's mean can rest on one photo whose region flips).

Calibrating int8 on photos of these sets would make this a test on training
material: the default calibration reads ``../shared/data/unlabelled``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from RMBG.constants import shared_data_dir  # noqa: E402
from RMBG.evaluation.metrics import score_image, summarize_by
from RMBG.images.io import list_images, read_image, read_mask
from RMBG.runtime import engines as RT

SETS = ("people", "ecssd", "cats")
#: Issue 16's bound on a served runtime against the fp32 Keras model.
MAX_MAE_DIFF = 0.001
MAX_MAXF_DROP = 0.002
#: The index categories ``--name`` scores (never DUTS: IS-Net has been trained on it).
INDEX_CATEGORIES = ("person", "object", "cat")


def labelled_pairs(data: Path, per_set: int | None) -> list[tuple[Path, Path, str]]:
    """``(photo, mask, category)`` of the shared sets, ``per_set`` spread over each set when given."""
    pairs = []
    for name in SETS:
        images = list_images(data / name / "images")
        if per_set:
            images = images[:: max(1, len(images) // per_set)][:per_set]
        for image in images:
            mask = data / name / "masks" / f"{image.stem}.png"
            if mask.is_file():
                pairs.append((image, mask, image.stem.split("_")[0]))
    return pairs


def index_pairs(index: Path, split: str, categories=INDEX_CATEGORIES) -> list[tuple[Path, Path, str]]:
    """``(photo, mask, category)`` of the rows of a prepared ``index.csv`` in ``split`` and ``categories``."""
    import csv

    with open(index, newline="") as handle:
        rows = [row for row in csv.DictReader(handle)
                if row.get("split") == split and row.get("Category") in categories]
    if not rows:
        raise ValueError(f"{index}: no rows in split {split!r}")
    return [(index.parent / row["Image Path"], index.parent / row["Mask Path"], row["Category"]) for row in rows]


def served_mask(small: np.ndarray, shape) -> np.ndarray:
    """A model-size mask as ``remove`` writes its alpha: upsampled to the photo, 8 bits."""
    return np.rint(RT.upsample_mask(small, shape) * 255).astype(np.uint8)


def quality(segmenters: dict[str, RT.Segmenter], pairs, reference: str) -> dict:
    """Scores, per category, of every segmenter, and the mask differences from ``reference``."""
    scores = {label: [] for label in segmenters}
    differences = {label: [] for label in segmenters}
    seconds = {label: 0.0 for label in segmenters}
    categories, names = [], []
    for i, (image_path, mask_path, category) in enumerate(pairs):
        image, gt = read_image(image_path), read_mask(mask_path)
        categories.append(category)
        names.append(Path(image_path).name)
        masks = {}
        for label, segmenter in segmenters.items():
            start = time.perf_counter()
            small = segmenter.predict_small([image])[0]
            seconds[label] += time.perf_counter() - start
            masks[label] = served_mask(small, image.shape[:2])
            scores[label].append(score_image(masks[label], gt))
        for label in segmenters:
            diff = np.abs(masks[label].astype(np.int16) - masks[reference].astype(np.int16))
            differences[label].append(float(diff.mean()) / 255.0)
        if (i + 1) % 50 == 0:
            print(f"  {i + 1}/{len(pairs)} photos", file=sys.stderr, flush=True)
    result = {}
    for label in segmenters:
        overall, by_category = summarize_by(scores[label], categories)
        rows = {"all": overall, **by_category}
        result[label] = {
            cat: {"mae": row["mae"], "max_f": row["max_f"]} for cat, row in rows.items()
        }
        for cat in result[label]:
            picked = photos_of(categories, cat)
            result[label][cat]["mask_mae_vs_reference"] = float(np.mean([differences[label][i] for i in picked]))
            result[label][cat].update(per_photo_change(scores[label], scores[reference], names, picked))
        result[label]["seconds_per_image"] = seconds[label] / max(1, len(pairs))
    return result


def photos_of(categories: list[str], category: str) -> list[int]:
    """The positions of ``category``'s photos ("all": every photo)."""
    return [i for i, c in enumerate(categories) if category in ("all", c)]


def per_photo_change(scores, reference_scores, names, picked: list[int]) -> dict:
    """The median of the ``picked`` photos' MAE changes against the reference, and the photo whose MAE
    changes most: one flipped region can decide a small category's mean."""
    changes = np.array([scores[i].mae - reference_scores[i].mae for i in picked])
    largest = int(np.argmax(np.abs(changes)))
    return {"median_dmae": float(np.median(changes)), "largest_dmae": float(changes[largest]),
            "largest_photo": names[picked[largest]]}


def verdicts(result: dict, reference: str) -> dict[str, bool]:
    """Per runtime: does it keep issue 16's bound against the reference in every category?"""
    ok = {}
    for label, rows in result.items():
        cats = [cat for cat in rows if cat not in ("seconds_per_image",)]
        ok[label] = all(
            abs(rows[c]["mae"] - result[reference][c]["mae"]) <= MAX_MAE_DIFF
            and rows[c]["max_f"] - result[reference][c]["max_f"] >= -MAX_MAXF_DROP
            for c in cats
        )
    return ok


def format_quality(result: dict, reference: str, photos: int) -> str:
    lines = [f"{photos} labelled photos; reference {reference}; masks at each photo's size, 8 bits",
             f"{'runtime':<22}{'category':<9}{'MAE':>8}{'dMAE':>9}{'max-F':>8}{'dmax-F':>9}{'mask diff':>11}"
             f"{'med dMAE':>11}  largest photo dMAE"]
    for label, rows in result.items():
        for cat, row in rows.items():
            if cat == "seconds_per_image":
                continue
            ref = result[reference][cat]
            lines.append(f"{label:<22}{cat:<9}{row['mae']:>8.4f}{row['mae'] - ref['mae']:>+9.4f}"
                         f"{row['max_f']:>8.4f}{row['max_f'] - ref['max_f']:>+9.4f}"
                         f"{row['mask_mae_vs_reference']:>11.4f}"
                         + ("" if label == reference else f"{row['median_dmae']:>+11.4f}  "
                            f"{row['largest_photo']} {row['largest_dmae']:+.4f}"))
    ok = verdicts(result, reference)
    for label, rows in result.items():
        bound = "keeps" if ok[label] else "BREAKS"
        lines.append(f"{label}: {rows['seconds_per_image']:.3f} s/photo (predict_small, in this run); "
                     f"{bound} the bound |dMAE| <= {MAX_MAE_DIFF}, dmax-F >= -{MAX_MAXF_DROP}")
    return "\n".join(lines)


def open_candidate(spec: str, model: Path) -> RT.Segmenter:
    if spec in RT.KERAS_RUNTIMES:
        return RT.load_segmenter(model, runtime=spec)
    return RT.load_segmenter(Path(spec))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="the .keras model (default: the shipped one)")
    parser.add_argument("--data", type=Path, default=shared_data_dir(), help="shared data folder")
    parser.add_argument("--per-set", type=int, help="photos per set (default: all)")
    parser.add_argument("--candidate", action="append", default=[], metavar="LABEL=SPEC",
                        help="a runtime name or an exported model file (repeatable)")
    parser.add_argument("--json", type=Path, help="write the figures to this JSON file")
    parser.add_argument("--name", help="a public network's name (u2net, ...): judge its faster copy against "
                                       "the publisher's file through onnxruntime")
    parser.add_argument("--index", type=Path, help="a prepared index.csv (with --name; default "
                                                  "Data/dataset/shared/index.csv)")
    parser.add_argument("--split", default="val", help="the index rows to score (default val)")
    args = parser.parse_args(argv)
    if args.name:
        from RMBG.constants import DATA_DIR

        index = args.index or DATA_DIR / "dataset" / "shared" / "index.csv"
        reference = f"{args.name} onnxruntime"
        from RMBG.models.public_copies import conversion_for

        row = conversion_for(args.name)
        segmenters = {reference: RT.load_segmenter(args.name, peer=True),
                      f"{args.name} {row.quantize if row else 'no'} copy": RT.load_segmenter(args.name)}
        segmenters.update({label: RT.load_segmenter(Path(spec)) for label, spec in
                           (item.split("=", 1) for item in args.candidate)})
        for label, segmenter in segmenters.items():
            segmenter.resample = segmenters[reference].resample
        pairs = index_pairs(index, args.split)
        if args.per_set:  # the first per_set of each category, spread over it
            pairs = [pair for cat in dict.fromkeys(c for _, _, c in pairs)
                     for group in [[p for p in pairs if p[2] == cat]]
                     for pair in group[:: max(1, len(group) // args.per_set)][: args.per_set]]
        source = f"{index} ({args.split})"
    else:
        if args.data is None:
            print("needs ../shared/data (or --data)", file=sys.stderr)
            return 2
        model = args.model or RT.default_model_path()
        specs = dict(item.split("=", 1) if "=" in item else (item, item) for item in args.candidate)
        if not specs:
            specs = {name: name for name in RT.KERAS_RUNTIMES if name != "keras"}
        reference = "keras fp32"
        segmenters = {reference: RT.KerasSegmenter.from_file(model)}
        segmenters.update({label: open_candidate(spec, model) for label, spec in specs.items()})
        pairs = labelled_pairs(args.data, args.per_set)
        source = str(model)
    result = quality(segmenters, pairs, reference)
    print(format_quality(result, reference, len(pairs)))
    if args.json:
        args.json.write_text(json.dumps({"photos": len(pairs), "model": source, "result": result}, indent=1))
    return 0 if all(verdicts(result, reference).values()) else 1


if __name__ == "__main__":
    sys.exit(main())
