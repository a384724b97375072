"""Whole processes, side by side: ``python -m RMBG remove DIR --out OUT`` against ``rembg p -m u2netp DIR OUT``.

    python scripts/bench_vs_rembg.py [--data ../shared/data/ecssd/images] [--n 50] [--rounds 3]
                                     [--ours-args "--batch-size 2"] [--no-large] [--no-u2net]

Installs nothing. rembg comes from the optional extra (``pip install -e ".[bench]"``);
without it the script says so and stops. rembg is pointed at the peer model in
``../shared/peers`` through ``U2NET_HOME`` (no copy, no download: rembg finds
``$U2NET_HOME/u2netp.onnx``, and the script checks its md5 first, because
rembg would try to download a file whose md5 differs).

The ``rembg`` command imports its HTTP server (gradio) at start; where that
import fails (the bench extra leaves gradio out, see pyproject.toml) the
script runs rembg's own library calls in the loop of ``rembg p`` (read each
file's bytes, ``rembg.remove(data, session=new_session("u2netp"))``, write a
PNG), which is what the command does minus the gradio import, so it is the
peer's best case. The label in the report says which ran.

Measured, per run, as a fresh process: wall time, peak RSS (psutil, the
process and its children, every 10 ms), the time to its first output file
(start-up: imports, model load, first photo) and the steady time per photo
after it ((last output - first output) / (n - 1)). The two tools alternate
which one goes first in each round; the report gives the median of the
rounds and the ratio ours/rembg. Then, once each: a single small photo in a
fresh process (time to the first mask), one 4000x3000 photo (wall, peak RSS;
made by upscaling a shared photo), and rembg's default ``u2net`` when
``~/.u2net/u2net.onnx`` exists. The load average before and after is printed:
other jobs on the machine slow both tools, unevenly.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from RMBG.constants import PROJECT_ROOT, shared_data_dir, shared_dir  # noqa: E402

#: md5 of the model files rembg 2.0.69 checks before using them (else it downloads).
REMBG_MD5 = {"u2netp": "8e83ca70e441ab06c318d82300c84806", "u2net": "60024c5c889badc19c04ad937298a77b"}
POLL_S = 0.01
LARGE_SIZE = (4000, 3000)

#: rembg's `p` loop over a folder, through its library (used when the `rembg` command cannot start).
REMBG_LOOP = """
import pathlib, sys
from rembg import new_session, remove
src, dst, model = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3]
session = new_session(model)
dst.mkdir(parents=True, exist_ok=True)
for path in sorted(src.glob("**/*")):
    if path.is_file():
        (dst / path.name).with_suffix(".png").write_bytes(remove(path.read_bytes(), session=session))
"""


@dataclass
class Run:
    """One fresh process over a folder."""

    wall: float
    peak_rss: int
    first_output: float | None
    last_output: float | None
    outputs: int
    status: int

    def per_photo(self) -> float | None:
        if self.first_output is None or self.outputs < 2:
            return None
        return (self.last_output - self.first_output) / (self.outputs - 1)


def _outputs(folder: Path) -> int:
    if not folder.is_dir():
        return 0
    return sum(1 for p in folder.iterdir() if p.suffix == ".png" and not p.name.startswith("."))


def run_process(command: list[str], out: Path, env: dict | None = None) -> Run:
    """Run ``command`` to its end, polling its memory and the PNG files appearing in ``out``."""
    import psutil

    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    watched = psutil.Process(process.pid)
    peak, first, last, seen = 0, None, None, 0
    while process.poll() is None:
        try:
            tree = [watched, *watched.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree))
        except psutil.Error:
            pass
        count = _outputs(out)
        if count > seen:
            now = time.perf_counter() - start
            first = now if first is None else first
            last, seen = now, count
        time.sleep(POLL_S)
    wall = time.perf_counter() - start
    stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
    count = _outputs(out)
    if count > seen:
        first = wall if first is None else first
        last = wall
    if process.returncode != 0:
        print(f"  {shlex.join(command[:4])} ... exited {process.returncode}: {stderr[-800:]}", file=sys.stderr)
    return Run(wall, peak, first, last, count, process.returncode)


def rembg_command(model: str, src: Path, out: Path) -> tuple[list[str], str]:
    """The command that runs rembg on a folder, and its label."""
    exe = shutil.which("rembg")
    if exe and subprocess.run([exe, "--help"], capture_output=True, timeout=300).returncode == 0:
        return [exe, "p", "-m", model, str(src), str(out)], f"rembg p -m {model}"
    return [sys.executable, "-c", REMBG_LOOP, str(src), str(out), model], f"rembg {model} (library, rembg p's loop)"


def md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def rembg_env(home: Path, model: str) -> dict:
    path = home / f"{model}.onnx"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing (rembg would download it; this bench never does)")
    if md5(path) != REMBG_MD5[model]:
        raise ValueError(f"{path}: md5 differs from the one rembg checks, so rembg would download it")
    return {**os.environ, "U2NET_HOME": str(home)}


def load() -> str:
    return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg()) + f" on {os.cpu_count()} cores"


def make_folders(data: Path, n: int, work: Path) -> tuple[Path, Path, Path]:
    """Copies of the first ``n`` photos, of one small photo, and one 4000x3000 photo."""
    import cv2

    photos = sorted(p for p in data.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})[:n]
    if len(photos) < n:
        raise ValueError(f"{data}: {len(photos)} photos, {n} wanted")
    folder, small, large = work / "photos", work / "small", work / "large"
    for target in (folder, small, large):
        target.mkdir()
    for photo in photos:
        shutil.copy(photo, folder / photo.name)
    shutil.copy(photos[0], small / photos[0].name)
    image = cv2.imread(str(photos[1]))
    cv2.imwrite(str(large / "large.jpg"), cv2.resize(image, LARGE_SIZE, interpolation=cv2.INTER_CUBIC),
                [cv2.IMWRITE_JPEG_QUALITY, 90])
    return folder, small, large


def fmt(run: Run) -> str:
    per = run.per_photo()
    first = f"{run.first_output:.2f}" if run.first_output is not None else "-"
    per_text = f"{per * 1000:.0f}" if per is not None else "-"
    return (f"wall {run.wall:6.2f} s  peak RSS {run.peak_rss / 2**20:5.0f} MiB  first output {first:>5} s  "
            f"then {per_text:>4} ms/photo  ({run.outputs} files, exit {run.status})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = shared_data_dir()
    parser.add_argument("--data", type=Path, default=default / "ecssd" / "images" if default else None)
    parser.add_argument("--n", type=int, default=50, help="photos in the folder (default 50)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument("--ours-args", default="", help="extra options for `python -m RMBG remove`")
    parser.add_argument("--no-large", action="store_true", help="skip the 4000x3000 photo")
    parser.add_argument("--no-u2net", action="store_true", help="skip rembg's default u2net")
    args = parser.parse_args(argv)
    try:
        import rembg  # noqa: F401
    except ImportError:
        print('rembg is not installed: pip install -e ".[bench]" (rembg pinned to a version that keeps '
              "this project's pins; see pyproject.toml)", file=sys.stderr)
        return 2
    peers = shared_dir() / "peers" if shared_dir() else None
    if args.data is None or peers is None:
        print("needs ../shared/data and ../shared/peers (or --data)", file=sys.stderr)
        return 2
    env = rembg_env(peers, "u2netp")
    print(load())
    with tempfile.TemporaryDirectory(prefix="bench-vs-rembg-") as tmp:
        work = Path(tmp)
        folder, small, large = make_folders(args.data, args.n, work)
        ours = [sys.executable, "-m", "RMBG", "remove", "--quiet", *shlex.split(args.ours_args)]
        theirs, label = rembg_command("u2netp", folder, work / "out-rembg")
        tools = {"ours": (ours + [str(folder), "--out", str(work / "out-ours")], work / "out-ours", None),
                 "rembg": (theirs, work / "out-rembg", env)}
        print(f"{args.n} photos of {args.data}; ours: {shlex.join(['python', *tools['ours'][0][1:4]])} ... ; "
              f"peer: {label}; {args.rounds} rounds, alternating")
        runs: dict[str, list[Run]] = {name: [] for name in tools}
        for i in range(args.rounds):
            for name in (list(tools) if i % 2 == 0 else list(tools)[::-1]):
                command, out, extra_env = tools[name]
                runs[name].append(run_process(command, out, extra_env))
                print(f"  round {i + 1} {name:<5} {fmt(runs[name][-1])}", flush=True)
        wall = {name: statistics.median(r.wall for r in rs) for name, rs in runs.items()}
        per = {name: statistics.median(r.per_photo() or float("nan") for r in rs) for name, rs in runs.items()}
        first = {name: statistics.median(r.first_output or float("nan") for r in rs) for name, rs in runs.items()}
        peak = {name: max(r.peak_rss for r in rs) / 2**20 for name, rs in runs.items()}
        print(f"median wall: ours {wall['ours']:.2f} s, rembg {wall['rembg']:.2f} s: "
              f"ratio ours/rembg {wall['ours'] / wall['rembg']:.3f} (target <= 0.333)")
        print("per-round ratios: " + ", ".join(f"{a.wall / b.wall:.3f}" for a, b in zip(runs["ours"], runs["rembg"])))
        print(f"peak RSS: ours {peak['ours']:.0f} MiB, rembg {peak['rembg']:.0f} MiB; first output: ours "
              f"{first['ours']:.2f} s, rembg {first['rembg']:.2f} s; steady per photo: ours "
              f"{per['ours'] * 1000:.0f} ms, rembg {per['rembg'] * 1000:.0f} ms")
        one = run_process(ours + [str(small), "--out", str(work / "one-ours")], work / "one-ours")
        print(f"one small photo, fresh process: ours {fmt(one)}")
        one_peer = run_process(rembg_command("u2netp", small, work / "one-rembg")[0], work / "one-rembg", env)
        print(f"one small photo, fresh process: rembg {fmt(one_peer)}")
        if not args.no_large:
            big = run_process(ours + [str(large), "--out", str(work / "big-ours")], work / "big-ours")
            print(f"one {LARGE_SIZE[0]}x{LARGE_SIZE[1]} photo, fresh process: ours {fmt(big)} (targets: wall <= 2.5 s, "
                  f"peak < 1024 MiB)")
            big_peer = run_process(rembg_command("u2netp", large, work / "big-rembg")[0], work / "big-rembg", env)
            print(f"one {LARGE_SIZE[0]}x{LARGE_SIZE[1]} photo, fresh process: rembg {fmt(big_peer)}")
        home = Path.home() / ".u2net"
        if not args.no_u2net and (home / "u2net.onnx").is_file():
            try:
                u2net_env = rembg_env(home, "u2net")
                command, u2net_label = rembg_command("u2net", folder, work / "out-u2net")
                record = run_process(command, work / "out-u2net", u2net_env)
                print(f"for the record, {u2net_label} (~/.u2net/u2net.onnx), once: {fmt(record)}; "
                      f"ours/that {wall['ours'] / record.wall:.3f}")
            except ValueError as exc:
                print(f"u2net skipped: {exc}")
    print(load())
    return 0


if __name__ == "__main__":
    sys.exit(main())
