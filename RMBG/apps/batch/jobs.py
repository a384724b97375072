"""Background removal of files: :func:`remove_background` and ``python -m RMBG remove`` over files, folders, globs.

``remove_background(image, model=None, mode="rgba", ...)`` takes a PIL
image, a numpy array or a path and returns a PIL image. The mask is predicted
at the model's size, upsampled to the photo's full resolution, optionally
edge-refined (:mod:`RMBG.removal.edges`) and thresholded, and turned into the output
mode (:mod:`RMBG.removal.compose`): the chain of :class:`RMBG.removal.pipeline.Remover`, which
this module runs over files.

The command line works over files, folders (recursively) and globs::

    python -m RMBG remove photos/ --out cutouts/ --mode side-by-side

Output names keep each input's path relative to the folder (or glob base) it
was found in; ``rgba`` and ``mask`` are written as PNG, the other modes in the
input's format, unless ``--format png|webp|jpg`` (:mod:`RMBG.removal.formats`).
Every output is written atomically and never over an input file; an existing
output is an error unless ``--skip-existing`` or ``--overwrite``. A bad file
is reported with its reason and the others are still done; files of a folder
that are not images we read (a ``.txt``, an animated GIF) are listed as
skipped with the reason; the exit status is 1 when any file failed.

Soft edges show the subject's estimated colours (:mod:`RMBG.removal.foreground`;
``--no-foreground-estimation`` composes the photo's own colours);
``--post-process`` cleans the mask of specks and holes
(:mod:`RMBG.removal.cleanup`); ``--box X0,Y0,X1,Y1`` picks the subject
(:mod:`RMBG.removal.box`), ``--largest`` keeps the mask's largest region,
``--invert`` keeps the background instead; ``--crop [--margin PX]`` cuts outputs to the
subject (:mod:`RMBG.removal.cropping`); ``--watch`` keeps processing files dropped
into the input folders until Ctrl-C (:mod:`RMBG.apps.batch.watch`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from RMBG.apps.batch.pipeline import Photo, photo_masks, read_photo, run_pipeline
from RMBG.images.inputs import expand_inputs, unsupported_inputs
from RMBG.images.io import (
    ImageReadError,
    save_image,
)
from RMBG.removal.compose import DEFAULT_BG_COLOR, load_background
from RMBG.removal.formats import (
    output_suffix,
    save_options,
)
from RMBG.removal.pipeline import (
    Remover,
    check_output,
    check_refine,
)
from RMBG.runtime.engines import DEFAULT_RUNTIME

#: Photos predicted together (the masks are then finished one by one).
DEFAULT_BATCH_SIZE = 1


# ---------------------------------------------------------------------------
# The library call
# ---------------------------------------------------------------------------
def remove_background(
    image,
    model=None,
    mode: str = "rgba",
    bg_color=DEFAULT_BG_COLOR,
    bg_image=None,
    refine: str = "none",
    threshold: float | None = None,
    runtime: str = DEFAULT_RUNTIME,
    post_process: bool = False,
    foreground_estimation: bool = True,
    crop_margin: int | None = None,
    box=None,
    largest: bool = False,
    invert: bool = False,
) -> Image.Image:
    """Remove the background of ``image`` (PIL image, numpy array or path); a PIL image.

    ``model`` is a model file, a :class:`~RMBG.runtime.engines.Segmenter`, or ``None``
    for the shipped default; loaded models are cached and reused. ``mode`` is
    one of :data:`RMBG.removal.compose.MODES`; ``bg_color`` is used by ``color``,
    ``bg_image`` (path, PIL image or array) by ``image``; ``refine`` is one of
    :data:`RMBG.removal.edges.REFINE_METHODS`; ``threshold`` in [0, 1] makes the
    mask hard; ``post_process`` cleans it of small islands and holes;
    ``foreground_estimation`` (on by default) draws the subject's estimated
    colours at soft edges; ``crop_margin`` (px) crops to the subject; ``box``
    (``(x0, y0, x1, y1)``, pixels or fractions) picks the subject; ``largest`` keeps
    the mask's largest region; ``invert`` keeps the background. One call of
    :class:`RMBG.removal.pipeline.Remover`.
    """
    _check_options(mode, refine, bg_color, bg_image)
    remover = Remover(model, runtime=runtime, refine=refine, threshold=threshold, post_process=post_process,
                      foreground_estimation=foreground_estimation, crop_margin=crop_margin, box=box,
                      largest=largest, invert=invert)
    return remover.remove(image, mode, bg_color=bg_color, bg_image=bg_image)


def _check_options(mode: str, refine: str, bg_color, bg_image) -> None:
    check_output(mode, bg_color, bg_image)
    check_refine(refine)


# ---------------------------------------------------------------------------
# Planning a batch: inputs -> outputs
# ---------------------------------------------------------------------------
@dataclass
class Job:
    """One input file and where its output goes."""

    source: Path
    target: Path


@dataclass
class Summary:
    """What a batch did, for the report at its end."""

    done: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)

    def report(self) -> str:
        lines = [f"done {len(self.done)}, skipped {len(self.skipped)}, failed {len(self.failed)}"]
        lines += [f"  skipped {path}: {why}" for path, why in self.skipped]
        lines += [f"  failed  {path}: {why}" for path, why in self.failed]
        return "\n".join(lines)


def plan_jobs(
    inputs: list[str], out_dir: str | os.PathLike, mode: str, skip_existing: bool = False, overwrite: bool = False,
    fmt: str | None = None,
) -> tuple[list[Job], Summary]:
    """The jobs to run, with a summary already holding what is skipped or refused.

    An output that would land on any input file is refused (also with
    ``overwrite``), as is a second input mapping to the same output. Outputs
    are written in ``fmt`` (:data:`RMBG.removal.formats.OUTPUT_FORMATS`) when
    given. Files of folders and globs that are not images we read are listed
    as skipped with the reason.
    """
    out_dir = Path(out_dir)
    found, missing = expand_inputs(inputs)
    summary = Summary(skipped=unsupported_inputs(inputs), failed=list(missing))
    sources = {path.resolve() for path, _ in found}
    taken: dict[Path, Path] = {}
    jobs: list[Job] = []
    for source, rel in found:
        target = out_dir / rel.with_suffix(output_suffix(source, mode, fmt))
        key = target.resolve()
        if key in sources:
            summary.failed.append((source, f"output {target} would overwrite an input file; choose another --out"))
        elif key in taken:
            summary.failed.append((source, f"output {target} is also the output of {taken[key]}; rename one of them"))
        elif target.exists() and skip_existing:
            taken[key] = source
            summary.skipped.append((source, f"{target} exists"))
        elif target.exists() and not overwrite:
            summary.failed.append((source, f"output {target} exists (pass --skip-existing or --overwrite)"))
        else:
            taken[key] = source
            jobs.append(Job(source, target))
    return jobs, summary


# ---------------------------------------------------------------------------
# Running a batch
# ---------------------------------------------------------------------------
def _save(picture: Image.Image, target: Path, overwrite: bool) -> None:
    save_image(picture, target, overwrite=overwrite, **save_options(target, picture.mode))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ImageReadError):
        return exc.reason
    if isinstance(exc, MemoryError):
        return "out of memory"
    return str(exc) or type(exc).__name__


def run_jobs(
    jobs: list[Job],
    remover: Remover,
    summary: Summary,
    mode: str = "rgba",
    bg_color=DEFAULT_BG_COLOR,
    bg_image=None,
    overwrite: bool = False,
    progress: bool = True,
) -> Summary:
    """Run ``jobs`` through ``remover`` in its batches; every failure is recorded in
    ``summary`` and the rest go on."""
    # Decoding and preprocessing the next photos, the model, and composing and encoding the
    # previous outputs overlap on three threads (RMBG.apps.batch.pipeline); the outputs are the bytes
    # of the same steps one photo at a time, in the jobs' order, each file failing on its own.
    background = load_background(bg_image) if mode == "image" else None
    segmenter = remover.segmenter

    def finish(job: Job, photo: Photo, mask) -> Path:
        _save(remover.picture(photo.image, mask, mode, bg_color, background, region=photo.region), job.target,
              overwrite)
        return job.target

    with tqdm(total=len(jobs), desc="remove", unit="img", disable=not progress) as bar:

        def report(job: Job, outcome) -> None:
            if isinstance(outcome, BaseException):
                summary.failed.append((job.source, _reason(outcome)))
            else:
                summary.done.append(outcome)
            bar.update(1)

        run_pipeline(jobs, lambda job: read_photo(segmenter, job.source, remover.region),
                     lambda photos: photo_masks(segmenter, photos), finish, report,
                     batch_size=remover.batch_size, threaded=len(jobs) > 1)
    return summary
