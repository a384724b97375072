"""Options several verbs share: ``--device``, and the one line that says what runs the model."""

from __future__ import annotations

import argparse
import sys

from RMBG.runtime.device import DEVICES


def add_device_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=DEVICES, default="auto",
                        help="where the model runs: auto (a GPU when the engine can use one), cpu, or gpu (an error "
                             "when no GPU can run it, never a silent CPU run; LiteRT runtimes run on the CPU)")


def say_device(prog: str, line: str) -> None:
    """Print once, on stderr, what runs the model (``remove: model on LiteRT int8 on CPU, 2 threads``)."""
    if line:
        print(f"{prog}: model on {line}", file=sys.stderr)
