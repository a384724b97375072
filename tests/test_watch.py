"""``remove --watch`` (RMBG.apps.batch.watch): waiting for complete files, and the CLI run until SIGINT."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from shared_sets import pairs

from RMBG.apps.batch.watch import wait_until_complete, watch_folders

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _write_slowly(path: Path, data: bytes, pieces: int = 3, pause_s: float = 0.4) -> None:
    """Write ``data`` to ``path`` in ``pieces``, pausing between them (a slow copy)."""
    step = -(-len(data) // pieces)
    with open(path, "wb") as handle:
        for start in range(0, len(data), step):
            handle.write(data[start : start + step])
            handle.flush()
            os.fsync(handle.fileno())
            time.sleep(pause_s)


def test_a_growing_file_is_complete_only_once_it_stops_growing(tmp_path):
    path = tmp_path / "photo.jpg"
    data = os.urandom(30_000)
    path.write_bytes(b"")
    writer = threading.Thread(target=_write_slowly, args=(path, data, 4, 0.3))
    writer.start()
    state = wait_until_complete(path, poll_s=0.1, checks=2, timeout_s=20)
    writer.join()
    assert state == "complete" and path.read_bytes() == data
    gone = tmp_path / "gone.jpg"
    gone.write_bytes(b"x")
    threading.Timer(0.2, gone.unlink).start()
    assert wait_until_complete(gone, poll_s=0.1, checks=5, timeout_s=5) == "gone"
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    assert wait_until_complete(empty, poll_s=0.05, checks=2, timeout_s=0.5) == "incomplete"


def test_watch_hands_over_each_new_file_once_and_ignores_hidden_and_output_files(tmp_path):
    watched, out = tmp_path / "in", tmp_path / "in" / "out"
    (watched / "sub").mkdir(parents=True)
    out.mkdir()
    seen: queue.Queue = queue.Queue()
    stop, ready = threading.Event(), threading.Event()
    thread = threading.Thread(target=watch_folders, kwargs=dict(
        folders=[watched], on_file=lambda path, root, state: seen.put((path, root, state)), ignore=[out],
        stop=stop, on_ready=ready.set, poll_s=0.05))
    thread.start()
    try:
        assert ready.wait(10)
        (watched / ".partial.jpg").write_bytes(b"hidden")
        (out / "result.png").write_bytes(b"an output")
        (watched / "sub" / "new.jpg").write_bytes(b"a photo")
        path, root, state = seen.get(timeout=10)
        assert (path, root, state) == ((watched / "sub" / "new.jpg").resolve(), watched.resolve(), "complete")
        time.sleep(1.0)
        assert seen.empty()  # the hidden file, the output and the repeated events of new.jpg are not handed over
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()


def _lines(stream, into: queue.Queue) -> None:
    for line in iter(stream.readline, ""):
        into.put(line)
    into.put(None)


def _wait_for(lines: queue.Queue, text: str, timeout_s: float, log: list[str]) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line is None:
            break
        log.append(line)
        if text in line:
            return
    pytest.fail(f"no line with {text!r} within {timeout_s} s; output so far:\n{''.join(log)}")


def test_cli_watch_processes_a_dropped_photo_and_stops_cleanly_on_sigint(tmp_path, shared_data, peer_onnx):
    sources = [p for p, _ in pairs(shared_data / "ecssd", limit=2)]
    watched, out = tmp_path / "in", tmp_path / "out"
    watched.mkdir()
    Image.open(sources[0]).save(watched / "first.jpg")  # there before the start: done at once
    command = [sys.executable, "-m", "RMBG", "remove", str(watched), "--out", str(out), "--watch",
               "--model", str(peer_onnx), "--mode", "mask", "--quiet"]
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_lines, args=(process.stdout, lines), daemon=True).start()
    log: list[str] = []
    try:
        _wait_for(lines, "watching", 90, log)
        assert (out / "first.png").is_file()
        # a photo copied slowly: read only once complete (a half file would fail as truncated)
        _write_slowly(watched / "second.jpg", Path(sources[1]).read_bytes(), pieces=3, pause_s=0.4)
        (watched / "notes.txt").write_text("not a picture")
        _wait_for(lines, "second.jpg ->", 60, log)
        _wait_for(lines, "notes.txt", 20, log)
        process.send_signal(signal.SIGINT)
        # the reader thread owns stdout (communicate() would compete with it); a loaded CI machine is slow
        process.wait(timeout=120)
        rest = ""
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    time.sleep(0.5)  # let the reader thread drain the last lines
    while not lines.empty():
        line = lines.get()
        log.append(line or "")
    report = "".join(log) + (rest or "")
    assert process.returncode == 0, report
    assert "watch stopped" in report and "done 2, skipped 1, failed 0" in report, report
    assert "Traceback" not in report
    with Image.open(out / "second.png") as mask, Image.open(sources[1]) as photo:
        assert mask.mode == "L" and mask.size == photo.size
        values = np.asarray(mask)
    assert values.min() == 0 and values.max() == 255
    assert sorted(p.name for p in out.iterdir()) == ["first.png", "second.png"]


def test_ctrl_c_finishes_the_file_in_hand_then_returns_with_the_handlers_restored(tmp_path):
    """SIGINT only sets the stop event: a file being handled when it comes is finished (an interrupt raised
    inside the removal's worker threads once left `remove --watch` hanging), and a second SIGINT interrupts."""
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    handled = []

    def on_file(path, root, state):
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while a file is in hand
        time.sleep(0.2)
        handled.append((path.name, state))  # still reached: the signal did not raise here

    def on_ready():
        (tmp_path / "photo.png").write_bytes(b"x" * 100)

    start = time.monotonic()
    watch_folders([tmp_path], on_file, on_ready=on_ready, poll_s=0.05)
    assert handled == [("photo.png", "complete")]
    assert time.monotonic() - start < 10
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before

    # two Ctrl-C before any file: the second raises KeyboardInterrupt, and the watch still returns
    def twice():
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)

    second = []
    (tmp_path / "sub").mkdir()
    watch_folders([tmp_path / "sub"], lambda *args: second.append(args), on_ready=twice, poll_s=0.05)
    assert second == [] and signal.getsignal(signal.SIGINT) == before[0]
