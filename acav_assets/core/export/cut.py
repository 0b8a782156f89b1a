"""Cutting one clip out of its video, exactly: a re-encode whose first frame is the picture shown
at ``start_s`` and whose sound starts at ``start_s`` to the sample, lasting ``end_s - start_s``.

Stream-copy cuts (what a keyframe-snapped segment list gives) start at the keyframe before the
window; here every output frame is the source frame shown at ``start_s + i / fps`` (constant
frame rate, ``round(duration × fps)`` frames) and the audio is resampled, then sliced to
``round(duration × sample_rate)`` samples (silence pads a track that ends early). Times are
relative to the video stream's first frame, as everywhere else in acav (see media.decode).
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

from acav_assets.core.media.decode import display_turns, upright, walk_window
from acav_assets.core.settings import setting
from acav_assets.core.statuses import ExportStatus

__all__ = ["CutConfig", "CutClip", "cut_clip", "cut_or_reason"]


@dataclass(frozen=True)
class CutConfig:
    """How exported clips are encoded. ``None`` keeps the source's value."""

    codec: str = setting("libx264", "video codec of the exported clips")
    crf: int = setting(23, "H.264 quality (lower = better, larger)")
    preset: str = setting("veryfast", "x264 speed preset")
    fps: float | None = setting(None, "output frame rate (unset: the source's average rate)")
    short_side: int | None = setting(None, "resize so the short side has this many pixels (unset: source size)")
    sample_rate: int | None = setting(None, "output audio rate (unset: the source's)")
    audio_codec: str = "aac"
    audio_bitrate: int = 128_000
    max_channels: int = 2  # more channels are mixed down to stereo
    with_arrays: bool = setting(False, "also store the decoded frames and waveform as .npy")

    def __post_init__(self):
        if self.fps is not None and not 1 <= self.fps <= 240:
            raise ValueError(f"fps must be in [1, 240], got {self.fps}")
        if self.short_side is not None and self.short_side < 16:
            raise ValueError(f"short_side must be >= 16, got {self.short_side}")
        if self.sample_rate is not None and not 8000 <= self.sample_rate <= 192_000:
            raise ValueError(f"sample_rate must be in [8000, 192000], got {self.sample_rate}")
        if not 0 <= self.crf <= 51:
            raise ValueError(f"crf must be in [0, 51], got {self.crf}")
        if self.max_channels not in (1, 2):
            raise ValueError(f"max_channels must be 1 or 2, got {self.max_channels}")


@dataclass
class CutClip:
    mp4: bytes
    fps: float
    n_frames: int
    width: int
    height: int
    sample_rate: int | None  # None: the source has no audio track
    n_samples: int
    frames: np.ndarray | None = None  # with_arrays: T×H×W×3 uint8
    audio: np.ndarray | None = None  # with_arrays: C×N float32

    @property
    def duration_s(self) -> float:
        return self.n_frames / self.fps


def _even(x: float) -> int:
    return max(2, int(x) // 2 * 2)


def _size(w: int, h: int, short: int | None) -> tuple[int, int]:
    if short is None:
        return _even(w), _even(h)
    scale = short / min(w, h)
    return _even(round(w * scale / 2) * 2), _even(round(h * scale / 2) * 2)


def cut_clip(path: str | os.PathLike, start_s: float, end_s: float, config: CutConfig = CutConfig()) -> CutClip:
    """Re-encode ``[start_s, end_s)`` of ``path`` into MP4 bytes (H.264 + AAC by default).
    Raises FileNotFoundError for a missing file and ValueError for a bad window or a file
    without video in the window (av errors are re-raised as ValueError with the path)."""
    if not end_s > start_s >= 0:
        raise ValueError(f"bad window [{start_s}, {end_s})")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{os.fspath(path)} does not exist (moved or deleted since it was curated)")
    try:
        with av.open(os.fspath(path)) as src:
            return _cut(src, start_s, end_s, config)
    except av.error.FFmpegError as exc:
        raise ValueError(f"{os.fspath(path)} [{start_s:.3f}, {end_s:.3f}): {exc}") from exc


def _cut(src, start_s: float, end_s: float, cfg: CutConfig) -> CutClip:
    if not src.streams.video:
        raise ValueError("no video stream")
    vs = src.streams.video[0]
    aus = src.streams.audio[0] if src.streams.audio else None
    vs.thread_type = "SLICE"
    t0 = float(vs.start_time * vs.time_base) if vs.start_time is not None else 0.0
    rate = cfg.fps or float(vs.average_rate or vs.guessed_rate or 25)
    fps = Fraction(rate).limit_denominator(1001)
    dur = end_s - start_s
    n_out = max(1, int(round(dur * float(fps))))
    targets = start_s + np.arange(n_out) / float(fps)
    w = h = 0  # the output size, as displayed: known from the first frame (a rotation swaps it)

    sr = cfg.sample_rate or (aus.codec_context.sample_rate if aus is not None else None)
    channels = min(cfg.max_channels, aus.codec_context.channels or 1) if aus is not None else 0
    layout = "stereo" if channels == 2 else "mono"

    buf = io.BytesIO()
    out = av.open(buf, "w", format="mp4")
    ovs = oas = None

    def open_streams(first) -> None:
        """The output streams, sized by the first frame as it is displayed (both streams are
        added before anything is muxed)."""
        nonlocal ovs, oas, w, h
        fw, fh = first.width, first.height
        w, h = _size(*((fh, fw) if display_turns(first) % 2 else (fw, fh)), cfg.short_side)
        ovs = out.add_stream(cfg.codec, rate=fps)
        ovs.width, ovs.height, ovs.pix_fmt = w, h, "yuv420p"
        ovs.codec_context.thread_count = 1  # parallelism comes from clips side by side
        if cfg.codec == "libx264":
            ovs.options = {"crf": str(cfg.crf), "preset": cfg.preset}
        if aus is not None:
            oas = out.add_stream(cfg.audio_codec, rate=sr, layout=layout)
            oas.bit_rate = cfg.audio_bitrate

    frames_rgb = [] if cfg.with_arrays else None
    j = 0  # next output frame
    prev = None

    def emit(frame, upto: float) -> None:
        nonlocal j
        img = None
        while j < n_out and targets[j] < upto:
            if ovs is None:
                open_streams(frame)
            if img is None:
                if display_turns(frame):  # stored turned: turn the picture, the output has no rotation
                    rgb = upright(frame, w, h)
                    img = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
                else:
                    same = frame.width == w and frame.height == h and frame.format.name == "yuv420p"
                    img = frame if same else frame.reformat(width=w, height=h, format="yuv420p", interpolation="AREA")
                    if frames_rgb is not None:
                        rgb = img.to_ndarray(format="rgb24")
            img.pts = j  # the encoder copies the picture: one converted frame may fill several slots
            img.time_base = 1 / fps
            for p in ovs.encode(img):
                out.mux(p)
            if frames_rgb is not None:
                frames_rgb.append(rgb)
            j += 1

    resampler = av.AudioResampler(format="fltp", layout=layout, rate=sr) if aus is not None else None
    chunks: list[np.ndarray] = []
    audio_t0 = None
    for kind, t, item in walk_window(src, vs, aus, t0, start_s, end_s, resampler, lambda: j >= n_out):
        if kind == "audio":
            audio_t0 = t
            chunks.append(item.reshape(channels, -1))
        elif prev is not None:
            emit(prev[1], t)  # the previous frame is shown until t
            prev = (t, item)
        else:
            if t > targets[0]:
                emit(item, t)  # the window starts before the first frame: show the first
            prev = (t, item)
    if prev is None:
        out.close()
        raise ValueError(f"no video frame in [{start_s:.3f}, {end_s:.3f})")
    emit(prev[1], math.inf)  # the stream ended inside the window: hold the last frame
    for p in ovs.encode():
        out.mux(p)

    n_need = int(round(dur * sr)) if sr else 0
    audio = None
    if oas is not None:
        audio = np.zeros((channels, n_need), np.float32)
        if chunks and audio_t0 is not None:
            allsamples = np.concatenate(chunks, axis=1)
            i0 = int(round((start_s - audio_t0) * sr))
            s0, d0 = max(i0, 0), max(-i0, 0)
            n = max(0, min(n_need - d0, allsamples.shape[1] - s0))
            audio[:, d0 : d0 + n] = allsamples[:, s0 : s0 + n]
        step = oas.codec_context.frame_size or 1024
        for k in range(0, n_need, step):
            af = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio[:, k : k + step]), format="fltp", layout=layout)
            af.sample_rate, af.pts = sr, k
            for p in oas.encode(af):
                out.mux(p)
        for p in oas.encode():
            out.mux(p)
    out.close()
    return CutClip(
        buf.getvalue(),
        float(fps),
        n_out,
        w,
        h,
        sr if oas is not None else None,
        n_need if oas else 0,
        np.stack(frames_rgb) if frames_rgb else None,
        audio if cfg.with_arrays else None,
    )


def cut_or_reason(job: tuple[str, float, float, CutConfig]) -> CutClip | tuple[str, str]:
    """``cut_clip(*job)``, or ``(status, error)`` when it cannot be cut: ``missing_media`` or
    ``decode_error`` (an export worker's task; this module imports only av and numpy)."""
    path, start, end, cfg = job
    try:
        return cut_clip(path, start, end, cfg)
    except FileNotFoundError as exc:
        return (ExportStatus.MISSING_MEDIA, str(exc))
    except (ValueError, OSError) as exc:
        return (ExportStatus.DECODE_ERROR, str(exc))
