"""Background removal on video, the sound kept: ``python -m RMBG video`` and ``python -m RMBG stream``.

``video IN --out OUT`` decodes ``IN`` with PyAV (FFmpeg inside, nothing else
to install), sends its frames to the model in batches through
:class:`RMBG.removal.pipeline.Remover`, smooths the masks over time
(:mod:`RMBG.apps.video.temporal`, at the model's size, before they are finished to full
size), composes the ``--mode`` picture and encodes it::

    python -m RMBG video talk.mp4 --out talk.webm --mode rgba   # VP9 with alpha (yuva420p)
    python -m RMBG video talk.mp4 --out talk.mov --mode rgba    # ProRes 4444 with alpha (yuva444p10le)
    python -m RMBG video talk.mp4 --out green.mp4 --mode color --bg-color "#00FF00"

* The audio streams are copied unchanged (remuxed, in sync: every packet keeps
  its timestamps); only where the output container cannot carry the codec
  (AAC into WebM) is the sound re-encoded, to Opus, and a note says so.
* Every frame keeps its timestamp (so the frame rate, variable or not, and the
  duration are the input's) and the rotation metadata is written again; the
  model sees each frame upright.
* ``--mode rgba`` needs a container with alpha (``.webm``, ``.mkv``: VP9;
  ``.mov``: ProRes 4444); ``--mode mask`` writes the matte as a grey video.
* Decoding, inference and composing + encoding run in three threads joined by
  short queues; the progress bar counts frames (and frames per second).
* The output is written to a temporary file next to it and renamed when
  complete: a failure or Ctrl-C leaves nothing; an existing output is kept
  unless ``--overwrite``; the input is never written over.

``python -m RMBG stream`` (:mod:`RMBG.apps.video.stream`) runs the same
:class:`FramePipeline` over raw frames on stdin.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from tqdm import tqdm

from RMBG.apps.queues import Stopped, get, put
from RMBG.apps.video.temporal import DEFAULT_SMOOTH, TemporalSmoother
from RMBG.images.io import ImageReadError, write_atomic
from RMBG.removal.compose import DEFAULT_BG_COLOR, MODES, cover_resize, load_background
from RMBG.removal.pipeline import Remover, check_output

#: Output modes a video can have (side-by-side is a picture layout, not a video one).
VIDEO_MODES = tuple(mode for mode in MODES if mode != "side-by-side")

#: Frames per model call (batches of 8 run about twice as fast per frame as single frames on 2 cores).
DEFAULT_BATCH_SIZE = 8

#: Batches waiting between two stages; bounds the memory in flight.
QUEUE_BATCHES = 3


#: A clip whose decoded frames end this much (seconds, and fraction) before the
#: duration its container declares is reported as truncated.
TRUNCATED_SLACK_SECONDS = 0.5

TRUNCATED_SLACK_FRACTION = 0.1

_VP9 = {"crf": "20", "b": "0", "deadline": "realtime", "cpu-used": "8", "row-mt": "1"}

_X264 = {"crf": "18", "preset": "veryfast"}

_PRORES = {"profile": "4444"}


@dataclass(frozen=True)
class Encoding:
    """How the video stream of an output is encoded."""

    codec: str
    pix_fmt: str
    options: dict = field(default_factory=dict)


#: Output suffix -> encoding for ``--mode rgba`` (containers and codecs that carry alpha).
ALPHA_ENCODINGS = {
    ".webm": Encoding("libvpx-vp9", "yuva420p", _VP9),
    ".mkv": Encoding("libvpx-vp9", "yuva420p", _VP9),
    ".mov": Encoding("prores_ks", "yuva444p10le", _PRORES),
}

#: Output suffix -> encoding for the other modes.
PLAIN_ENCODINGS = {
    ".webm": Encoding("libvpx-vp9", "yuv420p", _VP9),
    ".mkv": Encoding("libx264", "yuv420p", _X264),
    ".mp4": Encoding("libx264", "yuv420p", _X264),
    ".m4v": Encoding("libx264", "yuv420p", _X264),
    ".mov": Encoding("libx264", "yuv420p", _X264),
}

#: Audio codec used where the output container cannot carry the input's.
FALLBACK_AUDIO = "libopus"

#: Frame layout of each mode's pictures, as PyAV names it.
FRAME_FORMATS = {"rgba": "rgba", "mask": "gray"}


class VideoReadError(ImageReadError):
    """An input video could not be used; ``str()`` names the file and why."""


def choose_encoding(out: str | Path, mode: str) -> Encoding:
    """The encoding of an output file for ``mode``, from its suffix; a ValueError naming it otherwise."""
    suffix = Path(out).suffix.lower()
    table = ALPHA_ENCODINGS if mode == "rgba" else PLAIN_ENCODINGS
    if suffix in table:
        return table[suffix]
    if mode == "rgba" and suffix in PLAIN_ENCODINGS:
        raise ValueError(f"{out}: a {suffix} video cannot carry an alpha channel; use .webm (VP9) or .mov "
                         f"(ProRes 4444) for --mode rgba, or another mode")
    raise ValueError(f"{out}: unknown video type {suffix or '(no suffix)'!r}; use one of {', '.join(table)}")


def check_paths(source: str | Path, out: str | Path, overwrite: bool = False) -> tuple[Path, Path]:
    """The input and output paths, when the input exists and the output may be written."""
    source, out = Path(source), Path(out)
    if not source.exists():
        raise VideoReadError(source, "file not found")
    if source.is_dir():
        raise VideoReadError(source, "is a folder, not a video")
    if out.resolve() == source.resolve():
        raise ValueError(f"{out}: is the input; choose another --out")
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out}: already exists (pass --overwrite to replace it)")
    return source, out


# ---------------------------------------------------------------------------
# Frames through the model: shared by ``video`` and ``stream``
# ---------------------------------------------------------------------------
class FramePipeline:
    """Masks and output pictures of consecutive frames: batched model calls, temporal
    smoothing of the small masks, then :class:`Remover`'s finish and compose."""

    def __init__(self, remover: Remover, mode: str = "rgba", bg_color=DEFAULT_BG_COLOR, bg_image=None,
                 smooth: float = DEFAULT_SMOOTH):
        if mode not in VIDEO_MODES:
            raise ValueError(f"mode {mode!r}: a video can be one of {', '.join(VIDEO_MODES)}")
        check_output(mode, bg_color, bg_image)
        self.remover, self.mode, self.bg_color = remover, mode, bg_color
        self.background = load_background(bg_image) if mode == "image" else None
        self.smoother = TemporalSmoother(smooth)
        self._sized: np.ndarray | None = None

    def small_masks(self, frames: list[np.ndarray], turns: int = 0) -> list[np.ndarray]:
        """Smoothed model-size masks of RGB ``frames``, in order; the model sees each frame
        turned ``turns`` quarter turns anticlockwise (upright), the masks come back unturned."""
        upright = [np.ascontiguousarray(np.rot90(frame, turns)) for frame in frames] if turns else frames
        smalls = self.remover.small_masks(upright)
        return [self.smoother(np.rot90(small, -turns) if turns else small, frame) for small, frame in zip(smalls, frames)]

    def picture(self, frame: np.ndarray, small: np.ndarray) -> np.ndarray:
        """The output picture of one frame as an array (``HxWx4``, ``HxW`` or ``HxWx3`` uint8)."""
        background = None
        if self.background is not None:
            height, width = frame.shape[:2]
            if self._sized is None or self._sized.shape[:2] != (height, width):
                self._sized = cover_resize(self.background, height, width)
            background = self._sized
        return np.asarray(self.remover.picture(frame, small, self.mode, self.bg_color, background))


# ---------------------------------------------------------------------------
# Three stages joined by queues
# ---------------------------------------------------------------------------
class _Stage(threading.Thread):
    """A daemon thread running ``work()``; its exception is kept for the main thread."""

    def __init__(self, name: str, work, stop: threading.Event):
        super().__init__(name=name, daemon=True)
        self.work, self.stop, self.error = work, stop, None

    def run(self) -> None:
        try:
            self.work()
        except Stopped:
            pass
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            self.error = exc
            self.stop.set()


def _rotation_turns(degrees: float) -> int:
    """Quarter turns anticlockwise (for :func:`numpy.rot90`) that make a frame upright, from
    its display rotation (FFmpeg's anticlockwise angle, as ``VideoFrame.rotation``)."""
    return int(round(float(degrees or 0) / 90.0)) % 4


@dataclass
class _Input:
    """An opened input video and what the output needs to know of it."""

    path: Path
    container: object
    video: object
    audio: list
    width: int
    height: int
    expected_frames: int


def open_video(path: Path) -> _Input:
    """Open ``path`` and check it is a video this tool can process; VideoReadError otherwise."""
    if path.stat().st_size == 0:
        raise VideoReadError(path, "empty file (0 bytes)")
    try:
        container = av.open(str(path))
    except av.error.EOFError:
        raise VideoReadError(path, "the file ends before its first frame (no frames, or truncated)") from None
    except av.error.FFmpegError as exc:
        raise VideoReadError(path, f"not a video, or a truncated or unreadable one ({exc.strerror or exc})") from None
    try:
        if not container.streams.video:
            kinds = ", ".join(sorted({s.type for s in container.streams})) or "no streams"
            raise VideoReadError(path, f"no video stream ({kinds})")
        video = container.streams.video[0]
        ctx = video.codec_context
        if ctx is None or ctx.codec is None:
            raise VideoReadError(path, "its video codec is not supported (no decoder)")
        width, height = ctx.width, ctx.height
        if width < 1 or height < 1:
            raise VideoReadError(path, f"video has no frame size ({width}x{height})")
        if width % 2 or height % 2:
            raise VideoReadError(path, f"odd frame size {width}x{height}: the video encoders need even sizes; "
                                 "crop or scale it first, e.g. ffmpeg -i IN -vf \"crop=trunc(iw/2)*2:trunc(ih/2)*2\" OUT")
        video.thread_type = "AUTO"
        rate = video.average_rate or video.guessed_rate or 0
        duration = float(container.duration / av.time_base) if container.duration else 0.0
        expected = video.frames or int(round(duration * float(rate)))
        audio = [s for s in container.streams.audio if s.codec_context is not None]
        return _Input(path, container, video, audio, width, height, expected)
    except BaseException:
        container.close()
        raise


def _reader(source: _Input, batch_size: int, out_q: queue.Queue, stop: threading.Event) -> None:
    """Stage 1: demux; decode video frames into batches ``("video", [(rgb, pts, time_base, rotation)])``,
    pass audio packets on as ``("audio", packet)`` in demux order; ``("end", count)`` last."""
    batch, count = [], 0
    try:
        for packet in source.container.demux(source.video, *source.audio):
            if packet.stream.type == "audio":
                if packet.dts is not None:
                    put(out_q, ("audio", packet), stop)
                continue
            for frame in packet.decode():
                batch.append((frame.to_ndarray(format="rgb24"), frame.pts, frame.time_base, frame.rotation))
                count += 1
                if len(batch) == batch_size:
                    put(out_q, ("video", batch), stop)
                    batch = []
    except av.error.FFmpegError as exc:
        raise VideoReadError(source.path, f"corrupt or truncated video data after frame {count} "
                             f"({exc.strerror or exc})") from None
    if batch:
        put(out_q, ("video", batch), stop)
    put(out_q, ("end", count), stop)


class _Writer:
    """Stage 3: finish, compose and encode frames; mux (or re-encode) audio; close the file."""

    def __init__(self, source: _Input, target: Path, encoding: Encoding, pipeline: FramePipeline, bar):
        self.source, self.target, self.encoding, self.pipeline, self.bar = source, target, encoding, pipeline, bar
        self.output = av.open(str(target), "w")
        self.video = None
        self.audio: dict[int, tuple[object, object]] = {}  # input index -> (output stream, decoder or None)
        self.pending: list = []  # audio packets before the header can be written
        self.frames = 0
        self.notes: list[str] = []
        self._next_pts = 0

    def _open_streams(self, rotation: float) -> None:
        src = self.source.video
        rate = src.average_rate or src.guessed_rate or Fraction(25)
        video = self.output.add_stream(self.encoding.codec, rate=rate, options=dict(self.encoding.options))
        video.width, video.height, video.pix_fmt = self.source.width, self.source.height, self.encoding.pix_fmt
        video.time_base = src.time_base
        video.codec_context.time_base = src.time_base
        if rotation:
            video.set_display_rotation(rotation)
        self.video = video
        supported = self.output.supported_codecs
        for stream in self.source.audio:
            name = stream.codec_context.name
            if name in supported:
                self.audio[stream.index] = (self.output.add_stream_from_template(stream), None)
            else:
                layout = stream.codec_context.layout.name if stream.codec_context.layout else "stereo"
                encoder = self.output.add_stream(FALLBACK_AUDIO, rate=48000, layout=layout)
                self.audio[stream.index] = (encoder, stream.codec_context)
                self.notes.append(f"audio {name} cannot go into {self.target.suffix}; re-encoded to Opus")

    def _mux_audio(self, packet) -> None:
        out, decoder = self.audio[packet.stream.index]
        if decoder is None:
            packet.stream = out
            self.output.mux(packet)
            return
        for frame in decoder.decode(packet):
            frame.pts = None
            self.output.mux(out.encode(frame))

    def video_batch(self, items, smalls) -> None:
        if self.video is None:
            self._open_streams(items[0][3])
            for packet in self.pending:
                self._mux_audio(packet)
            self.pending = []
        fmt = FRAME_FORMATS.get(self.pipeline.mode, "rgb24")
        for (rgb, pts, time_base, _), small in zip(items, smalls):
            frame = av.VideoFrame.from_ndarray(self.pipeline.picture(rgb, small), format=fmt)
            frame.pts = self._next_pts if pts is None else pts
            frame.time_base = time_base or self.video.time_base
            self._next_pts = frame.pts + 1
            self.output.mux(self.video.encode(frame))
            self.frames += 1
            self.bar.update(1)

    def audio_packet(self, packet) -> None:
        if self.video is None:
            self.pending.append(packet)
        else:
            self._mux_audio(packet)

    def close(self) -> None:
        if self.video is not None:
            self.output.mux(self.video.encode())
            for out, decoder in self.audio.values():
                if decoder is not None:
                    self.output.mux(out.encode())
        self.output.close()


def _check_complete(source: _Input, count: int, last_end: float) -> None:
    if count == 0:
        raise VideoReadError(source.path, "the video stream holds no frames")
    declared = float(source.container.duration / av.time_base) if source.container.duration else 0.0
    if declared and declared - last_end > max(TRUNCATED_SLACK_SECONDS, TRUNCATED_SLACK_FRACTION * declared):
        raise VideoReadError(source.path, f"truncated: frames end at {last_end:.2f} s of the {declared:.2f} s "
                             "the file declares")


def process_video(source: str | Path, out: str | Path, remover: Remover, mode: str = "rgba", bg_color=DEFAULT_BG_COLOR,
                  bg_image=None, smooth: float = DEFAULT_SMOOTH, overwrite: bool = False, progress: bool = True) -> dict:
    """Remove the background of every frame of ``source`` into ``out``; what was done, as a dict
    (``frames``, ``notes``). Raises VideoReadError (input), ValueError / FileExistsError
    (options, output) and leaves no output when anything fails or is interrupted."""
    source, out = check_paths(source, out, overwrite)
    encoding = choose_encoding(out, mode)
    pipeline = FramePipeline(remover, mode, bg_color, bg_image, smooth)
    opened = open_video(source)
    result: dict = {}
    try:
        write_atomic(out, lambda tmp: result.update(_run(opened, tmp, encoding, pipeline, progress)), overwrite)
    finally:
        opened.container.close()
    return result


def _run(source: _Input, tmp: Path, encoding: Encoding, pipeline: FramePipeline, progress: bool) -> dict:
    stop = threading.Event()
    decoded: queue.Queue = queue.Queue(QUEUE_BATCHES)
    masked: queue.Queue = queue.Queue(QUEUE_BATCHES)
    batch = pipeline.remover.batch_size
    bar = tqdm(total=source.expected_frames or None, desc=source.path.name, unit="frame", disable=not progress)
    writer = _Writer(source, tmp, encoding, pipeline, bar)
    state = {"count": 0, "end": 0.0}

    def write() -> None:
        while True:
            kind, *payload = get(masked, stop)
            if kind == "end":
                return
            getattr(writer, kind)(*payload)

    stages = [_Stage("decode", lambda: _reader(source, batch, decoded, stop), stop), _Stage("encode", write, stop)]
    for stage in stages:
        stage.start()
    try:
        while True:
            try:
                kind, payload = get(decoded, stop)
            except Stopped:
                break
            if kind == "video":
                smalls = pipeline.small_masks([item[0] for item in payload], _rotation_turns(payload[0][3]))
                last = payload[-1]
                if last[1] is not None and last[2] is not None:
                    state["end"] = float(last[1] * last[2]) + 1.0 / float(source.video.average_rate or 25)
                put(masked, ("video_batch", payload, smalls), stop)
            elif kind == "audio":
                put(masked, ("audio_packet", payload), stop)
            else:
                state["count"] = payload
                _check_complete(source, payload, state["end"])
                put(masked, ("end",), stop)
                break
        stages[1].join()
    except BaseException:
        stop.set()
        raise
    finally:
        for stage in stages:
            stage.join(timeout=5)
        bar.close()
        try:
            if not stop.is_set():
                writer.close()
            else:
                writer.output.close()
        except av.error.FFmpegError:
            if not stop.is_set():
                raise
    for stage in stages:
        if stage.error is not None:
            raise stage.error
    if stop.is_set():
        raise RuntimeError("video processing stopped")
    return {"frames": writer.frames, "notes": writer.notes}
