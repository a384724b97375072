"""``python -m RMBG stream WIDTH HEIGHT``: raw frames in on stdin, raw frames out on stdout.

Reads raw ``rgb24`` frames of ``WIDTH x HEIGHT`` and writes the frames of
``--mode`` (rgba: 4 bytes a pixel, mask: 1, color / image / blur: 3), through
the same :class:`RMBG.apps.video.pipeline.FramePipeline` as ``python -m RMBG video``
(batches, temporal smoothing), so that it chains with ffmpeg::

    ffmpeg -i in.mp4 -f rawvideo -pix_fmt rgb24 -       | python -m RMBG stream 1280 720 --mode rgba       | ffmpeg -f rawvideo -pix_fmt rgba -s 1280x720 -r 30 -i - -c:v libvpx-vp9 -pix_fmt yuva420p out.webm
"""

from __future__ import annotations

import sys

import numpy as np

from RMBG.apps.video.pipeline import FramePipeline


def _read_exactly(stream, size: int) -> bytes:
    chunks, got = [], 0
    while got < size:
        chunk = stream.read(size - got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def run_stream(width: int, height: int, pipeline: FramePipeline, stdin=None, stdout=None) -> int:
    """Raw ``rgb24`` frames of ``width x height`` from ``stdin`` to raw frames of the mode on
    ``stdout``, ``remover.batch_size`` at a time; the number of frames."""
    stdin = sys.stdin.buffer if stdin is None else stdin
    stdout = sys.stdout.buffer if stdout is None else stdout
    size, count, done = width * height * 3, 0, False
    while not done:
        frames = []
        while len(frames) < pipeline.remover.batch_size:
            data = _read_exactly(stdin, size)
            if len(data) < size:
                if data:
                    raise ValueError(f"stdin: the input ended inside frame {count + len(frames) + 1} ({len(data)} of "
                                     f"{size} bytes); are the frames {width}x{height} rgb24?")
                done = True
                break
            frames.append(np.frombuffer(data, np.uint8).reshape(height, width, 3))
        if frames:
            for frame, small in zip(frames, pipeline.small_masks(frames)):
                stdout.write(np.ascontiguousarray(pipeline.picture(frame, small)).tobytes())
            stdout.flush()
            count += len(frames)
    return count
