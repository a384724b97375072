"""Batch removal on Apache Beam: ``python -m RMBG beam``, on the local runner, Dataflow, Flink or Spark.

::

    python -m RMBG beam --input 'photos/**' --output cutouts/ [--mode rgba] [--model FILE]
        [--skip-existing | --overwrite] [Beam options: --runner, --direct_num_workers, ...]

The pipeline: match the ``--input`` patterns (Beam ``FileSystems``: local
paths, or ``gs://`` / ``s3://`` with Beam's extras installed; a folder means
everything below it; ``*`` stays in one folder, ``**`` goes down) -> plan each
input's output (named as ``remove`` names it: the path relative to the
pattern's folder, :func:`RMBG.removal.formats.output_suffix`) -> read and decode ->
the model's input (:meth:`RMBG.runtime.engines.Segmenter.preprocess`) -> Beam's
``RunInference`` with :class:`RMBG.apps.beam.handler.RemovalModelHandler`
(batched model calls, the model loaded once per worker) -> the output picture
(:meth:`RMBG.removal.pipeline.Remover.picture`: full-size mask, refinement, threshold,
composition, the same code as ``remove``) -> written atomically -> one
``manifest.jsonl`` line per input in ``--output``: ``input``, ``status``
(``ok``, ``skipped``, ``failed``), ``output``, ``error``, ``seconds`` (the
work spent on that input, its share of its batch's model call included).

A bad file becomes a ``failed`` line with the reason ``remove`` gives
(:func:`RMBG.apps.batch.jobs._reason`), never a failed bundle; the exit status is 1
when any input failed. Only this module and :mod:`RMBG.apps.beam.handler` import
Apache Beam (the ``beam`` extra).
"""

from __future__ import annotations

import glob
import json
import os
import posixpath
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Optional, Tuple

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.ml.inference.base import RunInference

from RMBG.apps.batch.jobs import _reason, _save
from RMBG.apps.beam.handler import (
    METRICS_NAMESPACE,
    Photo,
    RemovalModelHandler,
    RemoverSpec,
    is_local,
    local_copy,
)
from RMBG.constants import IMAGE_EXTENSIONS
from RMBG.images.io import read_image
from RMBG.removal.compose import DEFAULT_BG_COLOR, load_background
from RMBG.removal.formats import output_suffix

#: The manifest's name in ``--output``.
MANIFEST_NAME = "manifest.jsonl"

#: The statuses of manifest lines.
STATUSES = ("ok", "skipped", "failed")


@dataclass(frozen=True)
class Settings:
    """What the pipeline writes and where (picklable: travels to the workers)."""

    output: str
    mode: str = "rgba"
    bg_color: str = DEFAULT_BG_COLOR
    bg_image: Optional[str] = None
    skip_existing: bool = False
    overwrite: bool = False


def record(source: str, status: str, output: Optional[str] = None, error: Optional[str] = None,
           seconds: float = 0.0) -> dict:
    """One manifest line."""
    return {"input": source, "status": status, "output": output, "error": error, "seconds": round(seconds, 4)}


def _failed(source: str, error: str, seconds: float = 0.0):
    return beam.pvalue.TaggedOutput("records", record(source, "failed", error=error, seconds=seconds))


# ---------------------------------------------------------------------------
# Inputs -> outputs
# ---------------------------------------------------------------------------
def _normal(path: str) -> str:
    return os.path.normpath(os.path.abspath(path)) if is_local(path) else path


def pattern_base(pattern: str) -> str:
    """The folder of ``pattern`` before its first wildcard (outputs keep paths relative to it)."""
    parts = pattern.split("/")
    for count, part in enumerate(parts):
        if glob.has_magic(part):
            return "/".join(parts[:count])
    return "/".join(parts[:-1])


def expand_pattern(pattern: str) -> str:
    """``pattern`` as Beam matches it: local paths absolute, a folder as everything below it."""
    if is_local(pattern):
        folder = os.path.isdir(pattern)
        pattern = _normal(pattern)
        return os.path.join(pattern, "**") if folder else pattern
    return pattern + "**" if pattern.endswith("/") else pattern


def target_of(source: str, base: str, output: str, mode: str) -> str:
    """Where the output of ``source`` (found under ``base``) goes in ``output``."""
    relative = source[len(base):].lstrip("/") if base and source.startswith(base) else posixpath.basename(source)
    stem, _ = posixpath.splitext(relative)
    return FileSystems.join(output, *f"{stem}{output_suffix(PurePosixPath(relative), mode)}".split("/"))


class _Step(beam.DoFn):
    """A step that needs the :class:`Settings`."""

    def __init__(self, settings: Settings):
        self.settings = settings


@beam.typehints.with_output_types(Tuple[str, Any])
class MatchInputs(_Step):
    """``(index, pattern)`` -> ``(source, (index, target))`` per file it matches, or a failed record."""

    def process(self, element):
        index, pattern = element
        expanded = expand_pattern(pattern)
        wild = glob.has_magic(expanded)
        try:
            files = sorted(meta.path for meta in FileSystems.match([expanded])[0].metadata_list)
        except Exception as exc:  # noqa: BLE001 - a pattern that cannot be listed is a failed line
            yield _failed(pattern, f"cannot list the pattern ({_reason(exc)})")
            return
        if wild:
            files = [f for f in files if posixpath.splitext(f)[1].lower() in IMAGE_EXTENSIONS]
        if not files:
            yield _failed(pattern, "pattern matched no images" if wild else "file not found")
        base = pattern_base(expanded)
        for source in files:
            source = _normal(source)
            yield source, (index, target_of(source, base, self.settings.output, self.settings.mode))


def first_match(element):
    """A file matched by several patterns is taken once, as its first pattern names it."""
    source, matches = element
    _, target = min(matches)
    yield source, ("in", source)
    yield target, ("out", source)


@beam.typehints.with_output_types(Tuple[str, str])
class PlanOutputs(_Step):
    """Per output path: the one job writing it, or why not (``remove``'s rules and reasons)."""

    def process(self, element):
        target, roles = element
        writers = sorted({source for role, source in roles if role == "out"})
        if not writers:
            return
        if any(role == "in" for role, _ in roles):
            for source in writers:
                yield _failed(source, f"output {target} would overwrite an input file; choose another --output")
            return
        first = writers[0]
        for source in writers[1:]:
            yield _failed(source, f"output {target} is also the output of {first}; rename one of them")
        if FileSystems.exists(target) and not self.settings.overwrite:
            if self.settings.skip_existing:
                yield beam.pvalue.TaggedOutput("records", record(first, "skipped", output=target))
            else:
                yield _failed(first, f"output {target} exists (pass --skip-existing or --overwrite)")
            return
        yield first, target


# ---------------------------------------------------------------------------
# Files -> model inputs, and masks -> written outputs
# ---------------------------------------------------------------------------
def read_photo(source: str):
    """The decoded picture at ``source`` (:func:`RMBG.images.io.read_image`; a remote file is read
    into memory and decoded there with the same checks)."""
    if is_local(source):
        return read_image(source)
    with FileSystems.open(source) as remote:
        return read_image(source, data=remote.read())


class ReadPhotos(beam.DoFn):
    """``(source, target)`` -> ``(Photo, model input)``, or a failed record."""

    def __init__(self, spec: RemoverSpec):
        self.spec = spec

    def setup(self):
        self.segmenter = self.spec.build().segmenter

    def process(self, element):
        source, target = element
        started = time.perf_counter()
        try:
            image = read_photo(source)
            tensor = self.segmenter.preprocess(image)
        except Exception as exc:  # noqa: BLE001 - one bad file must not sink the bundle
            yield _failed(source, _reason(exc), time.perf_counter() - started)
            return
        yield Photo(source, target, image, time.perf_counter() - started), tensor


def write_picture(picture, target: str, overwrite: bool) -> None:
    """Write ``picture`` to ``target`` atomically: :func:`RMBG.apps.batch.jobs._save` for local
    paths; elsewhere saved locally, copied to a hidden temporary name beside the
    target, then renamed onto it."""
    if is_local(target):
        _save(picture, Path(target), overwrite)
        return
    if FileSystems.exists(target) and not overwrite:
        raise FileExistsError(f"{target}: already exists (refusing to overwrite)")
    folder, name = posixpath.split(target)
    with tempfile.TemporaryDirectory() as scratch:
        local = Path(scratch) / name
        _save(picture, local, True)
        temporary = posixpath.join(folder, f".{name}.{uuid.uuid4().hex}.tmp")
        with FileSystems.create(temporary) as remote:
            remote.write(local.read_bytes())
    FileSystems.rename([temporary], [target])


class WritePictures(beam.DoFn):
    """``(Photo, small mask or exception)`` -> the output written, and its record."""

    def __init__(self, spec: RemoverSpec, settings: Settings):
        self.spec = spec
        self.settings = settings

    def setup(self):
        self.remover = self.spec.build()
        bg_image = local_copy(self.settings.bg_image)
        self.background = load_background(bg_image) if self.settings.mode == "image" else None

    def process(self, element):
        photo, mask = element
        started = time.perf_counter()
        try:
            if isinstance(mask, BaseException):
                raise mask
            picture = self.remover.picture(photo.image, mask, self.settings.mode, self.settings.bg_color,
                                           self.background)
            write_picture(picture, photo.target, self.settings.overwrite)
        except Exception as exc:  # noqa: BLE001 - one bad file must not sink the bundle
            yield record(photo.source, "failed", error=_reason(exc),
                         seconds=photo.seconds + time.perf_counter() - started)
            return
        yield record(photo.source, "ok", photo.target, seconds=photo.seconds + time.perf_counter() - started)


def count_status(line: dict) -> dict:
    Metrics.counter(METRICS_NAMESPACE, line["status"]).inc()
    return line


# ---------------------------------------------------------------------------
# The pipeline
# ---------------------------------------------------------------------------
def build_pipeline(pipeline, inputs: list[str], settings: Settings, handler: RemovalModelHandler):
    """Add the removal steps over ``inputs`` (patterns) to ``pipeline``; the manifest's PCollection."""
    matched = (
        pipeline
        | "Patterns" >> beam.Create(list(enumerate(inputs)))
        | "Match" >> beam.ParDo(MatchInputs(settings)).with_outputs("records", main="files")
    )
    planned = (
        matched.files
        | "BySource" >> beam.GroupByKey()
        | "FirstMatch" >> beam.FlatMap(first_match)
        | "ByOutput" >> beam.GroupByKey()
        | "Plan" >> beam.ParDo(PlanOutputs(settings)).with_outputs("records", main="jobs")
    )
    read = planned.jobs | "Read" >> beam.ParDo(ReadPhotos(handler.spec)).with_outputs("records", main="photos")
    written = (
        read.photos
        | "RunInference" >> RunInference(handler)
        | "Write" >> beam.ParDo(WritePictures(handler.spec, settings))
    )
    lines = (
        (matched.records, planned.records, read.records, written)
        | "Records" >> beam.Flatten()
        | "Count" >> beam.Map(count_status)
    )
    _ = (
        lines
        | "Json" >> beam.Map(json.dumps)
        | "Manifest" >> beam.io.WriteToText(FileSystems.join(settings.output, "manifest"), file_name_suffix=".jsonl",
                                            num_shards=1, shard_name_template="")
    )
    return lines


def counters(result) -> dict[str, int]:
    """The pipeline's counters: ``model_calls`` and one per status."""
    found = result.metrics().query(MetricsFilter().with_namespace(METRICS_NAMESPACE))["counters"]
    totals = {name: 0 for name in ("model_calls", *STATUSES)}
    for counter in found:
        totals[counter.key.metric.name] = totals.get(counter.key.metric.name, 0) + int(counter.committed or 0)
    return totals
