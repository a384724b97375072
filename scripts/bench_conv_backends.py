"""Where the JAX path's CPU training time goes: one 3x3 convolution layer (forward and backward, as training runs it)
at U-2-Net-P's shapes, timed under each Keras backend in its own process, with the cores it keeps busy.

    python scripts/bench_conv_backends.py [--size 160] [--batch 8] [--repeats 10] [--backends tensorflow,jax]

Prints, per layer shape: milliseconds per training step, CPU seconds per wall second (2.0 = both cores of this
machine busy) and the ratio to the first backend. ``XLA_FLAGS`` from the environment reaches the JAX process, so
flag experiments are ``XLA_FLAGS=--xla_cpu_use_onednn=true python scripts/bench_conv_backends.py``.

Measured here (2-core CPU, quiet, Keras 3.15.1, TensorFlow's oneDNN against jaxlib 0.10.2's XLA): JAX takes
1.3x-2.9x TensorFlow's time per layer (1.3-1.4x for the dilated 16 -> 16, 2.5-2.9x for 64 -> 16 and 16 -> 64),
with both using the two cores; none of ``--xla_cpu_use_thunk_runtime=false``, ``--xla_cpu_use_onednn=true
--xla_cpu_experimental_onednn_custom_call=true`` or XNNPACK convolution fusion moved a figure by more than noise.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

#: (input channels, output channels, dilation): the convolutions U-2-Net-P's RSU blocks are made of.
SHAPES = ((3, 64, 1), (64, 16, 1), (16, 16, 1), (32, 16, 1), (16, 64, 1), (16, 16, 2), (16, 16, 8))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--backends", default="tensorflow,jax")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def time_layer(args, cin: int, cout: int, dilation: int) -> dict:
    """Milliseconds per ``train_on_batch`` of one convolution layer, and the CPU time it used per wall second."""
    import keras
    import numpy as np

    rng = np.random.default_rng(0)
    inputs = keras.Input((args.size, args.size, cin))
    outputs = keras.layers.Conv2D(cout, 3, padding="same", dilation_rate=dilation)(inputs)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="sgd", loss="mse", jit_compile=keras.backend.backend() == "jax")
    x = rng.random((args.batch, args.size, args.size, cin), dtype=np.float32)
    y = rng.random((args.batch, args.size, args.size, cout), dtype=np.float32)
    for _ in range(2):  # compile and warm up
        model.train_on_batch(x, y)
    before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    for _ in range(args.repeats):
        model.train_on_batch(x, y)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"ms": 1000 * wall / args.repeats, "cores": cpu / wall}


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.one:
        print(json.dumps([time_layer(args, *shape) for shape in SHAPES]))
        return 0
    backends = [b for b in args.backends.split(",") if b]
    settings = ["--size", str(args.size), "--batch", str(args.batch), "--repeats", str(args.repeats)]
    results = {}
    for backend in backends:
        env = dict(os.environ, KERAS_BACKEND=backend)
        done = subprocess.run([sys.executable, __file__, *settings, "--one", backend], env=env,
                              capture_output=True, text=True, check=True)
        results[backend] = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"one 3x3 Conv2D, forward + backward, {args.size} px, batch {args.batch}, {args.repeats} steps; "
          f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}")
    head = "| in -> out (dilation) | " + " | ".join(f"{b} ms | {b} cores" for b in backends)
    head += "".join(f" | {b} x {backends[0]}" for b in backends[1:]) + " |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for i, (cin, cout, dilation) in enumerate(SHAPES):
        cells = [f"{results[b][i]['ms']:.1f} | {results[b][i]['cores']:.2f}" for b in backends]
        ratios = [f"{results[b][i]['ms'] / results[backends[0]][i]['ms']:.2f}" for b in backends[1:]]
        print(f"| {cin} -> {cout} ({dilation}) | " + " | ".join(cells) + "".join(f" | {r}" for r in ratios) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
