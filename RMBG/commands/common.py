"""Options several verbs share: ``--model`` (a name, ``A+B`` or a file), ``--device``, and the line that says
what runs the model."""

from __future__ import annotations

import argparse
import sys

from RMBG.models.names import ENSEMBLE_SEPARATOR, NAMES, UnknownModelName, check_spec
from RMBG.runtime.device import DEVICES

#: The help of every ``--model`` option.
MODEL_HELP = (f"a model name ({', '.join(NAMES)}; `python -m RMBG models` lists them), several joined by "
              f"{ENSEMBLE_SEPARATOR!r} for the mean of their maps (e.g. u2net+isnet), or a model file "
              "(.keras, .tflite, .onnx)")


def model_argument(text: str) -> str:
    """argparse ``type`` of ``--model``: a known name, ``A+B`` or a path (an unknown name is refused, exit 2)."""
    try:
        return check_spec(text)
    except UnknownModelName as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_device_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=DEVICES, default="auto",
                        help="where the model runs: auto (a GPU when the engine can use one), cpu, or gpu (an error "
                             "when no GPU can run it, never a silent CPU run; LiteRT runtimes run on the CPU)")


def say_device(prog: str, line: str) -> None:
    """Print once, on stderr, what runs the model (``remove: model on LiteRT int8 on CPU, 2 threads``)."""
    if line:
        print(f"{prog}: model on {line}", file=sys.stderr)
