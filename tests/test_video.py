"""``python -m RMBG video`` / ``stream`` on clips made here from shared photos and masks.

A pan and zoom over a photo (2 s at 24 fps, a sine tone as audio) has a known
mask in every frame, so the outputs are checked against the truth; every
stream field is read back with PyAV (what ffprobe would print).
"""

from __future__ import annotations

import io

import av
import numpy as np
import pytest

from RMBG.apps.video.clips import CLIP_FPS, CLIP_SECONDS, pan_zoom, still, write_clip
from RMBG.apps.video.pipeline import (
    FramePipeline,
    VideoReadError,
    choose_encoding,
    process_video,
)
from RMBG.apps.video.stream import run_stream
from RMBG.apps.video.temporal import (
    TemporalSmoother,
    binary_entropy,
    flicker,
    mask_error,
)
from RMBG.commands.video import main
from RMBG.images.io import read_image, read_mask
from RMBG.removal.foreground import estimate_foreground
from RMBG.removal.pipeline import Remover

SIZE = (160, 120)
FRAMES = int(CLIP_FPS * CLIP_SECONDS)
#: A photo the default model cuts out well at every step of the pan (mean error about 0.01).
PHOTO = "person_0010"
#: Mean |alpha - truth| the outputs must stay under (the model alone: about 0.011).
MAX_ERROR = 0.03


@pytest.fixture(scope="module")
def remover() -> Remover:
    return Remover(batch_size=8)


@pytest.fixture(scope="module")
def photo(shared_data):
    image_path = shared_data / "people" / "images" / f"{PHOTO}.jpg"
    if not image_path.is_file():
        pytest.skip(f"{image_path} is absent")
    return read_image(image_path), read_mask(shared_data / "people" / "masks" / f"{PHOTO}.png")


@pytest.fixture(scope="module")
def moving(photo, tmp_path_factory):
    """The pan-and-zoom clip as .mkv (H.264 + Opus) and .mp4 (H.264 + AAC), with its true masks."""
    frames, truths = pan_zoom(*photo, FRAMES, SIZE)
    folder = tmp_path_factory.mktemp("moving")
    return {"mkv": write_clip(folder / "pan.mkv", frames, audio="libopus"),
            "mp4": write_clip(folder / "pan.mp4", frames[:12], audio="aac"),
            "frames": frames, "truths": truths}


def decode(path, decoder: str | None = None, fmt: str = "rgba") -> list[np.ndarray]:
    """Every video frame of ``path`` as an array (through the named decoder when given)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if decoder is None:
            return [frame.to_ndarray(format=fmt) for frame in container.decode(stream)]
        codec = av.CodecContext.create(decoder, "r")
        return [frame.to_ndarray(format=fmt) for packet in container.demux(stream)
                for frame in codec.decode(packet if packet.size else None)]


def fields(path) -> dict:
    """The ffprobe fields the tests compare, read with PyAV."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        out = {"duration": container.duration / av.time_base, "video_codec": video.codec_context.name,
               "pix_fmt": video.codec_context.pix_fmt, "rate": video.average_rate,
               "frames": sum(1 for _ in container.decode(video=0)), "alpha_mode": video.metadata.get("alpha_mode")}
    with av.open(str(path)) as container:
        if container.streams.audio:
            audio = container.streams.audio[0]
            packets = [p for p in container.demux(audio) if p.dts is not None]
            out.update(audio_codec=audio.codec_context.name, sample_rate=audio.codec_context.sample_rate,
                       audio_seconds=float((packets[-1].pts + packets[-1].duration - packets[0].pts) * audio.time_base))
    return out


def test_webm_rgba_keeps_timing_and_sound_and_its_alpha_matches_the_truth(moving, remover, tmp_path):
    out = tmp_path / "cut.webm"
    assert main([str(moving["mkv"]), "--out", str(out), "--mode", "rgba", "--quiet"]) == 0
    src, got = fields(moving["mkv"]), fields(out)
    assert got["frames"] == src["frames"] == FRAMES
    assert got["duration"] == pytest.approx(src["duration"], abs=0.05)
    assert got["rate"] == src["rate"] == CLIP_FPS
    assert (got["video_codec"], got["alpha_mode"]) == ("vp9", "1")
    assert got["audio_codec"] == src["audio_codec"] == "opus"
    assert got["sample_rate"] == src["sample_rate"]
    assert got["audio_seconds"] == pytest.approx(src["audio_seconds"], abs=0.03)
    alphas = [frame[..., 3] / 255.0 for frame in decode(out, decoder="libvpx-vp9")]
    assert len(alphas) == FRAMES
    assert mask_error(alphas, moving["truths"]) < MAX_ERROR
    # the native vp9 decoder ignores the alpha: what the libvpx decoder found is really the side channel
    assert np.mean([frame[..., 3].mean() for frame in decode(out)]) == 255


def test_mov_prores_4444_remuxes_aac(moving, remover, tmp_path):
    out = tmp_path / "cut.mov"
    process_video(moving["mp4"], out, remover, "rgba", progress=False)
    src, got = fields(moving["mp4"]), fields(out)
    assert (got["video_codec"], got["frames"]) == ("prores", 12)
    assert got["pix_fmt"].startswith("yuva444p")
    assert (got["audio_codec"], got["sample_rate"]) == (src["audio_codec"], src["sample_rate"]) == ("aac", 48000)
    assert got["audio_seconds"] == pytest.approx(src["audio_seconds"], abs=0.03)
    alphas = [frame[..., 3] / 255.0 for frame in decode(out)]
    assert mask_error(alphas, moving["truths"][:12]) < MAX_ERROR


def test_aac_into_webm_is_reencoded_to_opus_with_a_note(moving, remover, tmp_path):
    result = process_video(moving["mp4"], tmp_path / "grey.webm", remover, "mask", progress=False)
    got = fields(tmp_path / "grey.webm")
    assert got["audio_codec"] == "opus" and got["frames"] == 12
    assert any("Opus" in note for note in result["notes"])
    greys = decode(tmp_path / "grey.webm", fmt="gray")
    assert mask_error([g / 255.0 for g in greys], moving["truths"][:12]) < MAX_ERROR


def test_no_audio_clip_and_color_mode(photo, remover, tmp_path):
    frames, truths = pan_zoom(*photo, 8, SIZE)
    clip = write_clip(tmp_path / "silent.mp4", frames, audio=None)
    out = tmp_path / "green.mp4"
    process_video(clip, out, remover, "color", bg_color="#00FF00", progress=False)
    got = fields(out)
    assert "audio_codec" not in got and got["frames"] == 8 and got["video_codec"] == "h264"
    first = decode(out, fmt="rgb24")[0].astype(int)
    background = truths[0] < 0.05
    assert np.abs(first[background] - [0, 255, 0]).mean() < 40  # green where the truth says background


def test_rotation_metadata_is_kept_and_the_model_sees_frames_upright(photo, remover, tmp_path):
    frames, truths = pan_zoom(*photo, 4, SIZE)
    stored = [np.ascontiguousarray(np.rot90(frame, -1)) for frame in frames]  # shown upright after a 90 degree turn
    clip = tmp_path / "turned.mp4"
    with av.open(str(clip), "w") as container:
        stream = container.add_stream("libx264", rate=CLIP_FPS)
        stream.width, stream.height, stream.pix_fmt = SIZE[1], SIZE[0], "yuv420p"
        stream.set_display_rotation(90)
        for frame in stored:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    out = tmp_path / "turned.mov"
    process_video(clip, out, remover, "rgba", progress=False)
    with av.open(str(out)) as container:
        assert next(container.decode(video=0)).rotation == 90
    alphas = [np.rot90(frame[..., 3], 1) / 255.0 for frame in decode(out)]
    assert mask_error(alphas, truths) < MAX_ERROR


def test_smoothing_lowers_flicker_on_a_static_clip_and_keeps_accuracy_on_a_moving_one(photo, moving, remover, tmp_path):
    still_frames, still_truths = still(*photo, 16, SIZE)
    still_clip = write_clip(tmp_path / "still.mp4", still_frames, audio=None)
    results = {}
    for name, path, truths in (("static", still_clip, still_truths), ("moving", moving["mkv"], moving["truths"])):
        frames = decode(path, fmt="rgb24")[:24]  # the first second of the pan is enough
        truths = truths[: len(frames)]
        smalls = remover.small_masks(frames)
        for smooth in (0.0, 0.7):
            alphas = [remover.finish(f, s) for f, s in zip(frames, TemporalSmoother(smooth).run(smalls, frames))]
            results[name, smooth] = (flicker(alphas), mask_error(alphas, truths))
    assert results["static", 0.7][0] < 0.8 * results["static", 0.0][0]
    assert results["moving", 0.7][1] <= results["moving", 0.0][1] + 0.001
    assert results["moving", 0.0][1] < MAX_ERROR


def test_smoother_follows_confident_pixels_and_resets_on_a_cut(photo):
    assert binary_entropy(np.array([0.0, 0.5, 1.0])) == pytest.approx([0.0, 1.0, 0.0], abs=1e-3)
    smoother = TemporalSmoother(0.7)
    smoother(np.full((4, 4), 0.0, np.float32))
    assert smoother(np.full((4, 4), 1.0, np.float32)) == pytest.approx(1.0, abs=1e-3)  # sure: no ghost
    assert float(smoother(np.full((4, 4), 0.5, np.float32))[0, 0]) == pytest.approx(0.85, abs=1e-4)  # unsure: leans back
    frames, _ = pan_zoom(*photo, 12, SIZE)
    other = np.ascontiguousarray(255 - frames[0][::-1])
    cutter = TemporalSmoother(0.7)
    cutter.run([np.zeros((4, 4), np.float32)] * 13, frames + [other])
    assert cutter.cuts == 1  # the pan is one shot, the jump to another picture a cut


def test_stream_writes_raw_frames_of_the_mode(photo, remover):
    frames, truths = pan_zoom(*photo, 3, SIZE)
    width, height = SIZE
    out = io.BytesIO()
    count = run_stream(width, height, FramePipeline(remover, "rgba"), io.BytesIO(b"".join(f.tobytes() for f in frames)), out)
    assert count == 3
    rgba = np.frombuffer(out.getvalue(), np.uint8).reshape(3, height, width, 4)
    # the frames' colours, with the subject's estimated colours at soft edges (as `remove` writes them)
    assert np.array_equal(rgba[..., :3], np.stack([estimate_foreground(f, a) for f, a in zip(frames, rgba[..., 3])]))
    assert mask_error([a / 255.0 for a in rgba[..., 3]], truths) < MAX_ERROR
    with pytest.raises(ValueError, match="ended inside frame 2"):
        run_stream(width, height, FramePipeline(remover, "mask"), io.BytesIO(frames[0].tobytes() + b"x" * 10), io.BytesIO())


def _bad_inputs(moving, folder):
    """Each kind of bad input, with words its error must contain."""
    (folder / "notes.mp4").write_text("not a video at all\n")
    data = moving["mkv"].read_bytes()
    (folder / "cut.mkv").write_bytes(data[: len(data) // 2])
    mp4 = moving["mp4"].read_bytes()
    (folder / "cut.mp4").write_bytes(mp4[: len(mp4) // 2])
    with av.open(str(folder / "empty.mkv"), "w") as container:
        stream = container.add_stream("libx264", rate=CLIP_FPS)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        container.start_encoding()
    write_clip(folder / "odd.mkv", [np.zeros((121, 161, 3), np.uint8)] * 3, audio=None, pix_fmt="yuv444p")
    (folder / "zero.mp4").write_bytes(b"")
    return {"notes.mp4": "not a video", "cut.mkv": "truncated", "cut.mp4": "truncated",
            "empty.mkv": "no frames", "odd.mkv": "odd frame size 161x121", "zero.mp4": "empty file"}


def test_each_bad_input_is_named_with_its_reason_and_leaves_nothing(moving, remover, tmp_path, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    for name, words in _bad_inputs(moving, bad).items():
        out = tmp_path / "out" / f"{name}.webm"
        with pytest.raises(VideoReadError, match=words) as caught:
            process_video(bad / name, out, remover, "rgba", progress=False)
        assert str(bad / name) in str(caught.value)
        assert not out.parent.exists() or not list(out.parent.iterdir())  # no output, no temporary file
    assert main([str(bad / "notes.mp4"), "--out", str(tmp_path / "cli.webm"), "--quiet"]) == 1
    assert f"video: {bad / 'notes.mp4'}: not a video" in capsys.readouterr().err
    assert not (tmp_path / "cli.webm").exists()


def test_outputs_and_options_are_refused_before_any_work(moving, remover, tmp_path, capsys):
    with pytest.raises(ValueError, match="cannot carry an alpha channel"):
        choose_encoding(tmp_path / "x.mp4", "rgba")
    existing = tmp_path / "there.webm"
    existing.write_bytes(b"keep me")
    assert main([str(moving["mkv"]), "--out", str(existing), "--quiet"]) == 2
    assert "already exists" in capsys.readouterr().err and existing.read_bytes() == b"keep me"
    assert main([str(moving["mkv"]), "--out", str(moving["mkv"]), "--overwrite", "--quiet"]) == 2
    assert "is the input" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stopped:
        main([str(moving["mkv"]), "--out", str(tmp_path / "a.webm"), "--smooth", "1.5", "--quiet"])
    assert stopped.value.code == 2 and "smooth 1.5" in capsys.readouterr().err
    assert main([str(moving["mkv"]), "--out", str(tmp_path / "b.avi"), "--quiet"]) == 2
    assert "unknown video type" in capsys.readouterr().err
    assert not (tmp_path / "a.webm").exists()


def test_an_interrupted_run_leaves_no_output(moving, remover, tmp_path, monkeypatch):
    calls = []

    def interrupt(self, frames, turns=0):
        calls.append(len(frames))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return [np.zeros((remover.input_size,) * 2, np.float32) for _ in frames]

    monkeypatch.setattr(FramePipeline, "small_masks", interrupt)
    out = tmp_path / "out" / "cut.webm"
    with pytest.raises(KeyboardInterrupt):
        process_video(moving["mkv"], out, remover, "rgba", progress=False)
    assert len(calls) == 2
    assert list(out.parent.iterdir()) == []  # neither the output nor its temporary file


def test_the_notebook_clip_shows_input_frames_beside_their_cut_out_frames(tmp_path):
    """``RMBG.apps.video.clips.demo_before_after`` (the remove notebook's video cell): picked frames of a clip
    made from a demo photo, and the same frames of the rgba video, alpha decoded with libvpx."""
    from RMBG.apps.video.clips import demo_before_after

    before, after, clip = demo_before_after(count=3, size=(160, 96), seconds=0.5, folder=tmp_path)
    assert clip.parent == tmp_path and clip.suffix == ".webm" and clip.stat().st_size > 0
    assert len(before) == len(after) == 3
    for frame, output in zip(before, after):
        assert frame.shape == (96, 160, 3) and output.shape == (96, 160, 4)
        alpha = output[..., 3].astype(np.float32) / 255
        assert (alpha > 0.9).mean() > 0.05 and (alpha < 0.1).mean() > 0.05  # a cut-out, not a flat matte
        opaque = alpha > 0.9
        # where the subject is kept its colours come through (within video coding loss)
        assert np.abs(output[..., :3][opaque].astype(int) - frame[opaque].astype(int)).mean() < 12
