"""Test clips with a known answer: a pan and zoom over a photo (and its mask), a sine tone.

Made from a photo and its ground-truth mask, every frame's true mask is known,
so :mod:`RMBG.apps.video.pipeline` can be measured (tests, the default ``--smooth``, the
notebook's before/after frames) without any clip on disk.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import av
import cv2
import numpy as np

#: Frames per second and length of the clips the tests and the notebook make.
CLIP_FPS = 24
CLIP_SECONDS = 2.0
#: Zoom at the clip's end (the crop shrinks to 1/ZOOM of the photo) and the pan,
#: as a fraction of the photo's width, from the first frame to the last.
END_ZOOM = 1.2
PAN_FRACTION = 0.1
#: The sine tone: pitch, loudness, sample rate.
TONE_HZ = 440.0
TONE_LEVEL = 0.3
AUDIO_RATE = 48000


def pan_zoom(image: np.ndarray, mask: np.ndarray | None, count: int, size: tuple[int, int],
             zoom: float = END_ZOOM, pan: float = PAN_FRACTION) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
    """``count`` frames of ``size`` ``(width, height)`` panning and zooming over ``image``, and
    the same view of ``mask`` (float32 in [0, 1]) for each, or None without a mask.

    The view starts as the largest centred crop of the frame's aspect and ends
    ``zoom`` times closer, shifted by ``pan`` of the photo's width.
    """
    width, height = size
    img_h, img_w = image.shape[:2]
    base = min(img_w / width, img_h / height)  # photo pixels per frame pixel at zoom 1
    frames, masks = [], []
    for k in range(count):
        t = k / max(1, count - 1)
        scale = base / (1.0 + (zoom - 1.0) * t)
        view_w = width * scale
        cx = img_w / 2 + (t - 0.5) * pan * img_w
        cx = min(max(cx, view_w / 2), img_w - view_w / 2)
        cy = img_h / 2
        matrix = np.array([[1 / scale, 0, width / 2 - cx / scale], [0, 1 / scale, height / 2 - cy / scale]], np.float32)
        frames.append(cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_AREA if scale > 1 else cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_REFLECT))
        if mask is None:
            masks.append(None)
        else:
            m = cv2.warpAffine(np.asarray(mask, np.float32), matrix, (width, height), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT)
            masks.append(np.clip(m, 0.0, 1.0))
    return frames, masks


def still(image: np.ndarray, mask: np.ndarray | None, count: int, size: tuple[int, int], noise: float = 6.0,
          seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
    """A static clip: the photo's first pan-zoom view ``count`` times, with fresh Gaussian
    noise of ``noise`` grey levels per frame (a camera on a tripod); the mask never moves."""
    frames, masks = pan_zoom(image, mask, 1, size)
    rng = np.random.default_rng(seed)
    noisy = [np.clip(frames[0] + rng.normal(0.0, noise, frames[0].shape), 0, 255).astype(np.uint8) for _ in range(count)]
    return noisy, masks * count


def sine_tone(seconds: float, rate: int = AUDIO_RATE, hz: float = TONE_HZ) -> np.ndarray:
    """A mono sine tone, ``1xN`` float32."""
    t = np.arange(int(round(seconds * rate))) / rate
    return (TONE_LEVEL * np.sin(2 * np.pi * hz * t)).astype(np.float32)[None]


def write_clip(path: str | os.PathLike, frames: Sequence[np.ndarray], fps: int = CLIP_FPS, audio: str | None = "aac",
               video: str = "libx264", rate: int = AUDIO_RATE, pix_fmt: str = "yuv420p") -> Path:
    """Encode RGB ``frames`` to ``path`` at ``fps``, with a sine tone as long as the clip in
    the ``audio`` codec (``aac``, ``libopus``, ...) or no audio when None."""
    path = Path(path)
    height, width = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(video, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        sound = container.add_stream(audio, rate=rate, layout="mono") if audio else None
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")))
        container.mux(stream.encode())
        if sound is not None:
            tone = sine_tone(len(frames) / fps, rate)
            step = sound.codec_context.frame_size or 1024
            for start in range(0, tone.shape[1], step):
                chunk = av.AudioFrame.from_ndarray(np.ascontiguousarray(tone[:, start : start + step]), format="fltp",
                                                   layout="mono")
                chunk.sample_rate, chunk.pts = rate, start
                container.mux(sound.encode(chunk))
            container.mux(sound.encode())
    return path


def demo_before_after(count: int = 4, size: tuple[int, int] = (320, 180), seconds: float = 1.0, mode: str = "rgba",
                      model=None, folder: str | os.PathLike | None = None) -> tuple[list[np.ndarray], list[np.ndarray], Path]:
    """A pan-and-zoom clip over the first demo photo (:func:`RMBG.apps.demo.sample_sources`), with a
    tone, run through ``python -m RMBG video``'s pipeline; ``count`` evenly spaced input frames
    (RGB), the same output frames (RGBA for ``rgba``, as decoded with the libvpx decoder) and
    the output .webm (in ``folder``, a temporary one by default). For the remove notebook."""
    import tempfile

    from RMBG.apps.demo import sample_sources
    from RMBG.apps.video.pipeline import FRAME_FORMATS, process_video
    from RMBG.images.io import read_image
    from RMBG.removal.pipeline import Remover

    sources = sample_sources()
    if not sources:
        raise RuntimeError("no demo photos found in the installed scikit-image or matplotlib")
    folder = Path(tempfile.mkdtemp(prefix="rmbg-clip-") if folder is None else folder)
    frames, _ = pan_zoom(read_image(next(iter(sources.values()))), None, int(round(seconds * CLIP_FPS)), size)
    clip = write_clip(folder / "demo.mp4", frames)
    out = folder / f"demo-{mode}.webm"
    process_video(clip, out, Remover(model, batch_size=8), mode, overwrite=True, progress=False)
    with av.open(str(out)) as container:
        decoder = av.CodecContext.create("libvpx-vp9", "r")
        fmt = FRAME_FORMATS.get(mode, "rgb24")
        outputs = [f.to_ndarray(format=fmt) for p in container.demux(container.streams.video[0])
                   for f in decoder.decode(p if p.size else None)]
    picks = np.linspace(0, len(frames) - 1, count).round().astype(int)
    return [frames[k] for k in picks], [outputs[k] for k in picks], out
