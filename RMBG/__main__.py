"""``rmbg COMMAND ...`` and ``python -m RMBG COMMAND ...``: the dispatcher.

One module per verb in :mod:`RMBG.commands` (``remove`` -> ``RMBG.commands.remove``, ``fetch-teacher``
-> ``RMBG.commands.fetch_teacher``), each parsing its own arguments (``main(argv) -> int``) and
calling the stage that does the work. This file only dispatches.
"""

from __future__ import annotations

import importlib
import sys

#: command -> one-line help; the command's module is :func:`command_module`
COMMANDS = {
    "import-weights": "import rembg's u2net/u2netp ONNX weights into a .keras model",
    "fetch-teacher": "download a big public model: u2net (rembg's U-2-Net, 176 MB) or isnet (IS-Net, 88 MB; opt-in)",
    "models": "list the models --model takes by name (size, input, licence, source, present or not)",
    "label": "write a dataset whose masks are a teacher model's soft maps (distillation)",
    "distill-set": "mix ground truth and teacher labels into one training folder",
    "train": "train or fine-tune a model with a preset",
    "blend": "blend a fine-tuned model's weights with its start's (WiSE-FT)",
    "evaluate": "score models and peers on a prepared dataset",
    "compare": "the shipping rule: may a candidate replace the default? (two evaluations; exit 0 yes, 1 no)",
    "bench": "time our model against a peer, end to end",
    "remove": "remove backgrounds from images, folders or globs",
    "beam": "remove backgrounds on Apache Beam (local runner, Dataflow, Flink, Spark)",
    "export": "export a model to TFLite or ONNX",
    "demo": "remove backgrounds from the bundled demo photos",
    "video": "remove the background of a video, keeping its sound (rgba: .webm or .mov)",
    "stream": "raw rgb24 frames on stdin to raw cut-out frames on stdout (for ffmpeg pipes)",
    "serve": "serve background removal over HTTP: an API and a web page",
}


def command_module(name: str) -> str:
    """The module of a verb: ``RMBG.commands.<verb with - as _>``."""
    return f"RMBG.commands.{name.replace('-', '_')}"


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: rmbg (or python -m RMBG) [--verbose] COMMAND [options]   (COMMAND --help for its options)", "",
             "--verbose keeps the libraries' own log lines and warnings (also RMBG_VERBOSE=1)", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {text}" for name, text in COMMANDS.items()]
    return "\n".join(lines)


def keras_backend_problem() -> str | None:
    """What is wrong when the Keras backend asked for is not installed (``None`` when it is)."""
    import importlib.util

    from RMBG.machine import keras_backend_name

    name = keras_backend_name()
    try:
        found = importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        found = False
    if found:
        return None
    from RMBG.constants import BACKEND_INSTALL

    fix = BACKEND_INSTALL.get(name, f"install {name}")
    return f"KERAS_BACKEND={name}: {name} is not installed here; {fix}, or set KERAS_BACKEND=tensorflow"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "--verbose":
        from RMBG.quiet import be_verbose

        be_verbose()
        argv = argv[1:]
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    try:
        module = importlib.import_module(command_module(name))
        return int(module.main(rest) or 0)
    except ImportError:
        problem = keras_backend_problem()
        if problem is None:
            raise
        print(f"{name}: {problem}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
