# Sourced by scripts/gpu_check.sh and scripts/gpu_train.sh on a GPU machine with JAX and no TensorFlow and no
# package registry: installs the carried Keras (and optree when missing) with --no-deps into a temporary folder,
# sets PYTHONPATH, KERAS_BACKEND=jax and PYTHONUNBUFFERED, and checks that JAX sees a GPU (GPU_CPU=1: run on
# the CPU instead, for a try where there is none). Needs CARRY (the carried folder) and PYTHON set.
if ! ls "$CARRY"/wheels/keras-*.whl >/dev/null 2>&1; then
    echo "$(basename "$0"): $CARRY/wheels/ has no Keras wheel: run python scripts/gpu_prepare.py first (where the data is)" >&2
    exit 2
fi
SITE=$(mktemp -d)
trap 'rm -rf "$SITE"' EXIT
"$PYTHON" -m pip install -q --no-index --no-deps --no-compile --target "$SITE" "$CARRY"/wheels/keras-*.whl
if ! "$PYTHON" -c "import optree" 2>/dev/null; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --target "$SITE" "$CARRY"/wheels/optree-*.whl
fi
export PYTHONPATH="$SITE:$PWD" KERAS_BACKEND=jax PYTHONUNBUFFERED=1
if [ "${GPU_CPU:-0}" = 1 ]; then
    export JAX_PLATFORMS=cpu
else
    "$PYTHON" -c "import jax, sys; g = [d for d in jax.devices() if d.platform == 'gpu']; print('JAX', jax.__version__, 'on', g[0].device_kind if g else 'no GPU'); sys.exit(0 if g else 3)" \
        || { echo "$(basename "$0"): JAX sees no GPU here (GPU_CPU=1 runs it on the CPU)" >&2; exit 2; }
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi
