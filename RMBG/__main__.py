"""``python -m RMBG COMMAND ...``: one subcommand per stage, each owned by its module.

This file only dispatches; every command parses its own arguments in the
module that does the work (``main(argv) -> int``).
"""

from __future__ import annotations

import importlib
import sys

#: command -> (module, one-line help)
COMMANDS = {
    "import-weights": ("RMBG.weights", "import rembg's u2net/u2netp ONNX weights into a .keras model"),
    "fetch-teacher": ("RMBG.fetch_teacher", "download rembg's U-2-Net (176 MB) as a distillation teacher (opt-in)"),
    "label": ("RMBG.label", "write a dataset whose masks are a teacher model's soft maps (distillation)"),
    "distill-set": ("RMBG.distill_set", "mix ground truth and teacher labels into one training folder"),
    "train": ("RMBG.train", "train or fine-tune a model with a preset"),
    "blend": ("RMBG.weight_blend", "blend a fine-tuned model's weights with its start's (WiSE-FT)"),
    "evaluate": ("RMBG.evaluate", "score models and peers on a prepared dataset"),
    "bench": ("RMBG.bench", "time our model against a peer, end to end"),
    "remove": ("RMBG.predict", "remove backgrounds from images, folders or globs"),
    "beam": ("RMBG.beam", "remove backgrounds on Apache Beam (local runner, Dataflow, Flink, Spark)"),
    "export": ("RMBG.export", "export a model to TFLite or ONNX"),
    "demo": ("RMBG.demo", "remove backgrounds from the bundled demo photos"),
    "video": ("RMBG.video", "remove the background of a video, keeping its sound (rgba: .webm or .mov)"),
    "stream": ("RMBG.stream", "raw rgb24 frames on stdin to raw cut-out frames on stdout (for ffmpeg pipes)"),
    "serve": ("RMBG.server", "serve background removal over HTTP: an API and a web page"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: python -m RMBG [--verbose] COMMAND [options]   (COMMAND --help for its options)", "",
             "--verbose keeps the libraries' own log lines and warnings (also RMBG_VERBOSE=1)", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {text}" for name, (_, text) in COMMANDS.items()]
    return "\n".join(lines)


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
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
