"""``python -m RMBG serve`` against slow, silent and lying clients, over real sockets on 127.0.0.1.

One server (1 worker, 4 waiting, a 1 MB body limit, a 2 s body timeout, 40
uploads received at once, 4 per client address) serves the module. Slow
connections come from other loopback source addresses (127.0.1.x, 127.0.2.x)
so that the per-client limit can be told apart from the overall one; the
honest client posts from 127.0.0.1. Each wait is bounded.
"""

from __future__ import annotations

import json
import socket
import time

import pytest
from test_server import (  # noqa: F401  (photos: a fixture)
    Server,
    assert_error,
    photos,
    picture_of,
)

from RMBG.apps.server.client import Reply, multipart, post_photo, request
from RMBG.apps.server.slow_clients import (
    BODY_START,
    SlowClients,
    open_upload,
    read_answer,
    status_of,
)

BODY_TIMEOUT_S = 2.0
MAX_CONNECTIONS, PER_CLIENT = 40, 4
#: Slack on top of the body timeout for an answer that the timeout triggers (a loaded 2-core machine).
SLACK_S = 2.5
SERVER_ARGS = ["--workers", "1", "--max-queue", "4", "--max-upload-mb", "1", "--body-timeout", str(BODY_TIMEOUT_S),
               "--max-connections", str(MAX_CONNECTIONS), "--per-client", str(PER_CLIENT)]


@pytest.fixture(scope="module")
def slow(tmp_path_factory):
    """The server, with its own TMPDIR (to check that no upload is written anywhere)."""
    temp = tmp_path_factory.mktemp("server-tmp")
    running = Server(SERVER_ARGS, tmp_path_factory.mktemp("slow") / "server.log", env={"TMPDIR": str(temp)})
    running.temp, running.temp_at_start = temp, sorted(temp.rglob("*"))
    yield running
    running.stop()


def health(server) -> dict:
    reply = request(server.url, "GET", "/health", timeout=5)
    assert reply.status == 200
    return reply.json()


def wait_for(server, check, timeout_s: float = 5.0) -> dict:
    """The first ``/health`` for which ``check(health)`` holds, polled within ``timeout_s``; fails past it."""
    deadline = time.monotonic() + timeout_s
    while True:
        seen = health(server)
        if check(seen):
            return seen
        if time.monotonic() > deadline:
            pytest.fail(f"/health did not reach the expected state within {timeout_s:g} s: {seen}")
        time.sleep(0.05)


def idle(seen: dict) -> bool:
    return seen["reading"] == 0 and seen["queued"] == 0 and seen["running"] == 0


def raw_reply(answer: bytes) -> Reply:
    """The first HTTP answer in raw bytes (the body up to Content-Length)."""
    head, _, rest = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    return Reply(status_of(answer), headers, rest[: int(headers.get("content-length", len(rest)))])


def timed_answer(sock, timeout_s: float = BODY_TIMEOUT_S + SLACK_S + 2) -> tuple[Reply, float, bool]:
    """The server's answer on ``sock``, the seconds it took, and whether the server closed the connection."""
    start = time.monotonic()
    answer = read_answer(sock, timeout_s)
    seconds = time.monotonic() - start
    return raw_reply(answer), seconds, seconds < timeout_s - 0.5


# ---------------------------------------------------------------------------
# Honest clients go on while slow ones hold connections
# ---------------------------------------------------------------------------
def test_honest_client_gets_200s_while_slow_and_silent_connections_are_open(slow, photos):  # noqa: F811
    bodies = [p.read_bytes() for p in photos]
    with SlowClients(slow.port, trickle=16, silent=8, mute=4, interval_s=1.0) as attack:
        during = wait_for(slow, lambda h: h["reading"] >= 24 and h["connections"] >= 28)
        assert during["reading_clients"] >= 24  # one source address each: the per-client limit cannot help
        started, replies = time.monotonic(), []
        # past two body timeouts, so the slow ones are answered 408 and come back at least once
        while len(replies) < 6 or time.monotonic() - started < 2 * BODY_TIMEOUT_S + 1:
            replies.append(post_photo(slow.url, bodies[len(replies) % 3], timeout=30))
        assert [r.status for r in replies] == [200] * len(replies), [(r.status, r.body[:200]) for r in replies]
        assert all(picture_of(r).mode == "RGBA" for r in replies)
        assert attack.answers[408] >= 24, attack.answers  # each trickling and silent one at least once
        assert attack.answers[None] >= 4, attack.answers  # the half-sent heads: closed without an answer
        assert attack.opened > 28 and attack.refused == 0
    wait_for(slow, lambda h: idle(h) and h["connections"] <= 2)


# ---------------------------------------------------------------------------
# Stalled and trickling bodies
# ---------------------------------------------------------------------------
def test_stalled_body_gets_408_within_the_timeout_and_its_place_is_freed(slow):
    sock = open_upload(slow.port, "127.0.1.200")
    try:
        wait_for(slow, lambda h: h["reading"] == 1)
        reply, seconds, closed = timed_answer(sock)
    finally:
        sock.close()
    assert_error(reply, 408, f"{len(BODY_START)} bytes in ", "may not pause for 2 s", "--body-timeout")
    assert BODY_TIMEOUT_S - 0.5 < seconds < BODY_TIMEOUT_S + SLACK_S and closed
    assert reply.headers["connection"] == "close"
    wait_for(slow, idle, timeout_s=1.0)  # the place is free at once


def test_trickling_body_gets_408_for_its_rate(slow):
    sock = open_upload(slow.port, "127.0.1.201")
    start = time.monotonic()
    try:
        answer = b""
        sock.settimeout(0.4)
        while time.monotonic() - start < BODY_TIMEOUT_S + SLACK_S and not answer:
            sock.sendall(b"x")  # a byte every 0.4 s: never idle for the timeout, but far under the rate
            try:
                answer = sock.recv(65536)
            except TimeoutError:
                pass
        seconds = time.monotonic() - start
        answer += read_answer(sock, 2)
    finally:
        sock.close()
    assert_error(raw_reply(answer), 408, "last byte 0.", "under 4096 bytes/s")
    assert BODY_TIMEOUT_S - 0.5 < seconds < BODY_TIMEOUT_S + SLACK_S
    wait_for(slow, idle, timeout_s=1.0)


def test_half_sent_head_is_closed_without_an_answer(slow):
    sock = socket.create_connection(("127.0.0.1", slow.port), timeout=5, source_address=("127.0.1.202", 0))
    try:
        sock.sendall(b"POST /api/remove HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-")
        start = time.monotonic()
        answer = read_answer(sock, BODY_TIMEOUT_S + SLACK_S + 2)
        seconds = time.monotonic() - start
    finally:
        sock.close()
    assert answer == b"" and BODY_TIMEOUT_S - 0.5 < seconds < BODY_TIMEOUT_S + SLACK_S


# ---------------------------------------------------------------------------
# Connection limits
# ---------------------------------------------------------------------------
def test_per_client_limit_refuses_the_next_upload_at_once(slow, photos):  # noqa: F811
    data = photos[0].read_bytes()
    held = [open_upload(slow.port, "127.0.0.2") for _ in range(PER_CLIENT)]
    try:
        wait_for(slow, lambda h: h["reading"] == PER_CLIENT)
        start = time.monotonic()
        refused = post_photo(slow.url, data, source="127.0.0.2", timeout=10)
        assert time.monotonic() - start < 1.0  # at once, not after a timeout
        assert_error(refused, 503, f"{PER_CLIENT} uploads from 127.0.0.2", "--per-client")
        assert int(refused.headers["retry-after"]) >= BODY_TIMEOUT_S
        assert picture_of(post_photo(slow.url, data, source="127.0.0.3")).mode == "RGBA"  # another address
    finally:
        for sock in held:  # clients that close mid-body: their places are freed at once
            sock.close()
    wait_for(slow, idle, timeout_s=1.0)
    assert picture_of(post_photo(slow.url, data, source="127.0.0.2")).mode == "RGBA"


def test_max_connections_refuses_past_the_limit(slow, photos):  # noqa: F811
    data = photos[0].read_bytes()
    held = [open_upload(slow.port, f"127.0.2.{i + 1}") for i in range(MAX_CONNECTIONS)]
    try:
        wait_for(slow, lambda h: h["reading"] == MAX_CONNECTIONS)
        start = time.monotonic()
        refused = post_photo(slow.url, data, timeout=10)
        assert time.monotonic() - start < 1.0
        assert_error(refused, 503, f"{MAX_CONNECTIONS} uploads", "--max-connections")
        assert int(refused.headers["retry-after"]) >= 1
        assert health(slow)["status"] == "ok"  # requests without a body are not held up
    finally:
        for sock in held:
            sock.close()
    wait_for(slow, idle, timeout_s=2.0)
    assert picture_of(post_photo(slow.url, data)).mode == "RGBA"


# ---------------------------------------------------------------------------
# Bodies that lie about their length
# ---------------------------------------------------------------------------
def photo_form(data: bytes) -> bytes:
    body, _ = multipart(files={"file": ("photo.jpg", data)})
    return body


def form_upload(slow, body: bytes, length: int | None, source: str):
    """A connection that sent a head declaring ``length`` and ``body`` (with this body's boundary)."""
    boundary = body[2:body.index(b"\r\n")].decode()
    sock = socket.create_connection(("127.0.0.1", slow.port), timeout=10, source_address=(source, 0))
    length_line = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    head = (f"POST /api/remove HTTP/1.1\r\nHost: 127.0.0.1\r\n{length_line}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n").encode()
    sock.sendall(head + body)
    return sock


def test_body_shorter_than_its_length_gets_408_and_nothing_else(slow, photos):  # noqa: F811
    body = photo_form(photos[0].read_bytes())
    sock = form_upload(slow, body, len(body) + 100, "127.0.1.203")
    try:
        reply, seconds, closed = timed_answer(sock)
    finally:
        sock.close()
    assert_error(reply, 408, f"{len(body)} bytes in", "--body-timeout")
    assert seconds < BODY_TIMEOUT_S + SLACK_S and closed
    assert health(slow)["running"] == 0  # it never reached the pool


def test_client_closing_mid_body_frees_its_place_at_once(slow, photos):  # noqa: F811
    body = photo_form(photos[0].read_bytes())
    sock = form_upload(slow, body[: len(body) // 2], len(body), "127.0.1.204")
    wait_for(slow, lambda h: h["reading"] == 1)
    sock.close()
    wait_for(slow, idle, timeout_s=1.0)


def test_body_longer_than_its_length_is_cut_there(slow, photos):  # noqa: F811
    body = photo_form(photos[0].read_bytes())
    sock = form_upload(slow, body + b"GARBAGE" * 100, len(body) - 200, "127.0.1.205")
    try:
        reply, seconds, closed = timed_answer(sock)
    finally:
        sock.close()
    # the form is cut inside the photo, before its closing boundary; what follows is no request
    assert reply.status in (400, 422), (reply.status, reply.body[:300])
    assert_error(reply, reply.status)
    assert closed and seconds < BODY_TIMEOUT_S + SLACK_S
    wait_for(slow, idle, timeout_s=1.0)


def test_chunked_bodies_over_the_limit_or_stalled(slow):
    big = bytes(3 * 2**19)  # 1.5 MB against 1 MB, in 64 KB chunks
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(big[i:i + 65536]), big[i:i + 65536]) for i in range(0, len(big), 65536))
    sock = open_upload(slow.port, "127.0.1.206", body=chunked, length=None)
    try:
        reply, _, _ = timed_answer(sock)
    finally:
        sock.close()
    assert_error(reply, 413, "1 MB", "--max-upload-mb")
    sock = open_upload(slow.port, "127.0.1.207", body=b"10\r\n0123456789abcdef\r\n", length=None)
    try:
        reply, seconds, closed = timed_answer(sock)
    finally:
        sock.close()
    assert_error(reply, 408, "16 bytes in", "--body-timeout")
    assert closed and seconds < BODY_TIMEOUT_S + SLACK_S
    wait_for(slow, idle, timeout_s=1.0)


def test_declared_oversized_body_gets_413_without_taking_a_place(slow):
    sock = open_upload(slow.port, "127.0.1.208", body=b"", length=2 * 2**20)
    try:
        start = time.monotonic()
        answer = read_answer(sock, 1.0)  # answered at once; the connection stays for a body it drops
    finally:
        sock.close()
    assert time.monotonic() - start <= 1.5
    assert_error(raw_reply(answer), 413, "1 MB")
    assert health(slow)["reading"] == 0


# ---------------------------------------------------------------------------
# After all that
# ---------------------------------------------------------------------------
def test_server_is_healthy_after_wrote_nothing_and_logged_each_refusal(slow, photos):  # noqa: F811
    seen = wait_for(slow, lambda h: idle(h) and h["connections"] <= 2)
    assert seen["busy"] == 0
    assert picture_of(post_photo(slow.url, photos[1].read_bytes())).mode == "RGBA"
    assert sorted(slow.temp.rglob("*")) == slow.temp_at_start  # no upload spooled to a temporary file
    log = slow.log.read_text()
    assert "Traceback" not in log and "Exception in ASGI" not in log
    statuses = {line.split()[5] for line in log.splitlines() if " POST /api/remove " in line}
    assert {"200", "408", "413", "499", "503"} <= statuses, statuses
    assert "no request head within" in log
    assert json.loads(request(slow.url, "GET", "/health").body)["status"] == "ok"
