"""An honest client's latency on ``python -m RMBG serve`` with and without slow and silent connections open.

Starts the server (its defaults unless ``--server-arg`` says otherwise) on a
free loopback port; then, ``--rounds`` times, an honest client posts photos
one after another from 127.0.0.1 for ``--seconds`` unloaded, and again for
``--seconds`` while :class:`RMBG.apps.server.slow_clients.SlowClients` holds
``--trickle`` connections sending a body byte a second and ``--silent`` ones
that sent a head and part of a body (each one the server closes is opened
again at once). The slow ones come from one loopback source address each
(127.0.1.x), so the per-client limit cannot help; ``--one-address`` sends them
all from 127.0.1.1 instead. Prints p50/p95 of the honest requests and the
ratio loaded/unloaded (the goal of issue 37: all 200, p95 ratio <= 2).

Usage::

    python scripts/bench_slow_clients.py [--seconds 25] [--rounds 2] [--trickle 50] [--silent 20] [--mute 0]
                                         [--one-address] [--server-arg=--body-timeout=10 ...] [--root DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from bench_serve import photo_bytes  # noqa: E402

from RMBG.apps.server.client import free_port, post_photo, request, start_server, stop_server, wait_healthy  # noqa: E402
from RMBG.apps.server.slow_clients import SlowClients  # noqa: E402
from RMBG.constants import PROJECT_ROOT  # noqa: E402


def honest(url: str, data: bytes, seconds: float, watch=None) -> tuple[list[tuple[int, float]], list[dict]]:
    """Photos posted one after another for ``seconds``: ``(status, seconds)`` each, and /health seen between."""
    results, healths = [], []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        start = time.perf_counter()
        reply = post_photo(url, data, fields={"mode": "rgba"}, timeout=120)
        results.append((reply.status, time.perf_counter() - start))
        if watch is not None:
            healths.append(request(url, "GET", "/health", timeout=30).json())
    return results, healths


def summary(results: list[tuple[int, float]]) -> dict:
    ok = np.array([s for code, s in results if code == 200]) * 1000
    return {"n": len(results), "codes": dict(Counter(code for code, _ in results)),
            "p50": float(np.percentile(ok, 50)) if ok.size else float("nan"),
            "p95": float(np.percentile(ok, 95)) if ok.size else float("nan")}


def line(name: str, row: dict) -> str:
    return f"{name:<14} {row['n']:>8} {row['p50']:>8.0f} {row['p95']:>8.0f}  {row['codes']}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=25.0, help="seconds of honest requests per phase "
                        "(default 25: past two default body timeouts, so the slow ones are cut and come back)")
    parser.add_argument("--rounds", type=int, default=2, help="unloaded/loaded pairs, alternating")
    parser.add_argument("--trickle", type=int, default=50)
    parser.add_argument("--silent", type=int, default=20)
    parser.add_argument("--mute", type=int, default=0, help="connections that send half a request head")
    parser.add_argument("--one-address", action="store_true", help="all slow connections from 127.0.1.1")
    parser.add_argument("--server-arg", action="append", default=[], help="an argument for serve (repeat)")
    parser.add_argument("--root", type=Path, default=PROJECT_ROOT, help="checkout whose server to run")
    parser.add_argument("--photo", help="photo to send (default: the first shared people photo)")
    parser.add_argument("--side", type=int, default=640, help="longest side of the photo sent")
    args = parser.parse_args(argv)

    data = photo_bytes(args.photo, args.side)
    log = Path(tempfile.mkdtemp(prefix="bench-slow-")) / "server.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(["--port", str(port), *args.server_arg], log, cwd=args.root)
    sources = ["127.0.1.1"] if args.one_address else None
    phases: dict[str, list] = {"unloaded": [], "loaded": []}
    attack_answers, opened, top = Counter(), 0, {}
    try:
        print(f"server ({args.root}, {' '.join(args.server_arg) or 'defaults'}): healthy after "
              f"{wait_healthy(url, server, 300):.1f} s; photo {len(data) / 1024:.0f} KB, at most {args.side} px")
        post_photo(url, data, timeout=120)  # warm
        for round_ in range(args.rounds):
            results, _ = honest(url, data, args.seconds)
            phases["unloaded"] += results
            print(line(f"{round_ + 1}: unloaded", summary(results)))
            kwargs = {"sources": sources} if sources else {}
            with SlowClients(port, trickle=args.trickle, silent=args.silent, mute=args.mute, **kwargs) as attack:
                time.sleep(1.0)  # all of them connected and sent what they send first
                results, healths = honest(url, data, args.seconds, watch=True)
                attack_answers += attack.answers
                opened += attack.opened
            phases["loaded"] += results
            for key in ("connections", "reading", "queued", "running"):
                top[key] = max([top.get(key, 0)] + [h.get(key, 0) for h in healths])
            print(line(f"{round_ + 1}: loaded", summary(results)), flush=True)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and request(url, "GET", "/health").json().get("reading", 0):
                time.sleep(0.2)
    finally:
        stop_server(server)
    calm, loaded = summary(phases["unloaded"]), summary(phases["loaded"])
    held = f"{args.trickle} trickling + {args.silent} silent + {args.mute} mute"
    print(f"\nslow connections: {held}, from {'one address' if args.one_address else 'one address each'}; "
          f"{opened} opened in all, closed by the server with {dict(attack_answers)}")
    print(f"/health at most during the load: {top}")
    print(f"{'honest client':<14} {'requests':>8} {'p50 ms':>8} {'p95 ms':>8}  codes")
    for name, row in (("unloaded", calm), ("loaded", loaded)):
        print(line(name, row))
    ratio = loaded["p95"] / calm["p95"]
    all_ok = set(loaded["codes"]) == {200}
    print(f"p95 loaded / unloaded: {ratio:.2f} (goal <= 2); all loaded requests 200: {all_ok}")
    print(f"server log: {log}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
