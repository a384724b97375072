"""Stop-aware queues for the apps' threaded pipelines (the folder pipeline, video).

A stage blocked on a full or empty queue looks every :data:`POLL_S` seconds whether the
pipeline was asked to stop (another stage failed, or the user pressed Ctrl-C) and then
raises :class:`Stopped`, so no thread waits forever on a partner that is gone.
"""

from __future__ import annotations

import queue
import threading

#: how often (seconds) a blocked stage looks whether the pipeline was stopped
POLL_S = 0.1


class Stopped(Exception):
    """Raised inside a stage when another stage asked all of them to stop."""


def put(channel: queue.Queue, value, stop: threading.Event) -> None:
    """``channel.put(value)``, unless ``stop`` is set first (then :class:`Stopped`)."""
    while True:
        if stop.is_set():
            raise Stopped
        try:
            channel.put(value, timeout=POLL_S)
            return
        except queue.Full:
            continue


def get(channel: queue.Queue, stop: threading.Event):
    """``channel.get()``, unless ``stop`` is set first (then :class:`Stopped`)."""
    while True:
        if stop.is_set():
            raise Stopped
        try:
            return channel.get(timeout=POLL_S)
        except queue.Empty:
            continue
