"""Requests per second and p50/p95 latency of ``python -m RMBG serve`` at concurrency 1, 4 and 16.

Starts our server (the default model) on a free loopback port and, when
rembg is installed, ``rembg s`` (model u2netp) on another; then, for each
concurrency, runs the same photos against ours and rembg's in turn
(alternating, one run each). Without rembg it says so and benches ours only.

Usage::

    python scripts/bench_serve.py [--requests 32] [--photo PATH] [--side 640] [--workers N]
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from RMBG.apps.server.client import (
    free_port,
    post_photo,
    start_server,
    stop_server,
    wait_healthy,
)
from RMBG.constants import PROJECT_ROOT, shared_data_dir  # noqa: E402

CONCURRENCY = (1, 4, 16)


def photo_bytes(path: str | None, side: int) -> bytes:
    """The photo to send: ``path``, else the first shared people photo, at most ``side`` px, as JPEG."""
    if path is None:
        data = shared_data_dir()
        if data is None:
            raise SystemExit("no --photo and no ../shared/data: give a photo to send")
        path = sorted((data / "people" / "images").glob("*.jpg"))[0]
    with Image.open(path) as img:
        picture = img.convert("RGB")
    picture.thumbnail((side, side))
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def measure(url: str, data: bytes, concurrency: int, requests: int, fields: dict) -> dict:
    """Send ``requests`` photos from ``concurrency`` clients; rate, latency and codes."""
    def one(_):
        start = time.perf_counter()
        reply = post_photo(url, data, fields=fields, timeout=300)
        return reply.status, time.perf_counter() - start

    post_photo(url, data, fields=fields, timeout=300)  # warm
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as clients:
        results = list(clients.map(one, range(requests)))
    elapsed = time.perf_counter() - start
    ok = np.array([s for code, s in results if code == 200])
    codes = {code: sum(1 for c, _ in results if c == code) for code in sorted({c for c, _ in results})}
    return {"rps": len(ok) / elapsed, "p50": np.percentile(ok, 50) * 1000 if ok.size else float("nan"),
            "p95": np.percentile(ok, 95) * 1000 if ok.size else float("nan"), "codes": codes}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=32, help="requests per concurrency and server")
    parser.add_argument("--photo", help="photo to send (default: the first shared people photo)")
    parser.add_argument("--side", type=int, default=640, help="longest side of the photo sent")
    parser.add_argument("--workers", type=int, help="our server's --workers (default: its own, the cores)")
    args = parser.parse_args(argv)

    data = photo_bytes(args.photo, args.side)
    logs = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    servers = {}
    try:
        port = free_port()
        extra = ["--workers", str(args.workers)] if args.workers else []
        ours = start_server(["--port", str(port), "--max-queue", "64", *extra], logs / "rmbg.log", cwd=PROJECT_ROOT)
        servers["rmbg serve"] = (f"http://127.0.0.1:{port}", ours, {"mode": "rgba"})
        rembg = shutil.which("rembg") if importlib.util.find_spec("rembg") else None
        if rembg:
            port = free_port()
            peer = start_server([], logs / "rembg.log", command=[rembg, "s", "--host", "127.0.0.1", "--port", str(port)])
            servers["rembg s (u2netp)"] = (f"http://127.0.0.1:{port}", peer, {"model": "u2netp"})
        else:
            print("rembg is not installed: benching ours only (pip install rembg[cli] to compare)")
        for name, (url, process, _) in list(servers.items()):
            path = "/api" if name.startswith("rembg s") else "/health"
            try:
                print(f"{name}: healthy after {wait_healthy(url, process, 300, path):.1f} s")
            except RuntimeError as exc:
                if name == "rmbg serve":
                    raise
                # rembg's `s` needs gradio, which the pinned `bench` extra leaves out: say so, bench ours alone
                tail = (logs / "rembg.log").read_text(errors="replace").strip().splitlines()[-1:]
                print(f"{name}: {exc} ({tail[0] if tail else 'no output'}); benching ours only")
                stop_server(servers.pop(name)[1])
        print(f"photo: {len(data) / 1024:.0f} KB JPEG, at most {args.side} px; {args.requests} requests per cell")
        print(f"{'server':<18} {'clients':>7} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8}  codes")
        for concurrency in CONCURRENCY:
            for name, (url, _, fields) in servers.items():  # alternating, same photo, same count
                row = measure(url, data, concurrency, args.requests, fields)
                print(f"{name:<18} {concurrency:>7} {row['rps']:>7.2f} {row['p50']:>8.0f} {row['p95']:>8.0f}  "
                      f"{row['codes']}")
    finally:
        for _, process, _ in servers.values():
            stop_server(process)
    print(f"server logs in {logs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
