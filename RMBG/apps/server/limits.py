"""Slow and silent clients kept away from the work pool: a request's body is read in full, in time, first.

A request takes a place in :class:`RMBG.apps.server.work.WorkPool` only once
its whole body is in memory, so waiting on the network never counts as work:

* :class:`BodyGate` (ASGI middleware) reads every request body before the app
  sees it: at most ``max_connections`` bodies at once and ``per_client`` from
  one client address (beyond them 503 with ``Retry-After`` at once), within
  the size limit (413, declared or counted, chunked too), with a time limit on
  progress (408 when no byte came for ``body_timeout_s``, when the body came
  slower than ``min_body_rate`` bytes/s on average after that, or when it
  took over ``body_total_s``). A client that goes away is dropped, unanswered.
* :func:`guarded_h11` is uvicorn's h11 protocol with a deadline on request
  headers: a connection that has not sent a whole request head within
  ``body_timeout_s`` of opening (or of its previous answer) is closed; it also
  counts open connections for ``/health``.
* :class:`Traffic` holds the counts (open connections, bodies being read, by
  client address) and refuses past the limits.

Uvicorn's own ``limit_concurrency`` stays on as a backstop on open
connections; its ``proxy_headers`` (trusted from loopback only) make the
client address the one a local reverse proxy forwards.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter
from dataclasses import dataclass

import h11
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from uvicorn.protocols.http.h11_impl import H11Protocol

from RMBG.apps.server.work import ApiError

#: Request bodies read at once (all clients); a trickling body holds one place for at most the body timeout.
DEFAULT_MAX_CONNECTIONS = 128

#: Request bodies read at once from one client address (a browser opens 6 connections at most).
DEFAULT_PER_CLIENT = 16

#: Seconds a body may go without a byte (and request headers may take) before 408 / the connection is closed.
DEFAULT_BODY_TIMEOUT_S = 10.0

#: Bytes/s a body must average once it has taken the body timeout (32 kbit/s: below any mobile uplink).
MIN_BODY_RATE = 4096

log = logging.getLogger("RMBG.apps.server.limits")


@dataclass(frozen=True)
class ClientLimits:
    """How much of the network one request and one client may hold."""

    max_upload_bytes: int
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    per_client: int = DEFAULT_PER_CLIENT  # 0: no per-client limit
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S
    body_total_s: float = 60.0
    min_body_rate: float = MIN_BODY_RATE

    def __post_init__(self):
        if self.max_upload_bytes <= 0 or self.max_connections < 1 or self.per_client < 0:
            raise ValueError(f"max_connections must be at least 1 (got {self.max_connections}), per_client at "
                             f"least 0 (got {self.per_client}) and the upload limit positive")
        if self.body_timeout_s <= 0 or self.body_total_s <= 0 or self.min_body_rate < 0:
            raise ValueError(f"the body timeout must be positive (got {self.body_timeout_s:g})")

    @property
    def retry_after(self) -> int:
        """Seconds after which a refused client may try again: a trickling body is gone by then at the latest."""
        return max(1, math.ceil(self.body_timeout_s))


def json_error(exc: ApiError, close: bool = False) -> JSONResponse:
    """The JSON answer ``{"error": ..., "detail": ...}`` of ``exc`` (``Connection: close`` when ``close``)."""
    headers = dict(exc.headers, **({"Connection": "close"} if close else {}))
    return JSONResponse({"error": exc.error, "detail": exc.detail}, status_code=exc.status, headers=headers)


class Traffic:
    """Open connections and the request bodies being read, overall and by client address (event-loop only)."""

    def __init__(self, limits: ClientLimits):
        self.limits = limits
        self.open = 0
        self.reading = 0
        self._by_client: Counter = Counter()

    def enter(self, client: str) -> None:
        """Count one more body being read from ``client``; 503 :class:`ApiError` past a limit."""
        limits = self.limits
        if self.reading >= limits.max_connections:
            why = f"{limits.max_connections} uploads are being received already (--max-connections)"
        elif limits.per_client and self._by_client[client] >= limits.per_client:
            why = f"{limits.per_client} uploads from {client} are being received already (--per-client)"
        else:
            self.reading += 1
            self._by_client[client] += 1
            return
        wait = limits.retry_after
        raise ApiError(503, "too many uploads", f"{why}; retry in {wait} s", {"Retry-After": str(wait)})

    def leave(self, client: str) -> None:
        self.reading -= 1
        self._by_client[client] -= 1
        if not self._by_client[client]:
            del self._by_client[client]

    @property
    def clients(self) -> int:
        return len(self._by_client)


# ---------------------------------------------------------------------------
# Reading a body
# ---------------------------------------------------------------------------
def _too_large(limits: ClientLimits) -> ApiError:
    return ApiError(413, "upload too large",
                    f"the request body is over {limits.max_upload_bytes / 2**20:g} MB (--max-upload-mb)")


def declared_length(headers: Headers) -> int | None:
    """The body length a request declares (None when chunked or absent); 400 when it is not a number."""
    value = headers.get("content-length")
    if value is None:
        return None
    if not value.strip().isdigit():
        raise ApiError(400, "bad request", f"Content-Length {value!r} is not a number of bytes")
    return int(value)


def has_body(headers: Headers) -> bool:
    """Whether a request comes with a body (a non-zero Content-Length, or chunked)."""
    return "transfer-encoding" in headers or headers.get("content-length", "0").strip() not in ("", "0")


async def read_body(receive, limits: ClientLimits) -> bytes | None:
    """The whole body from ASGI ``receive``, or None when the client went away.

    Raises :class:`ApiError` 413 past ``max_upload_bytes`` and 408 when no byte
    came for ``body_timeout_s``, when the body has averaged under
    ``min_body_rate`` bytes/s once it took ``body_timeout_s``, or when it took
    over ``body_total_s``; each is enforced as a deadline on the next chunk.
    """
    loop = asyncio.get_running_loop()
    start = last = loop.time()
    chunks: list[bytes] = []
    size = 0
    while True:
        slowest = start + max(limits.body_timeout_s, size / limits.min_body_rate if limits.min_body_rate else math.inf)
        deadline = min(last + limits.body_timeout_s, slowest, start + limits.body_total_s)
        try:
            message = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0.001))
        except TimeoutError:
            now = loop.time()
            got = f"{size} bytes in {now - start:.1f} s, the last byte {now - last:.1f} s ago"
            if now - start >= limits.body_total_s:
                why = f"an upload must arrive within {limits.body_total_s:g} s (--timeout)"
            else:
                why = (f"an upload may not pause for {limits.body_timeout_s:g} s nor average under "
                       f"{limits.min_body_rate:g} bytes/s after that (--body-timeout)")
            raise ApiError(408, "upload too slow", f"the body came too slowly ({got}); {why}") from None
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        if chunk:
            size, last = size + len(chunk), loop.time()
        if size > limits.max_upload_bytes:
            raise _too_large(limits)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


class BodyGate:
    """ASGI middleware: each request body in memory, within the limits of :class:`ClientLimits`, before the app.

    ``check(scope)`` (e.g. the API key) runs before a body is read and may raise
    :class:`ApiError`. The app then receives the body as one message.
    """

    def __init__(self, app, traffic: Traffic, check=None):
        self.app, self.traffic, self.check = app, traffic, check

    async def __call__(self, scope, receive, send):
        headers = Headers(scope=scope) if scope["type"] == "http" else None
        if headers is None or not has_body(headers):
            return await self.app(scope, receive, send)
        limits = self.traffic.limits
        client = scope["client"][0] if scope.get("client") else "unknown"
        try:
            if self.check is not None:
                self.check(scope)
            declared = declared_length(headers)
            if declared is not None and declared > limits.max_upload_bytes:
                raise _too_large(limits)
            self.traffic.enter(client)
        except ApiError as exc:  # refused before reading: what the client still sends is dropped (see guarded_h11)
            return await json_error(exc)(scope, receive, send)
        try:
            body = await read_body(receive, limits)
        except ApiError as exc:
            body, refused = None, exc
        else:
            refused = None
        finally:
            self.traffic.leave(client)
        if refused is not None:  # a stalled client is let go; one over the size may still be sending
            return await json_error(refused, close=refused.status == 408)(scope, receive, send)
        if body is None:
            return  # the client went away: nobody to answer

        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # http.disconnect, when it comes

        await self.app(scope, replay, send)


# ---------------------------------------------------------------------------
# Request heads
# ---------------------------------------------------------------------------
def guarded_h11(traffic: Traffic) -> type:
    """Uvicorn's h11 protocol, counting open connections in ``traffic`` and closing any that has not sent a
    whole request head within the body timeout of opening or of its previous answer.

    The same deadline ends a body that is still being sent after its answer (a
    refused upload), which uvicorn would otherwise read and drop for as long as
    it comes.
    """
    timeout_s = traffic.limits.body_timeout_s

    class GuardedH11Protocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport):
            super().connection_made(transport)
            traffic.open += 1
            self._arm()

        def connection_lost(self, exc):
            if self._deadline is not None:
                self._deadline.cancel()
            self._deadline = None
            traffic.open -= 1
            super().connection_lost(exc)

        def handle_events(self):
            cycle = self.cycle
            super().handle_events()
            if self.cycle is not cycle and self._deadline is not None:  # a request head came in
                self._deadline.cancel()
                self._deadline = None

        def on_response_complete(self):
            if not self.transport.is_closing():
                self._arm()
            super().on_response_complete()  # a pipelined request that starts here disarms it again

        def _arm(self):
            if self._deadline is not None:
                self._deadline.cancel()
            self._deadline = self.loop.call_later(timeout_s, self._expire)

        def _expire(self):
            self._deadline = None
            if self.transport.is_closing():
                return
            log.info("closing a connection from %s: no request head within %g s (--body-timeout)",
                     self.client[0] if self.client else "unknown", timeout_s)
            try:
                self.conn.send(h11.ConnectionClosed())
            except h11.LocalProtocolError:
                pass
            self.transport.close()

    return GuardedH11Protocol
