"""The notebooks' tables (pandas DataFrames) and printable summaries of checks, reports and presets.

Nothing here computes a result: each function reads what another module
made (a ``Preprocess.check`` report, an ``RMBG.evaluation.evaluate`` report folder, the
presets of ``RMBG.training.presets``, an ``RMBG.evaluation.bench`` run) and lays it out.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

if TYPE_CHECKING:
    import pandas as pd

#: Metrics shown by :func:`metric_table` unless asked otherwise (see ``RMBG.evaluation.metrics``).
TABLE_KEYS = ("mae", "max_f", "mean_f", "weighted_f", "s_measure", "max_e", "iou", "seconds_per_image")
#: Preset fields shown by :func:`preset_table`.
PRESET_COLUMNS = ("image_size", "crop_size", "batch", "lr", "epochs", "split", "steps_per_epoch", "loss",
                  "optimizer", "freeze_bn", "freeze", "blend")


# ---------------------------------------------------------------------------
# Data checks
# ---------------------------------------------------------------------------
def check_table(report) -> "pd.DataFrame":
    """One row per problem of a ``Preprocess.check`` report: severity, count and an example."""
    import pandas as pd

    from Preprocess.check import PROBLEMS

    examples: dict[str, Any] = {}
    for finding in report.findings:
        examples.setdefault(finding.problem, finding)
    rows = [
        {
            "problem": problem,
            "severity": PROBLEMS[problem],
            "count": count,
            "example": examples[problem].file,
            "detail": examples[problem].detail,
        }
        for problem, count in report.counts().items()
    ]
    return pd.DataFrame(rows, columns=["problem", "severity", "count", "example", "detail"])


def check_sources(sources: Sequence[tuple[str, str | os.PathLike]]) -> "pd.DataFrame":
    """The integrity check of each source folder, one table: a row per source and problem.

    A source without problems gets one row saying ``none``. Nothing is written.
    """
    import pandas as pd

    from Preprocess.check import check_dataset

    tables = []
    for kind, folder in sources:
        report = check_dataset(folder)
        table = check_table(report)
        if table.empty:
            table = pd.DataFrame([{"problem": "none", "severity": "", "count": 0, "example": "", "detail": ""}])
        table.insert(0, "pairs", len(report.pairs))
        table.insert(0, "source", f"{Path(folder).name} ({kind})")
        tables.append(table)
    return pd.concat(tables, ignore_index=True)


# ---------------------------------------------------------------------------
# Evaluation reports
# ---------------------------------------------------------------------------
def _load_report(report: Mapping | str | os.PathLike) -> Mapping:
    if isinstance(report, Mapping):
        return report
    import json

    path = Path(report)
    if path.is_dir():
        path = path / "report.json"
    return json.loads(path.read_text())


def metric_table(
    report: Mapping | str | os.PathLike,
    per_category: bool = False,
    keys: Sequence[str] = TABLE_KEYS,
) -> "pd.DataFrame":
    """An evaluation report (the dict ``RMBG.evaluation.evaluate.evaluate`` returns, its
    ``report.json`` or its folder) as a table: one row per model, or per model
    and category with ``per_category=True``; lower is better only for ``mae``
    and ``seconds_per_image``."""
    import pandas as pd

    report = _load_report(report)
    rows, index = [], []
    for name, result in report["models"].items():
        parts = result["per_category"].items() if per_category else [("all", result["summary"])]
        for category, values in parts:
            rows.append({key: values.get(key) for key in keys})
            index.append((name, category) if per_category else name)
    table = pd.DataFrame(rows, columns=list(keys), dtype=float)
    table.index = pd.MultiIndex.from_tuples(index, names=["model", "category"]) if per_category else pd.Index(
        index, name="model"
    )
    return table


def per_image_table(report_dir: str | os.PathLike, worst: int = 5, model: str | None = None) -> "pd.DataFrame":
    """The ``worst`` photos by MAE of ``model`` (default: the report's first model) from ``per_image.csv``."""
    import pandas as pd

    table = pd.read_csv(Path(report_dir) / "per_image.csv")
    model = model or str(table["model"].iloc[0])
    mine = table[table["model"] == model]
    columns = [c for c in ("image", "category", "model", "mae", "max_f", "s_measure", "iou") if c in mine]
    return mine.sort_values("mae", ascending=False).head(worst)[columns].reset_index(drop=True)


def benchmark(data_dir, model, peers: Sequence, n: int = 50, batch_size: int = 8) -> str:
    """``RMBG.evaluation.bench`` of ``model`` against the first of ``peers``, as printable text (a note when none)."""
    if not peers:
        return "no peer model found (../shared/peers/u2netp.onnx): benchmark skipped"
    from RMBG.evaluation.bench import bench, format_result

    return format_result(bench(data_dir, model, peers[0], n=n, batch_size=batch_size, progress=False))


# ---------------------------------------------------------------------------
# Presets
# ---------------------------------------------------------------------------
def preset_table(arch: str = "u2netp", columns: Sequence[str] = PRESET_COLUMNS) -> "pd.DataFrame":
    """The presets table of ``RMBG.training.presets`` for ``arch`` (its overrides applied), one row per preset."""
    import pandas as pd

    from RMBG.training.presets import get_preset, preset_names

    rows = {name: {c: getattr(get_preset(name, arch), c) for c in columns} for name in preset_names()}
    return pd.DataFrame.from_dict(rows, orient="index")[list(columns)]
