"""The run folder of a training run: what may be mixed, resumed or started again.

``prepare_run_folder`` decides, before a run writes anything, whether the
folder holds a run that this call would mix with (:class:`RunStateError`),
resumes one (dropping the log rows of the epochs to run again), or clears one
(``overwrite``). :data:`RUN_FILES` lists what a run writes.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

#: The validation photos a run's checks choose checkpoints on, one file name a line (``compare --leave-out``).
CHECKED_PHOTOS = "checked_photos.txt"
#: Files of a run that ``overwrite=True`` removes before starting again.
RUN_FILES = (
    "log.csv",
    "val_steps.csv",
    "best.json",
    "best.keras",
    "model.keras",
    "tuned.keras",
    "last.keras",
    "checkpoint.weights.h5",
    "summary.json",
    "data_report.txt",
    CHECKED_PHOTOS,
)
BACKUP_DIR = "backup"
WORKERS_DIR = "workers"


class RunStateError(RuntimeError):
    """The ``out`` folder holds a run that this call would mix with (say what to do)."""


def _csv_epochs(path: Path) -> list[int]:
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        return [int(row["epoch"]) for row in csv.DictReader(handle) if row.get("epoch", "").strip()]


def trim_log(path: Path, first_epoch: int) -> int:
    """Drop rows of ``log.csv`` at or after ``first_epoch`` (about to be run again); returns how many."""
    if not path.is_file():
        return 0
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        return 0
    header, body = rows[0], rows[1:]
    column = header.index("epoch") if "epoch" in header else 0
    keep = [row for row in body if row and int(row[column]) < first_epoch]
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows([header] + keep)
    return len(body) - len(keep)


def prepare_run_folder(work: Path, resume: bool, overwrite: bool) -> int:
    """Check ``work`` against ``resume``/``overwrite``; returns the epoch training starts at."""
    work.mkdir(parents=True, exist_ok=True)
    meta = work / BACKUP_DIR / "training_metadata.json"
    epochs_logged = _csv_epochs(work / "log.csv")
    if overwrite and not resume:
        for name in RUN_FILES:
            (work / name).unlink(missing_ok=True)
        shutil.rmtree(work / BACKUP_DIR, ignore_errors=True)
        return 0
    if resume:
        if meta.is_file():
            first = int(json.loads(meta.read_text())["epoch"])
            dropped = trim_log(work / "log.csv", first)
            if dropped:
                print(f"resume: dropped {dropped} log row(s) of epochs >= {first + 1} (run again)")
            return first
        if epochs_logged:
            raise RunStateError(
                f"{work}: nothing to resume (no {BACKUP_DIR}/ left: the run finished); use a new --out"
            )
        for name in ("log.csv", "val_steps.csv", "best.json"):
            (work / name).unlink(missing_ok=True)
        print(f"resume: no backup in {work}, starting from the beginning")
        return 0
    if meta.is_file() or epochs_logged:
        raise RunStateError(
            f"{work} already holds a run: pass --resume to continue it, --overwrite to start again, "
            "or choose another --out"
        )
    for name in ("log.csv", "val_steps.csv", "best.json"):
        (work / name).unlink(missing_ok=True)
    return 0

