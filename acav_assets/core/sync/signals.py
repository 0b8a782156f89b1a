"""Decode what a synchronisation estimate needs from a clip window, in one pass: every video frame
as a small grey thumbnail with its time, and the sound as mono float samples.

Motion energy needs every frame (not the 32 the embedding samples) but only a coarse picture.
For 8-bit YUV frames (nearly every upload) the thumbnail is read straight from the decoded luma
plane, which *is* the grey picture: four samples per cell of a grid about ``thumb_size`` large,
averaged, without copying the frame; other pixel formats go through FFmpeg's scaler (one context
for the window). Measured on 160x120 H.264: the scaler costs about as much again as decoding, the
luma grid a tenth of that. Times are seconds from the window's start, taken from the frames'
timestamps (variable frame rate needs no special case). The display rotation is ignored: a
turned picture moves as much as an upright one. Seeking and the demux loop are
:func:`acav_assets.core.media.decode.walk_window`'s, shared with clip decoding and export.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from acav_assets.core.media.decode import DecodeError, walk_window

__all__ = ["SyncSignals", "decode_sync_signals", "motion_energy"]


@dataclass
class SyncSignals:
    thumbnails: np.ndarray  # (N, h, w) uint8 grey, every frame shown in the window (and the one before it)
    frame_times: np.ndarray  # (N,) seconds from the window's start (the first may be < 0)
    key_frames: np.ndarray  # (N,) bool: the frame is a key frame (coded without reference to others)
    audio: np.ndarray | None  # mono float32 from the window's start, None when the file has no audio
    sample_rate: int
    duration_s: float  # the window's length


def decode_sync_signals(
    path: str | os.PathLike,
    start_s: float,
    end_s: float,
    *,
    thumb_size: tuple[int, int] = (48, 36),
    sample_rate: int = 16_000,
    skip_loop_filter: bool = True,
) -> SyncSignals:
    """Decode the window ``[start_s, end_s)`` of ``path``: thumbnails of ``thumb_size`` (width,
    height) and mono audio at ``sample_rate`` (zeros where the stream does not cover the window).
    ``skip_loop_filter`` decodes without the deblocking filter (H.264, HEVC): about a fifth
    cheaper on uploads encoded with it, and invisible in a 48x36 thumbnail. Raises
    :class:`DecodeError` when the file has no video frame in the window."""
    if not end_s > start_s >= 0:
        raise ValueError(f"bad window [{start_s}, {end_s})")
    try:
        with av.open(os.fspath(path)) as container:
            return _decode(container, start_s, end_s, thumb_size, sample_rate, skip_loop_filter)
    except av.error.FFmpegError as exc:
        raise DecodeError(f"{os.fspath(path)} [{start_s:.2f}, {end_s:.2f}): {exc}") from exc


def _decode(container, start_s, end_s, thumb_size, sr, skip_loop_filter) -> SyncSignals:
    if not container.streams.video:
        raise DecodeError("no video stream")
    vs = container.streams.video[0]
    aus = container.streams.audio[0] if container.streams.audio else None
    vs.thread_type = "SLICE"
    vs.codec_context.thread_count = 1
    if skip_loop_filter:
        vs.codec_context.options = {"skip_loop_filter": "all"}
    t0 = float(vs.start_time * vs.time_base) if vs.start_time is not None else 0.0
    w, h = thumb_size
    resampler = av.AudioResampler(format="flt", layout="mono", rate=sr) if aus is not None else None
    scaler = VideoReformatter()  # for other pixel formats: one context for the whole window
    thumbs: list[np.ndarray] = []
    times: list[float] = []
    keys: list[bool] = []
    last_t = -np.inf
    chunks: list[np.ndarray] = []
    audio_t0: float | None = None

    for kind, t, item in walk_window(container, vs, aus, t0, start_s, end_s, resampler, lambda: last_t >= end_s):
        if kind == "audio":
            audio_t0 = t
            chunks.append(item.reshape(-1))
            continue
        last_t = t
        if t >= end_s:
            continue
        if t <= start_s and times and times[-1] <= 0:
            thumbs.pop()  # keep only the last frame at or before the window's start
            times.pop()
            keys.pop()
        thumbs.append(_thumbnail(item, w, h, scaler))
        times.append(t - start_s)
        keys.append(bool(item.key_frame))
    if not thumbs:
        raise DecodeError(f"no video frame in [{start_s:.2f}, {end_s:.2f})")
    audio = None
    if aus is not None:
        n_need = int(round((end_s - start_s) * sr))
        audio = np.zeros(n_need, np.float32)
        if chunks and audio_t0 is not None:
            samples = np.concatenate(chunks)
            i0 = int(round((start_s - audio_t0) * sr))
            src0, dst0 = max(i0, 0), max(-i0, 0)
            n = max(0, min(n_need - dst0, samples.size - src0))
            audio[dst0 : dst0 + n] = samples[src0 : src0 + n]
    return SyncSignals(np.stack(thumbs), np.asarray(times), np.asarray(keys, bool), audio, sr, end_s - start_s)


# 8-bit pixel formats whose first plane is the luma (the grey picture) at full resolution
_LUMA_FIRST = frozenset(
    ("yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "yuv440p", "yuvj440p", "yuv411p", "yuv410p")
    + ("nv12", "nv21", "nv16", "gray", "yuva420p")
)


def _thumbnail(frame, w: int, h: int, scaler: VideoReformatter) -> np.ndarray:
    """A grey thumbnail of about ``w`` x ``h``: from the luma plane when there is one (the mean of
    four samples spread over each grid cell), else scaled by FFmpeg to exactly ``w`` x ``h``."""
    fw, fh = frame.width, frame.height
    if frame.format.name not in _LUMA_FIRST or fw < 2 * w or fh < 2 * h:
        return scaler.reformat(frame, width=w, height=h, format="gray", interpolation="AREA").to_ndarray()
    plane = frame.planes[0]
    y = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)
    sx, sy = fw // w, fh // h
    x0, y0 = (fw - sx * w) // 2, (fh - sy * h) // 2  # the grid centred on the picture
    out = np.zeros((h, w), np.uint16)
    for dy in (y0, y0 + sy // 2):
        for dx in (x0, x0 + sx // 2):
            out += y[dy : dy + sy * h : sy, dx : dx + sx * w : sx]
    return (out >> 2).astype(np.uint8)


def motion_energy(
    thumbnails: np.ndarray,
    frame_times: np.ndarray,
    dead_zone: float = 2.0,
    key_frames: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """How much the picture changes between consecutive thumbnails: the mean absolute grey
    difference (0-255 scale) beyond a ``dead_zone`` (changes that small are codec and sensor noise),
    each placed midway between the two frames' times (the change happened somewhere between them,
    on average in the middle). Returns ``(motion, motion_times)``, one shorter than the frames.

    With ``key_frames`` (a flag per frame), a change *into* a key frame counts no more than the
    larger change next to it: a key frame re-codes the whole picture, so on a still, grainy
    picture it shows a change every GOP that the scene never made, while a real event also moves
    the frames around it. Skipped when most frames are key frames (intra-only codecs)."""
    if len(thumbnails) < 2:
        return np.zeros(0), np.zeros(0)
    g = thumbnails.astype(np.int16)
    d = np.abs(np.diff(g, axis=0)).astype(np.float32)
    if dead_zone > 0:
        d = np.maximum(d - np.float32(dead_zone), 0)
    motion = d.mean(axis=(1, 2)).astype(np.float64)
    if key_frames is not None and motion.size >= 3:
        into_key = np.flatnonzero(np.asarray(key_frames, bool)[1:])
        if 0 < into_key.size < motion.size / 2:
            padded = np.pad(motion, 1)
            motion[into_key] = np.minimum(motion[into_key], np.maximum(padded[into_key], padded[into_key + 2]))
    times = np.asarray(frame_times, float)
    return motion, (times[1:] + times[:-1]) / 2
