"""Issue 37's mixed load on ``python -m RMBG serve``: no 5xx, every bad upload a JSON 4xx, no RSS growth.

Starts the server (its defaults unless ``--server-arg`` says otherwise) on a
free loopback port, sends every kind of request once to warm it, then has
``--clients`` threads send ``--requests`` requests in all, in a seeded
shuffled order:

* good photos (``--per-set`` each from the shared people, ECSSD and cats
  sets, at most ``--side`` px) in every output mode and format (jpg for the
  flat modes only), with refine guided and matting, without foreground
  estimation and with the options as query parameters: 200, the right
  content type, the right size;
* a 4000x3000 photo (a shared photo upscaled in memory), ``--big`` times: 200;
* odd but valid uploads (CMYK JPEG, 16-bit PNG, RGBA PNG, EXIF-rotated JPEG):
  200 at the photo's upright size;
* bad uploads (corrupt, truncated, empty, a text file, a PNG declaring
  30000x30000, ``model=../../etc/passwd``, the served model's absolute path as
  ``model``, no ``file`` field, the photo under another field name, ``file``
  as a text field, a JSON body): a JSON 4xx of the expected status.

Meanwhile a thread polls ``/health`` (it must always answer 200) and the
server's RSS is sampled after every answer (psutil on its pid). The only
5xx allowed is 503 with ``Retry-After`` (a full queue); the median RSS of the
second half of the requests is compared with that of the first half. Prints
a table by kind and the verdicts; exits 1 when one fails. Only 127.0.0.1.

Usage::

    python scripts/bench_mixed_load.py [--requests 1200] [--clients 16] [--big 12] [--side 640]
                                       [--time-limit 1500] [--server-arg=--workers=4 ...]
"""

from __future__ import annotations

import argparse
import io
import random
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import numpy as np  # noqa: E402
import psutil  # noqa: E402
from PIL import Image  # noqa: E402
from shared_sets import BAD_FILES, jpeg_bytes, odd_uploads, png_bomb  # noqa: E402

from RMBG.apps.server.client import (  # noqa: E402
    Reply,
    free_port,
    multipart,
    post_photo,
    request,
    start_server,
    stop_server,
    wait_healthy,
)
from RMBG.constants import shared_data_dir  # noqa: E402
from RMBG.removal.compose import MODES, SEPARATOR_WIDTH  # noqa: E402
from RMBG.removal.formats import OUTPUT_FORMATS, check_format  # noqa: E402
from RMBG.runtime.engines import default_model_path  # noqa: E402

SETS = ("people", "ecssd", "cats")
BIG_SIZE = (4000, 3000)
#: RSS growth between the medians of the two halves that still counts as none (allocator noise).
RSS_GROWTH_LIMIT = 0.10


@dataclass
class Case:
    """One kind of request: how to send it and what must come back."""

    kind: str
    group: str  # good, big, odd, bad
    send: object  # send(url) -> Reply
    status: int
    size: tuple[int, int] | None = None  # (width, height) of the picture answered
    content_type: str | None = None
    results: list = field(default_factory=list)  # (status, seconds, problem or "")

    def judge(self, reply: Reply) -> str:
        """What is wrong with ``reply`` ("" when nothing)."""
        if reply.status == 503 and reply.headers.get("retry-after", "").isdigit():
            return ""  # a full queue: allowed, counted apart
        if reply.status != self.status:
            return f"status {reply.status}, expected {self.status}: {reply.body[:160]!r}"
        if self.status != 200:
            kind = reply.headers.get("content-type", "")
            if kind != "application/json" or set(reply.json()) != {"error", "detail"}:
                return f"not a JSON error ({kind}): {reply.body[:160]!r}"
            return ""
        if reply.headers.get("content-type") != self.content_type:
            return f"content type {reply.headers.get('content-type')}, expected {self.content_type}"
        with Image.open(io.BytesIO(reply.body)) as picture:
            return "" if picture.size == self.size else f"size {picture.size}, expected {self.size}"


def photo(path: Path, side: int | None) -> Image.Image:
    with Image.open(path) as img:
        picture = img.convert("RGB")
    if side:
        picture.thumbnail((side, side))
    return picture


def cases(data: Path, per_set: int, side: int, scratch: Path) -> list[Case]:
    """Every kind of request of the load."""
    photos = [photo(p, side) for s in SETS for p in sorted((data / s / "images").glob("*.jpg"))[:per_set]]
    backdrop = jpeg_bytes(photo(sorted((data / "cats" / "images").glob("*.jpg"))[-1], side))
    found = []

    def post(data_, **kwargs):
        return lambda url: post_photo(url, data_, timeout=300, **kwargs)

    combos = [({"mode": m, "format": f}, m) for m in MODES for f in OUTPUT_FORMATS if ok_format(f, m)]
    combos += [({"mode": "mask", "refine": "guided"}, "mask"), ({"mode": "rgba", "refine": "matting"}, "rgba"),
               ({"mode": "rgba", "foreground_estimation": "false"}, "rgba")]
    for i, (options, mode) in enumerate(combos):
        picture = photos[i % len(photos)]
        fmt = options.get("format", "png")
        files = {"background": backdrop} if mode == "image" else None
        width = 2 * picture.width + SEPARATOR_WIDTH if mode == "side-by-side" else picture.width
        found.append(Case(" ".join(options.values()), "good", post(jpeg_bytes(picture), fields=options, files=files),
                          200, (width, picture.height), OUTPUT_FORMATS[fmt].content_type))
    picture = photos[-1]  # options as query parameters
    found.append(Case("color webp (query)", "good", post(jpeg_bytes(picture), query={"mode": "color",
                      "bg_color": "#00FF00", "format": "webp"}), 200, picture.size, "image/webp"))
    big = photo(sorted((data / "people" / "images").glob("*.jpg"))[0], None).resize(BIG_SIZE, Image.BICUBIC)
    found.append(Case("4000x3000 rgba png", "big", post(jpeg_bytes(big, quality=90)), 200, BIG_SIZE, "image/png"))
    for kind, data_ in odd_uploads(photos[0]).items():
        found.append(Case(kind, "odd", post(data_), 200, photos[0].size, "image/png"))
    for kind, (name, make, _) in BAD_FILES.items():
        make(scratch / name, photos[0])
        found.append(Case(kind, "bad", post((scratch / name).read_bytes()), 422))
    good = jpeg_bytes(photos[0])
    bad = [("PNG declaring 30000x30000", post(png_bomb()), 413),
           ("model=../../etc/passwd", post(good, fields={"model": "../../etc/passwd"}), 422),
           ("model=absolute path", post(good, fields={"model": str(default_model_path().resolve())}), 422),
           ("no file field", form({"mode": "rgba"}, {}), 400),
           ("photo under 'image'", form({}, {"image": ("photo.jpg", good)}), 400),
           ("file as a text field", form({"file": "photo.jpg"}, {}), 400),
           ("JSON body", lambda url: request(url, "POST", "/api/remove", b'{"file": "photo.jpg"}',
                                             {"Content-Type": "application/json"}, timeout=300), 400)]
    found += [Case(kind, "bad", send, status) for kind, send, status in bad]
    return found


def ok_format(fmt: str, mode: str) -> bool:
    try:
        check_format(fmt, mode)
        return True
    except ValueError:
        return False


def form(fields: dict, files: dict):
    body, content_type = multipart(fields, files)
    return lambda url: request(url, "POST", "/api/remove", body, {"Content-Type": content_type}, timeout=300)


def schedule(kinds: list[Case], requests: int, big: int, seed: int) -> list[Case]:
    """``requests`` cases: ``big`` of the 4000x3000 photo, the others in turn, shuffled with ``seed``."""
    others = [c for c in kinds if c.group != "big"]
    order = [c for c in kinds if c.group == "big"] * big
    order += [others[i % len(others)] for i in range(requests - len(order))]
    random.Random(seed).shuffle(order)
    return order


class HealthWatch(threading.Thread):
    """Polls ``/health`` every ``every_s`` until stopped: status codes and the largest counts seen."""

    def __init__(self, url: str, every_s: float = 0.5):
        super().__init__(daemon=True)
        self.url, self.every_s, self.stop = url, every_s, threading.Event()
        self.codes: Counter = Counter()
        self.top: dict[str, int] = {}

    def run(self):
        while not self.stop.wait(self.every_s):
            try:
                reply = request(self.url, "GET", "/health", timeout=30)
            except OSError as exc:
                self.codes[type(exc).__name__] += 1
                continue
            self.codes[reply.status] += 1
            if reply.status == 200:
                for key in ("reading", "queued", "running", "connections"):
                    self.top[key] = max(self.top.get(key, 0), reply.json().get(key, 0))


def run_load(url: str, order: list[Case], clients: int, pid: int, time_limit: float):
    """Sends ``order`` from ``clients`` threads; ``[(answers so far, rss)]`` sampled after each answer."""
    server, lock, rss, queue = psutil.Process(pid), threading.Lock(), [], iter(enumerate(order))
    deadline = time.monotonic() + time_limit

    def client():
        while time.monotonic() < deadline:
            with lock:
                item = next(queue, None)
            if item is None:
                return
            case = item[1]
            start = time.perf_counter()
            try:
                reply = case.send(url)
                seconds, problem = time.perf_counter() - start, case.judge(reply)
                status = reply.status
            except OSError as exc:  # a dropped connection counts as a failure, not a crash of the bench
                seconds, status, problem = time.perf_counter() - start, type(exc).__name__, str(exc)
            with lock:
                case.results.append((status, seconds, problem))
                rss.append(server.memory_info().rss)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return rss


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1200)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--big", type=int, default=12, help="requests with the 4000x3000 photo among them")
    parser.add_argument("--per-set", type=int, default=4, help="photos from each shared set")
    parser.add_argument("--side", type=int, default=640, help="longest side of the good photos")
    parser.add_argument("--seed", type=int, default=37)
    parser.add_argument("--time-limit", type=float, default=1500, help="seconds for the load; then it stops")
    parser.add_argument("--server-arg", action="append", default=[], help="an argument for serve (repeat)")
    args = parser.parse_args(argv)

    data = shared_data_dir()
    if data is None:
        raise SystemExit("no ../shared/data (or RMBG_DATA): the load needs the shared photos")
    scratch = Path(tempfile.mkdtemp(prefix="bench-mixed-"))
    kinds = cases(data, args.per_set, args.side, scratch)
    order = schedule(kinds, args.requests, args.big, args.seed)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(["--port", str(port), *args.server_arg], scratch / "server.log", cwd=ROOT)
    watch = HealthWatch(url)
    try:
        print(f"server ({' '.join(args.server_arg) or 'defaults'}): healthy after {wait_healthy(url, server, 300):.1f}"
              f" s; {len(kinds)} kinds of request, {len(order)} requests from {args.clients} clients")
        rss_start = psutil.Process(server.pid).memory_info().rss
        warm = [c.judge(c.send(url)) for c in kinds]  # once each, not counted
        if any(warm):
            print("warm-up problems:", {c.kind: w for c, w in zip(kinds, warm) if w})
        rss_warm = psutil.Process(server.pid).memory_info().rss
        watch.start()
        started = time.monotonic()
        rss = run_load(url, order, args.clients, server.pid, args.time_limit)
        elapsed = time.monotonic() - started
        watch.stop.set()
        watch.join()
    finally:
        stop_server(server)
    return report(kinds, rss, rss_start, rss_warm, elapsed, watch, len(order), scratch / "server.log")


def report(kinds, rss, rss_start, rss_warm, elapsed, watch, planned, log_path) -> int:
    mib = 2**20
    print(f"\n{'kind':<28} {'group':<5} {'n':>4} {'p50 ms':>7} {'p95 ms':>7}  codes")
    codes, problems, by_group = Counter(), [], defaultdict(Counter)
    for case in kinds:
        if not case.results:
            continue
        seconds = np.array([s for _, s, _ in case.results]) * 1000
        mine = Counter(code for code, _, _ in case.results)
        codes += mine
        by_group[case.group] += mine
        problems += [(case.kind, p) for _, _, p in case.results if p]
        print(f"{case.kind:<28} {case.group:<5} {len(case.results):>4} {np.percentile(seconds, 50):>7.0f} "
              f"{np.percentile(seconds, 95):>7.0f}  {dict(mine)}")
    done = sum(codes.values())
    full = codes.get(503, 0)
    server_errors = {c: n for c, n in codes.items() if not isinstance(c, int) or (c >= 500 and c != 503)}
    half = done // 2
    first, second = np.median(rss[:half]) / mib, np.median(rss[half:]) / mib
    verdicts = {
        f"all {planned} requests answered within the time limit": done == planned,
        "no 5xx but 503 with Retry-After": not server_errors,
        "every answer as expected (bad ones a JSON 4xx of their status)": not problems,
        f"no RSS growth (second half median within {RSS_GROWTH_LIMIT:.0%} of the first)":
            second <= first * (1 + RSS_GROWTH_LIMIT),
        "/health always 200": set(watch.codes) == {200},
    }
    print(f"\n{done} requests in {elapsed:.0f} s ({done / elapsed:.1f}/s); by group "
          f"{ {g: dict(c) for g, c in by_group.items()} }")
    print(f"503 with Retry-After (queue or upload limits full): {full}; other 5xx or dropped: {server_errors or 0}")
    for kind, problem in problems[:10]:
        print(f"  unexpected: {kind}: {problem}")
    print(f"server RSS MiB: {rss_start / mib:.0f} at start, {rss_warm / mib:.0f} after one of each kind, median "
          f"{first:.0f} over the first {half} answers and {second:.0f} over the other {done - half} "
          f"(ratio {second / first:.3f}), max {max(rss) / mib:.0f}; median by quarter "
          f"{[round(float(np.median(q)) / mib) for q in np.array_split(np.array(rss), 4)]}")
    print(f"/health: {sum(watch.codes.values())} polls, codes {dict(watch.codes)}; at most {watch.top}")
    for name, ok in verdicts.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    print(f"server log: {log_path}")
    return 0 if all(verdicts.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
