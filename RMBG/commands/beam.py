"""``rmbg beam``: background removal as an Apache Beam pipeline (local runner, Dataflow, Flink or Spark)."""

from __future__ import annotations

import argparse
import sys

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from RMBG.apps.beam.handler import (
    DEFAULT_MAX_BATCH_SIZE,
    RemovalModelHandler,
    RemoverSpec,
)
from RMBG.apps.beam.pipeline import (
    MANIFEST_NAME,
    Settings,
    _normal,
    build_pipeline,
    counters,
)
from RMBG.commands.common import MODEL_HELP, add_device_option, model_argument
from RMBG.models.names import is_name_spec, members, resolve_file
from RMBG.removal.compose import DEFAULT_BG_COLOR, MODES
from RMBG.removal.edges import REFINE_METHODS
from RMBG.removal.pipeline import check_output, check_refine, check_threshold
from RMBG.runtime.engines import DEFAULT_RUNTIME, KERAS_RUNTIMES


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m RMBG beam",
        description="Remove backgrounds on Apache Beam (local runner, Dataflow, Flink, Spark).",
        epilog="Every other option goes to Beam, e.g. --runner DataflowRunner --project P --region R "
        "--temp_location gs://... --setup_file ./setup.py, or --direct_num_workers 2 "
        "--direct_running_mode multi_processing.",
    )
    parser.add_argument("--input", action="append", required=True, metavar="PATTERN",
                        help="file, folder or glob (quote it; * in one folder, ** below); repeatable")
    parser.add_argument("--output", required=True, help="output folder (local, gs://, s3://); gets manifest.jsonl")
    parser.add_argument("--model", type=model_argument,
                        help=f"{MODEL_HELP} (a file may be local or gs://...; a name is found where the "
                        "workers run); default: the shipped model")
    parser.add_argument("--runtime", choices=KERAS_RUNTIMES, default=DEFAULT_RUNTIME, help="how .keras models run")
    add_device_option(parser)
    parser.add_argument("--mode", choices=MODES, default="rgba", help="what to write (default rgba)")
    parser.add_argument("--bg-color", default=DEFAULT_BG_COLOR, help='background of --mode color, e.g. "#00FF00"')
    parser.add_argument("--bg-image", help="background picture of --mode image")
    parser.add_argument("--refine", choices=REFINE_METHODS, default="none", help="edge refinement (default none)")
    parser.add_argument("--threshold", type=float, help="make the mask hard: alpha >= T becomes opaque")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_MAX_BATCH_SIZE,
                        help=f"most photos per model call (default {DEFAULT_MAX_BATCH_SIZE})")
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument("--skip-existing", action="store_true", help="leave outputs that exist alone")
    existing.add_argument("--overwrite", action="store_true", help="replace outputs that exist (never inputs)")
    return parser


def run(argv: list[str] | None = None) -> tuple[int, dict[str, int]]:
    """Run the pipeline of ``python -m RMBG beam ARGS``: its exit status and :func:`counters`
    (``{}`` when the options are refused)."""
    args, beam_args = build_parser().parse_known_args(argv)
    try:
        check_output(args.mode, args.bg_color, args.bg_image)
        check_refine(args.refine)
        threshold = check_threshold(args.threshold)
        handler = RemovalModelHandler(RemoverSpec(args.model, args.runtime, args.refine, threshold, args.device),
                                      max_batch_size=args.batch_size)
        if args.model is not None and is_name_spec(args.model):
            for name in members(args.model):  # says which command gets a missing file
                if is_name_spec(name):
                    resolve_file(name)
        for path in (None if args.model is None or is_name_spec(args.model) else args.model, args.bg_image):
            if path is not None and not FileSystems.exists(path):
                raise ValueError(f"{path}: file not found")
    except (ValueError, FileNotFoundError) as exc:
        print(f"beam: {exc}", file=sys.stderr)
        return 2, {}
    settings = Settings(_normal(args.output), args.mode, args.bg_color, args.bg_image,
                        args.skip_existing, args.overwrite)
    pipeline = beam.Pipeline(options=PipelineOptions(beam_args))
    build_pipeline(pipeline, args.input, settings, handler)
    result = pipeline.run()
    result.wait_until_finish()
    totals = counters(result)
    print(f"done {totals['ok']}, skipped {totals['skipped']}, failed {totals['failed']} "
          f"({totals['model_calls']} model calls); manifest: {FileSystems.join(settings.output, MANIFEST_NAME)}")
    return (1 if totals["failed"] else 0), totals


def main(argv: list[str] | None = None) -> int:
    return run(argv)[0]
