"""Seconds per photo and peak memory of each model name, each in its own process.

Usage::

    python scripts/bench_names.py --data Data/dataset/shared --split test \\
        --category cat --category object --category person --n 20 \\
        [--names default u2netp u2net isnet u2net+isnet default+isnet] [--out FILE.json]

Each name runs in a fresh ``python`` process, through
:class:`RMBG.removal.pipeline.Remover` as ``remove --model NAME`` runs it
(``default`` through its int8 LiteRT copy): the model is loaded and warmed up
on the first photo (untimed), then each of the ``--n`` photos (spread evenly
over the chosen part, :func:`RMBG.evaluation.evaluate.find_samples`) is timed
from the file to the RGBA cut-out. Printed per name: the median and mean
seconds a photo, the load time, and the process's peak resident memory
(``ru_maxrss``: the whole process, Python and the libraries included). The
machine's core count and load average are printed with them: times on a shared
machine are only comparable within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NAMES = ("default", "u2netp", "u2net", "isnet", "u2net+isnet", "default+isnet")


def child(name: str, photos: list[str]) -> dict:
    """Run in the child process: time ``name`` on ``photos`` (the first also warms up, untimed)."""
    import resource

    from RMBG.removal.pipeline import Remover

    start = time.perf_counter()
    remover = Remover(model=name)
    remover.remove(photos[0])
    load = time.perf_counter() - start
    seconds = []
    for photo in photos:
        start = time.perf_counter()
        remover.remove(photo)
        seconds.append(time.perf_counter() - start)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {"name": name, "photos": len(photos), "median_s": statistics.median(seconds),
            "mean_s": statistics.fmean(seconds), "load_and_first_s": load, "peak_rss_mib": peak_kib / 1024,
            "segmenter": remover.segmenter.name, "runtime": type(remover.segmenter).__name__}


def pick_photos(data: Path, split: str | None, categories: list[str], n: int) -> list[str]:
    """``n`` photos spread evenly over the samples ``evaluate`` would score."""
    from RMBG.evaluation.evaluate import find_samples

    samples, _ = find_samples(data, split=split, categories=categories or None)
    if not samples:
        raise SystemExit(f"error: no photos in {data}")
    step = max(1, len(samples) // n)
    return [str(s.image) for s in samples[::step][:n]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--split", default=None)
    parser.add_argument("--category", action="append", default=[])
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--names", nargs="+", default=list(NAMES))
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON here")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--photos", nargs="*", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.photos)))
        return 0

    photos = pick_photos(args.data, args.split, args.category, args.n)
    print(f"{len(photos)} photos; {os.cpu_count()} cores; load average at start {os.getloadavg()[0]:.1f}")
    results = []
    for name in args.names:
        run = subprocess.run([sys.executable, __file__, "--data", str(args.data), "--child", name,
                              "--photos", *photos], capture_output=True, text=True, cwd=ROOT)
        if run.returncode != 0:
            print(f"{name}: failed\n{run.stderr[-2000:]}", file=sys.stderr)
            continue
        result = json.loads(run.stdout.strip().splitlines()[-1])
        result["load_average_after"] = os.getloadavg()[0]
        results.append(result)
        print(f"{name:>14}: median {result['median_s']:.2f} s/photo (mean {result['mean_s']:.2f}), "
              f"load + first photo {result['load_and_first_s']:.1f} s, peak RSS {result['peak_rss_mib']:.0f} MiB "
              f"({result['runtime']}; load average {result['load_average_after']:.1f})", flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"photos": photos, "cores": os.cpu_count(), "results": results}, indent=2))
    return 0 if len(results) == len(args.names) else 1


if __name__ == "__main__":
    sys.exit(main())
