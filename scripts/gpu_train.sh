#!/usr/bin/env bash
# A training run on a lent GPU machine (JAX, no TensorFlow, no package registry): `python -m RMBG train` on the
# dataset packed into .gpu_carry/dataset/, stopped at the first epoch end after GPU_TRAIN_MINUTES (6; `train
# --time-limit`) so that the call ends within its limit (GPU_TRAIN_MINUTES + 3 minutes kill it regardless), and
# the run folder (its backup left out) packed into $OUT in parts the device tool brings back.
#
#   here, once:        python scripts/gpu_prepare.py --dataset Data/dataset/distill11 --pairs 0
#                      (--init FILE also carries a start file as .gpu_carry/init.keras: a later session goes on
#                      from the last run's .gpu_carry/run/best.keras that way; the optimizer starts afresh)
#   on the GPU:        scripts/gpu_train.sh --preset distill --arch u2netp --init Data/models/u2netp-imported.keras \
#                          --epochs 200 --steps-per-epoch 100 --val-every-steps 100 --ema 0.999
#                      (device run: carry [".gpu_carry"]; every other option of `train` passes through)
#   here, after it:    scripts/gpu_train.sh unpack FILES_AT   (the folder the tool put $OUT's files in)
#                      -> .gpu_carry/run/: best.keras, model.keras, val_steps.csv, checked_photos.txt (the
#                      carried validation photos, named as here), summary.json, ...
#   a try on a CPU:    GPU_CPU=1 scripts/gpu_train.sh --preset distill --arch u2netp \
#                          --init Data/models/u2netp-imported.keras --image-size 64 --crop-size 64 --batch 2 \
#                          --epochs 2 --steps-per-epoch 2 --val-every-steps 2 --val-limit 4
#
# Back here, score .gpu_carry/run/best.keras with `evaluate --split val` and put it to the shipping rule with
# `compare --leave-out .gpu_carry/run/checked_photos.txt`, as for any run. Nothing else depends on this script.
set -euo pipefail
cd "$(dirname "$0")/.."
CARRY=${GPU_CARRY:-.gpu_carry}
# Parts of the packed run folder: under the device tool's 16 MiB a file, at most 7 of them (8 files come back).
PART=15M
if [ "${1:-}" = unpack ]; then
    [ -n "${2:-}" ] && ls "$2"/run.tar.* >/dev/null 2>&1 \
        || { echo "gpu_train: unpack FOLDER: FOLDER must hold the run.tar.* parts a GPU call wrote" >&2; exit 2; }
    rm -rf "$CARRY/run" && mkdir -p "$CARRY/run"
    cat $(ls "$2"/run.tar.* | sort -V) | tar -xf - -C "$CARRY/run"
    # the packed photos are WebP files: name the checked ones as the evaluation here names them (index.csv)
    "${PYTHON:-python3}" - "$CARRY" <<'PY'
import csv, sys
from pathlib import Path
carry = Path(sys.argv[1])
with open(carry / "dataset" / "index.csv", newline="") as handle:
    original = {Path(row["Image Path"]).name: row.get("Image Name") or Path(row["Image Path"]).name
                for row in csv.DictReader(handle)}
checked = carry / "run" / "checked_photos.txt"
if checked.is_file():
    names = checked.read_text().split()
    checked.write_text("".join(f"{original.get(name, name)}\n" for name in names))
PY
    echo "gpu_train: $CARRY/run/ unpacked ($(ls "$CARRY/run" | tr '\n' ' '))"
    exit 0
fi
if [ ! -f "$CARRY/dataset/index.csv" ]; then
    echo "gpu_train: $CARRY/dataset/ is missing: run python scripts/gpu_prepare.py --dataset DIR first" >&2
    exit 2
fi
PYTHON=${PYTHON:-python3}
# shellcheck source=scripts/gpu_env.sh
source scripts/gpu_env.sh
OUT=${OUT:-$(mktemp -d)}
WORK=$(mktemp -d)/run
DEVICE=gpu
[ "${GPU_CPU:-0}" = 1 ] && DEVICE=cpu
status=0
MINUTES=${GPU_TRAIN_MINUTES:-6}
KILL_SECONDS=$(awk -v m="$MINUTES" 'BEGIN { print int(m * 60) + 180 }')
mkdir -p "$WORK"
timeout "$KILL_SECONDS" "$PYTHON" -m RMBG train --data "$CARRY/dataset" --out "$WORK" --device "$DEVICE" \
    --verbose 2 --time-limit "$MINUTES" "$@" 2>&1 | tee "$OUT/train.log" || status=$?
# what is scored here travels back; the backup (to resume on this machine) and Keras's best-by-loss weights do not
tar -cf - -C "$WORK" --exclude checkpoint.weights.h5 --exclude backup . | split -b "$PART" -d -a 1 - "$OUT/run.tar."
echo "gpu_train: train exited $status; the run folder is in $(ls "$OUT"/run.tar.* | wc -l) part(s) under \$OUT"
