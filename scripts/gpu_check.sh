#!/usr/bin/env bash
# The prepared GPU check (issue 35): U-2-Net-P trains at 320 px, batch 32, mixed precision, on JAX with no
# TensorFlow, and prints images/s, memory and loss (scripts/gpu_check.py), within 8 minutes.
#
#   here, once:          python scripts/gpu_prepare.py          (builds .gpu_carry/, about 24 MiB, git-ignored)
#   on the GPU machine:  scripts/gpu_check.sh [gpu_check.py options, e.g. --steps 300]
#   a try on a CPU:      GPU_CHECK_CPU=1 scripts/gpu_check.sh --steps 2 --batch 2 --size 64 --batches 1 --val 4
#
# It needs python3 with JAX, numpy, Pillow and h5py; Keras (and optree when missing) come from .gpu_carry/wheels
# (scripts/gpu_env.sh): no package registry is reached.
set -euo pipefail
cd "$(dirname "$0")/.."
CARRY=${GPU_CARRY:-.gpu_carry}
if [ ! -f "$CARRY/duts320.npz" ]; then
    echo "gpu_check: $CARRY/ is incomplete: run python scripts/gpu_prepare.py first (where the data is)" >&2
    exit 2
fi
PYTHON=${PYTHON:-python3}
GPU_CPU=${GPU_CHECK_CPU:-0}
# shellcheck source=scripts/gpu_env.sh
source scripts/gpu_env.sh
exec timeout "${GPU_CHECK_TIMEOUT:-480}" "$PYTHON" scripts/gpu_check.py --carry "$CARRY" "$@"
