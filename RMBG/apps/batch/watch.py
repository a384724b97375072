"""``remove --watch``: keep removing backgrounds of the files dropped into folders, until Ctrl-C.

:func:`watch_folders` watches folders (recursively, with ``watchdog``) and
hands each new file to a callback once it is complete: a file being copied
or uploaded grows for a while, so its size and modification time must stay
the same for ``WATCH_STABLE_CHECKS`` looks ``WATCH_POLL_S`` apart before it
is read; one still changing after ``WATCH_COMPLETE_TIMEOUT_S`` is handed over
as incomplete. Hidden files (a name starting with ``.``, which includes the
temporary files of atomic writes) and anything under an ignored folder (the
output folder, when it lies inside a watched one) are left alone.

It stops cleanly on Ctrl-C (SIGINT) and on SIGTERM, returning to the caller,
which prints its summary: in the main thread both signals only set the stop
event, so the file in hand is finished (an interrupt raised in the middle of
the removal once left the process hanging after Ctrl-C); a second Ctrl-C
interrupts at once. Nothing here knows about
models or outputs: :func:`RMBG.commands.remove.main` supplies the callback.
"""

from __future__ import annotations

import os
import queue
import signal
import threading
import time
from pathlib import Path
from typing import Callable, Iterable

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from RMBG.constants import WATCH_COMPLETE_TIMEOUT_S, WATCH_POLL_S, WATCH_STABLE_CHECKS


def file_state(path: Path) -> tuple[int, int] | None:
    """``(size, mtime_ns)`` of ``path``, or None when it is gone (or is not a file)."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_size, stat.st_mtime_ns) if path.is_file() else None


def wait_until_complete(path: Path, poll_s: float = WATCH_POLL_S, checks: int = WATCH_STABLE_CHECKS,
                        timeout_s: float = WATCH_COMPLETE_TIMEOUT_S, stop: threading.Event | None = None) -> str:
    """Wait until ``path`` stops changing: ``"complete"`` once its size (above 0) and modification
    time were the same for ``checks`` looks ``poll_s`` apart, ``"gone"`` when it disappears,
    ``"incomplete"`` when it still changes after ``timeout_s`` (or ``stop`` is set)."""
    deadline = time.monotonic() + timeout_s
    last, same = file_state(path), 0
    while time.monotonic() < deadline and not (stop is not None and stop.is_set()):
        time.sleep(poll_s)
        state = file_state(path)
        if state is None:
            return "gone"
        same = same + 1 if state == last and state[0] > 0 else 0
        if same >= checks:
            return "complete"
        last = state
    return "incomplete"


def is_hidden(path: Path, root: Path) -> bool:
    """True when any part of ``path`` below ``root`` starts with a dot."""
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        parts = path.parts
    return any(part.startswith(".") for part in parts)


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
        return True
    except ValueError:
        return False


class _Arrivals(FileSystemEventHandler):
    """Puts the path of every file created in, or moved into, a watched folder on a queue."""

    def __init__(self, arrivals: queue.Queue):
        super().__init__()
        self.arrivals = arrivals

    def on_created(self, event: FileSystemEvent) -> None:
        if not event.is_directory:
            self.arrivals.put(Path(os.fsdecode(event.src_path)))

    def on_moved(self, event: FileSystemEvent) -> None:
        if not event.is_directory:
            self.arrivals.put(Path(os.fsdecode(event.dest_path)))

    def on_closed(self, event: FileSystemEvent) -> None:
        # a file written in place and closed: seen at creation already; a rewrite of an old
        # file arrives here only, and the callback decides whether it is new work
        if not event.is_directory:
            self.arrivals.put(Path(os.fsdecode(event.src_path)))


def watch_folders(
    folders: Iterable[Path],
    on_file: Callable[[Path, Path, str], None],
    ignore: Iterable[Path] = (),
    stop: threading.Event | None = None,
    on_ready: Callable[[], None] | None = None,
    poll_s: float = WATCH_POLL_S,
) -> None:
    """Call ``on_file(path, folder, state)`` for each file that arrives in one of ``folders``
    (``state`` is what :func:`wait_until_complete` said), until Ctrl-C, SIGTERM or ``stop``.

    ``ignore`` lists folders whose files are never handed over (the output
    folder); ``on_ready`` is called once the folders are being watched. A path
    that arrives again while it waits, or unchanged after it was handled, is
    handled once.
    """
    roots = [Path(folder).resolve() for folder in folders]
    ignored = [Path(folder).resolve() for folder in ignore]
    stop = stop or threading.Event()
    arrivals: queue.Queue = queue.Queue()
    handled: dict[Path, tuple[int, int] | None] = {}
    observer = Observer()
    handler = _Arrivals(arrivals)
    for root in roots:
        if not root.is_dir():
            raise NotADirectoryError(f"{root}: not a folder, cannot watch it")
        observer.schedule(handler, str(root), recursive=True)
    previous = _stop_on_signals(stop)
    observer.start()
    try:
        if on_ready is not None:
            on_ready()
        while not stop.is_set():
            try:
                path = arrivals.get(timeout=poll_s)
            except queue.Empty:
                continue
            path = path.resolve() if path.exists() else path
            root = next((r for r in roots if _inside(path, r)), None)
            if root is None or is_hidden(path, root) or any(_inside(path, folder) for folder in ignored):
                continue
            if path in handled and handled[path] == file_state(path):
                continue
            state = wait_until_complete(path, stop=stop)
            if stop.is_set():
                break
            _drain(arrivals, path)
            if state != "gone":
                handled[path] = file_state(path)
                on_file(path, root, state)
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        observer.stop()
        observer.join(timeout=5)
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _drain(arrivals: queue.Queue, path: Path) -> None:
    """Drop the other events of ``path`` that queued while it was being written."""
    keep = []
    while True:
        try:
            other = arrivals.get_nowait()
        except queue.Empty:
            break
        if other != path and (not other.exists() or other.resolve() != path):
            keep.append(other)
    for other in keep:
        arrivals.put(other)


def _stop_on_signals(stop: threading.Event) -> dict:
    """Make SIGINT and SIGTERM set ``stop`` (main thread only; a second SIGINT raises KeyboardInterrupt).

    The previous handlers, by signal number (empty outside the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return {}

    def on_interrupt(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    return {signal.SIGTERM: signal.signal(signal.SIGTERM, lambda *_: stop.set()),
            signal.SIGINT: signal.signal(signal.SIGINT, on_interrupt)}
