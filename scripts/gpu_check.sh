#!/usr/bin/env bash
# The prepared GPU check (issue 35): U-2-Net-P trains at 320 px, batch 32, mixed precision, on JAX with no
# TensorFlow, and prints images/s, memory and loss (scripts/gpu_check.py), within 8 minutes.
#
#   here, once:          python scripts/gpu_prepare.py          (builds .gpu_carry/, about 24 MiB, git-ignored)
#   on the GPU machine:  scripts/gpu_check.sh [gpu_check.py options, e.g. --steps 300]
#   a try on a CPU:      GPU_CHECK_CPU=1 scripts/gpu_check.sh --steps 2 --batch 2 --size 64 --batches 1 --val 4
#
# It needs python3 with JAX, numpy, Pillow and h5py; Keras (and optree when missing) come from .gpu_carry/wheels,
# installed with --no-deps into a temporary folder: no package registry is reached.
set -euo pipefail
cd "$(dirname "$0")/.."
CARRY=${GPU_CARRY:-.gpu_carry}
if [ ! -f "$CARRY/duts320.npz" ] || ! ls "$CARRY"/wheels/keras-*.whl >/dev/null 2>&1; then
    echo "gpu_check: $CARRY/ is incomplete: run python scripts/gpu_prepare.py first (where the data is)" >&2
    exit 2
fi
PYTHON=${PYTHON:-python3}
SITE=$(mktemp -d)
trap 'rm -rf "$SITE"' EXIT
"$PYTHON" -m pip install -q --no-index --no-deps --no-compile --target "$SITE" "$CARRY"/wheels/keras-*.whl
if ! "$PYTHON" -c "import optree" 2>/dev/null; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --target "$SITE" "$CARRY"/wheels/optree-*.whl
fi
export PYTHONPATH="$SITE:$PWD" KERAS_BACKEND=jax PYTHONUNBUFFERED=1
if [ "${GPU_CHECK_CPU:-0}" = 1 ]; then
    export JAX_PLATFORMS=cpu
else
    "$PYTHON" -c "import jax, sys; g = [d for d in jax.devices() if d.platform == 'gpu']; print('gpu_check: JAX', jax.__version__, 'on', g[0].device_kind if g else 'no GPU'); sys.exit(0 if g else 3)" \
        || { echo "gpu_check: JAX sees no GPU here (GPU_CHECK_CPU=1 runs it on the CPU)" >&2; exit 2; }
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi
exec timeout "${GPU_CHECK_TIMEOUT:-480}" "$PYTHON" scripts/gpu_check.py --carry "$CARRY" "$@"
