"""``rmbg train``: train or fine-tune a model with a preset (the checked config, then :func:`~RMBG.training.fit.fit`)."""

from __future__ import annotations

import argparse
import os
import sys

from RMBG.commands.common import add_device_option, say_device
from RMBG.constants import SEED
from RMBG.models.archs import arch_names
from RMBG.runtime.device import keras_device_line
from RMBG.training.config import (
    JIT_MODES,
    PIPELINES,
    PRECISIONS,
    STRATEGIES,
    TrainConfig,
    resolve_config,
)
from RMBG.training.fit import fit
from RMBG.training.presets import Preset, preset_fields
from RMBG.training.run_folder import (
    RunStateError,
)


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------
def _optional(kind):
    def parse(text: str):
        return None if str(text).lower() in {"none", "null", ""} else kind(text)

    parse.__name__ = kind.__name__
    return parse


def _pair(text: str) -> tuple[float, float]:
    values = [float(v) for v in str(text).split(",")]
    if len(values) == 1:
        values *= 2
    if len(values) != 2:
        raise argparse.ArgumentTypeError(f"expected 'low,high', got {text!r}")
    return (values[0], values[1])


def _names(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in str(text).split(",") if v.strip())


#: How each preset field is parsed on the command line.
FIELD_TYPES = {
    "crop_size": _optional(int),
    "clipnorm": _optional(float),
    "steps_per_epoch": _optional(int),
    "val_every_steps": _optional(int),
    "val_limit": _optional(int),
    "workers": _optional(int),
    "crop_scale": _pair,
    "crop_ratio": _pair,
    "freeze": _names,
}


def build_parser() -> argparse.ArgumentParser:
    from RMBG.training.presets import PRESETS

    parser = argparse.ArgumentParser(
        prog="python -m RMBG train",
        description="Train or fine-tune a model from a preset; any preset field can be overridden.",
    )
    parser.add_argument("--preset", default="sample", choices=list(PRESETS))
    parser.add_argument("--arch", default="u2netp", choices=arch_names(aliases=True),
                        help="architecture (RMBG.models.archs.REGISTRY; 'seed' is the old name of resnet50_unet)")
    parser.add_argument("--data", required=True, help="dataset folder (images/, masks/, optional index.csv)")
    parser.add_argument("--out", required=True, help="run folder (models, logs, backup)")
    parser.add_argument("--init", default=None, help="start from this .keras model (keeps its preprocessing)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out where it stopped")
    parser.add_argument("--overwrite", action="store_true", help="start again in an --out that holds a run")
    parser.add_argument("--time-limit", type=float, default=None, metavar="MINUTES",
                        help="stop at the first epoch end after MINUTES, keeping the backup: --resume continues "
                             "(for sessions or machines lent for a fixed time)")
    parser.add_argument("--mixed-precision", nargs="?", const="on", default="auto", choices=list(PRECISIONS),
                        help="auto (default): mixed on a GPU (bf16 where it has it, else fp16), float32 on a CPU; "
                             "on (the flag alone): also on a CPU (bf16); off; bf16; fp16 (GPU only)")
    parser.add_argument("--jit-compile", default="auto", choices=list(JIT_MODES),
                        help="XLA: auto compiles on a GPU and always under JAX")
    parser.add_argument("--pipeline", default="auto", choices=list(PIPELINES),
                        help="input pipeline: tf.data (TensorFlow backend, the default there) or py "
                             "(keras PyDataset, no TensorFlow: the default on JAX and torch)")
    parser.add_argument("--strategy", default="auto", choices=list(STRATEGIES))
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--no-check", dest="check_data", action="store_false", help="skip decoding every file first")
    parser.add_argument("--eval-batch", type=int, default=None)
    parser.add_argument("--verbose", type=int, default=None, choices=[0, 1, 2])
    add_device_option(parser)
    group = parser.add_argument_group("preset overrides")
    defaults = Preset()
    for name in preset_fields():
        flag = "--" + name.replace("_", "-")
        value = getattr(defaults, name)
        if isinstance(value, bool):
            group.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS)
        else:
            kind = FIELD_TYPES.get(name, type(value))
            group.add_argument(flag, dest=name, type=kind, default=argparse.SUPPRESS, metavar=name.upper())
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    # absent options are not in the namespace (SUPPRESS), so "--crop-size none" can set None
    overrides = {name: getattr(args, name) for name in preset_fields() if hasattr(args, name)}
    return resolve_config(
        args.preset,
        args.arch,
        args.data,
        args.out,
        init=args.init,
        resume=args.resume,
        overwrite=args.overwrite,
        time_limit=args.time_limit,
        mixed_precision=args.mixed_precision,
        jit_compile=args.jit_compile,
        pipeline=args.pipeline,
        strategy=args.strategy,
        seed=args.seed,
        check_data=args.check_data,
        eval_batch=args.eval_batch,
        verbose="auto" if args.verbose is None else args.verbose,
        **overrides,
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
        say_device("train", keras_device_line(args.device))
        result = fit(config)
    except (ValueError, FileNotFoundError, RunStateError) as exc:
        if os.environ.get("RMBG_DEBUG"):
            raise
        print(f"train: {exc}", file=sys.stderr)
        return 2
    print(f"model: {result.model_path}")
    if result.best_val_mae is not None:
        print(
            f"validation MAE: start {result.start_val_mae:.4f}, best {result.best_val_mae:.4f} "
            f"(step {result.best_step})"
            + (f"; blended with the start {result.blended_val_mae:.4f}" if result.blended_val_mae is not None else "")
        )
    if result.seconds_per_step is not None:
        print(f"seconds per step: {result.seconds_per_step:.3f}")
    return 0
