"""``rmbg serve``: an HTTP API and a small web page over the removal pipeline."""

from __future__ import annotations

import argparse
import logging
import os
import sys

import uvicorn

from RMBG.apps.server.limits import (
    DEFAULT_BODY_TIMEOUT_S,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_PER_CLIENT,
    MIN_BODY_RATE,
    ClientLimits,
    guarded_h11,
)
from RMBG.apps.server.routes import (
    API_KEY_HEADER,
    DEFAULT_HOST,
    DEFAULT_MAX_QUEUE,
    DEFAULT_MAX_UPLOAD_MB,
    DEFAULT_PORT,
    DEFAULT_TIMEOUT_S,
    LOOPBACK_HOSTS,
    create_app,
    log,
)
from RMBG.apps.server.work import Models, WorkPool
from RMBG.commands.common import (
    MODEL_HELP,
    add_device_option,
    model_argument,
    say_device,
)
from RMBG.removal.pipeline import Remover
from RMBG.runtime.engines import DEFAULT_RUNTIME, KERAS_RUNTIMES


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m RMBG serve",
                                     description="Serve background removal over HTTP (API, OpenAPI docs, web page).")
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to listen on (default loopback only)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument("--model", action="append", metavar="MODEL", type=model_argument,
                        help=f"the model to serve: {MODEL_HELP}; repeat for several, the first is the "
                        "default; default: the shipped model")
    parser.add_argument("--runtime", choices=KERAS_RUNTIMES, default=DEFAULT_RUNTIME,
                        help="how .keras models run (as in `remove`)")
    add_device_option(parser)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="requests worked on at once (default: the number of cores)")
    parser.add_argument("--max-queue", type=int, default=DEFAULT_MAX_QUEUE,
                        help=f"requests that may wait for a worker; more get 503 (default {DEFAULT_MAX_QUEUE})")
    parser.add_argument("--max-upload-mb", type=float, default=DEFAULT_MAX_UPLOAD_MB,
                        help=f"largest request body in MB; larger get 413 (default {DEFAULT_MAX_UPLOAD_MB})")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                        help=f"seconds the work of a request may take, longer get 504; and its upload, longer "
                        f"get 408 (default {DEFAULT_TIMEOUT_S:g})")
    parser.add_argument("--api-key", help=f"require this key in the {API_KEY_HEADER} header of /api/ requests "
                        "(or set RMBG_API_KEY)")
    limits = parser.add_argument_group(
        "slow clients", "A request takes a worker or a waiting place only once its whole body has arrived. Facing "
        "the internet, run it behind a reverse proxy that buffers uploads (nginx, Caddy) and keep these as a "
        "second line; the proxy's X-Forwarded-For names the client when it runs on this machine.")
    limits.add_argument("--max-connections", type=int, default=DEFAULT_MAX_CONNECTIONS, metavar="N",
                        help="uploads received at once; more get 503 with Retry-After at once "
                        f"(default {DEFAULT_MAX_CONNECTIONS})")
    limits.add_argument("--per-client", type=int, default=DEFAULT_PER_CLIENT, metavar="N",
                        help="uploads received at once from one client address; more get 503 with Retry-After "
                        f"(default {DEFAULT_PER_CLIENT}; 0: no limit)")
    limits.add_argument("--body-timeout", type=float, default=DEFAULT_BODY_TIMEOUT_S, metavar="S",
                        help="seconds an upload may go without a byte, or average under "
                        f"{MIN_BODY_RATE // 1024} KB/s after that, before it gets 408; also the time a connection "
                        f"has to send its request head (default {DEFAULT_BODY_TIMEOUT_S:g})")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    api_key = args.api_key or os.environ.get("RMBG_API_KEY") or None
    try:
        if args.max_upload_mb <= 0:
            raise ValueError(f"--max-upload-mb {args.max_upload_mb:g}: must be positive")
        pool = WorkPool(args.workers, args.max_queue, args.timeout)
        limits = ClientLimits(int(args.max_upload_mb * 2**20), args.max_connections, args.per_client,
                              args.body_timeout, body_total_s=args.timeout)
    except ValueError as exc:
        print(f"serve: {exc}", file=sys.stderr)
        return 2
    try:
        removers = [Remover(path, runtime=args.runtime, device=args.device) for path in (args.model or [None])]
        models = Models(removers)
        models.warm_up()
    except (ValueError, FileNotFoundError, OSError) as exc:
        print(f"serve: cannot load the model: {exc}", file=sys.stderr)
        return 2
    for remover in removers:
        say_device("serve", f"{remover.segmenter.device_line} ({remover.segmenter.name})")
    if args.host not in LOOPBACK_HOSTS and api_key is None:
        log.warning("listening on %s without --api-key: anyone who can reach this port can use it", args.host)
    app = create_app(models, pool, limits, api_key)
    log.info("serving %s on http://%s:%d (%d workers, %d waiting at most; %d uploads received at once, %d per "
             "client, %g s body timeout)", ", ".join(models.names), args.host, args.port, pool.workers,
             pool.max_queue, limits.max_connections, limits.per_client, limits.body_timeout_s)
    # uvicorn's own limit stays as a backstop on open connections (idle and half-sent heads included, each
    # closed within the body timeout by guarded_h11), well above what the uploads and the pool hold.
    config = uvicorn.Config(app, host=args.host, port=args.port, access_log=False, log_level="warning",
                            http=guarded_h11(app.state.traffic),
                            limit_concurrency=4 * limits.max_connections + pool.capacity, timeout_keep_alive=5)
    try:
        uvicorn.Server(config).run()
    finally:
        pool.shutdown()
    return 0
