"""Decode clip windows: T frames spread over the window, and the window's audio, mono 16 kHz.

Decoding is the most expensive CPU work of the pipeline, so a window is read with one seek to
the key frame before it and one demux pass over its packets, both streams together, stopping
as soon as the window is covered. Only the T chosen frames are converted to RGB and resized
(by FFmpeg's scaler). Times are seconds from the first video frame, so streams whose start
time is not zero (MPEG-TS, edited MP4) need no special case; frames are chosen by timestamp,
never by index, so variable frame rate needs none either.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import av
import numpy as np

__all__ = [
    "DecodeConfig",
    "DecodedClip",
    "decode_clip",
    "iter_decoded",
    "DecodeError",
    "walk_window",
    "display_turns",
    "upright",
]

# Audio packets may be muxed up to this far from video packets of the same time.
_AUDIO_MARGIN_S = 0.5


class DecodeError(RuntimeError):
    """A window could not be decoded (the file changed, or is damaged inside)."""


@dataclass(frozen=True)
class DecodeConfig:
    n_frames: int = 32  # frames spread evenly over the window (reference: 32 over 10 s)
    short_side: int = 112  # frames resized so that their short side has this many pixels
    center_crop: bool = True  # then cropped to short_side × short_side (fixed shape for batching)
    sample_rate: int = 16_000
    threads: int = 1  # FFmpeg decoder threads per clip (parallelism comes from clips side by side)

    def __post_init__(self):
        if self.n_frames < 1 or self.short_side < 8 or self.sample_rate < 1000:
            raise ValueError("n_frames >= 1, short_side >= 8 and sample_rate >= 1000 are required")


@dataclass
class DecodedClip:
    clip_id: str
    frames: np.ndarray  # (T, H, W, 3) uint8 RGB
    frame_times: np.ndarray  # (T,) seconds from the first video frame: the frame shown at each target
    audio: np.ndarray  # (round(duration × sample_rate),) float32 mono
    sample_rate: int
    audio_pad_s: float  # seconds of silence added because the audio did not cover the window
    video_pad_frames: int  # targets past the last frame (repeated last frame)


def display_turns(frame) -> int:
    """Quarter turns counterclockwise (``np.rot90``'s ``k``, 0-3) that show a decoded frame as its
    display matrix says: a phone video is stored turned and played upright."""
    return int(round((getattr(frame, "rotation", 0) or 0) / 90)) % 4


def upright(frame, width: int, height: int, fmt: str = "rgb24") -> np.ndarray:
    """``frame`` scaled to ``width`` x ``height`` *as displayed*, as an array (turned when the
    display matrix says so: the scaler works on the stored orientation, the turn comes after)."""
    k = display_turns(frame)
    sw, sh = (height, width) if k % 2 else (width, height)
    img = frame.reformat(width=sw, height=sh, format=fmt, interpolation="AREA").to_ndarray()
    return np.ascontiguousarray(np.rot90(img, k=k)) if k else img


def _target_size(w: int, h: int, short: int) -> tuple[int, int]:
    if w <= h:
        return short, max(2, int(round(h * short / w / 2)) * 2)
    return max(2, int(round(w * short / h / 2)) * 2), short


def walk_window(
    container, vs, aus, t0: float, start_s: float, end_s: float, resampler, video_done: Callable[[], bool]
) -> Iterator[tuple[str, float, object]]:
    """One demux pass over a window ``[start_s, end_s)`` (times from the first video frame,
    ``t0`` in stream time), after one seek to the key frame before it (``_AUDIO_MARGIN_S``
    earlier when there is audio). Yields ``("video", t, frame)`` for every decoded video frame
    until ``video_done()``, and ``("audio", t_first, samples)`` for each resampled audio chunk
    from the window's start on, ``t_first`` being the time of the first kept sample, until the
    audio covers the window (then the resampler's tail). Used by clip decoding and export."""
    seek_to = max(0.0, start_s - (_AUDIO_MARGIN_S if aus is not None else 0.0))
    container.seek(int((t0 + seek_to) / vs.time_base), stream=vs, backward=True)
    audio_t0: float | None = None
    audio_n = 0
    audio_done = aus is None
    for packet in container.demux(*([vs] + ([aus] if aus is not None else []))):
        if packet.stream is vs:
            if video_done():
                continue
            for frame in packet.decode():
                if frame.time is None:
                    continue
                yield "video", frame.time - t0, frame
                if video_done():
                    break
        elif not audio_done:
            for frame in packet.decode():
                if frame.time is None:
                    continue
                ft = frame.time - t0
                if audio_t0 is None and ft + frame.samples / frame.sample_rate < start_s - 0.05:
                    continue  # lead-in before the window: decoded for codec state, not resampled
                for out in resampler.resample(frame):
                    if audio_t0 is None:
                        audio_t0 = ft
                    data = out.to_ndarray()
                    audio_n += data.shape[-1]
                    yield "audio", audio_t0, data
                if audio_t0 is not None and audio_t0 + audio_n / resampler.rate >= end_s:
                    audio_done = True
        if video_done() and audio_done:
            break
    if resampler is not None and not audio_done and audio_t0 is not None:
        for out in resampler.resample(None):
            yield "audio", audio_t0, out.to_ndarray()


def decode_clip(
    path: str | os.PathLike, start_s: float, end_s: float, config: DecodeConfig = DecodeConfig(), *, clip_id: str = ""
) -> DecodedClip:
    """Decode one window ``[start_s, end_s)`` of ``path``. Raises :class:`DecodeError` if the
    file yields no video frame for it."""
    if not end_s > start_s >= 0:
        raise ValueError(f"bad window [{start_s}, {end_s})")
    try:
        with av.open(os.fspath(path)) as container:
            return _decode(container, start_s, end_s, config, clip_id)
    except av.error.FFmpegError as exc:
        raise DecodeError(f"{os.fspath(path)} [{start_s:.2f}, {end_s:.2f}): {exc}") from exc


def _decode(container, start_s, end_s, config: DecodeConfig, clip_id: str) -> DecodedClip:
    vs = container.streams.video[0]
    aus = container.streams.audio[0] if container.streams.audio else None
    vs.thread_type = "AUTO" if config.threads > 1 else "SLICE"
    vs.codec_context.thread_count = config.threads
    t0 = float(vs.start_time * vs.time_base) if vs.start_time is not None else 0.0
    dur = end_s - start_s
    targets = start_s + (np.arange(config.n_frames) + 0.5) * dur / config.n_frames
    tw = th = 0  # the displayed size, known from the first frame (a display rotation swaps it)
    frames = None
    frame_times = np.full(config.n_frames, np.nan)
    ti = 0  # next target to fill
    prev = None  # (time, frame) of the last frame at or before targets[ti]

    sr = config.sample_rate
    resampler = av.AudioResampler(format="flt", layout="mono", rate=sr) if aus is not None else None
    chunks: list[np.ndarray] = []
    audio_t0: float | None = None  # time of the first resampled sample kept
    n_need = int(round(dur * sr))

    def take(frame_time, frame, upto):
        nonlocal ti, tw, th, frames
        img = None
        while ti < config.n_frames and targets[ti] < upto:
            if img is None:
                if frames is None:
                    w, h = frame.width, frame.height
                    tw, th = _target_size(*((h, w) if display_turns(frame) % 2 else (w, h)), config.short_side)
                    frames = np.zeros((config.n_frames, th, tw, 3), np.uint8)
                img = upright(frame, tw, th)
            frames[ti] = img
            frame_times[ti] = frame_time
            ti += 1

    for kind, t, item in walk_window(container, vs, aus, t0, start_s, end_s, resampler, lambda: ti >= config.n_frames):
        if kind == "audio":
            audio_t0 = t
            chunks.append(item.reshape(-1))
            continue
        if prev is not None:
            take(prev[0], prev[1], t)  # prev is shown until t
        elif t > targets[0] and ti == 0:
            take(t, item, t)  # window starts before the first frame: use the first
        prev = (t, item)
    if ti < config.n_frames and prev is not None:  # stream ended inside the window
        video_pad = config.n_frames - ti
        take(prev[0], prev[1], np.inf)
    else:
        video_pad = 0
    if ti == 0:
        raise DecodeError(f"no video frame in [{start_s:.2f}, {end_s:.2f})")
    audio = np.zeros(n_need, np.float32)
    covered = 0
    if chunks and audio_t0 is not None:
        allsamples = np.concatenate(chunks)
        i0 = int(round((start_s - audio_t0) * sr))
        src0, dst0 = max(i0, 0), max(-i0, 0)
        n = max(0, min(n_need - dst0, allsamples.size - src0))
        audio[dst0 : dst0 + n] = allsamples[src0 : src0 + n]
        covered = n
    if config.center_crop:
        s = config.short_side
        y0, x0 = (th - s) // 2, (tw - s) // 2
        frames = np.ascontiguousarray(frames[:, y0 : y0 + s, x0 : x0 + s])
    return DecodedClip(clip_id, frames, frame_times, audio, sr, (n_need - covered) / sr, video_pad)


def iter_decoded(
    items: Iterable[tuple[str, str, float, float]],
    config: DecodeConfig = DecodeConfig(),
) -> Iterator[tuple[str, DecodedClip | None, str]]:
    """Decode ``(clip_id, path, start_s, end_s)`` items one at a time (bounded memory).

    Yields ``(clip_id, clip, error)``: ``clip`` is None and ``error`` says why when a window
    fails, so one bad clip never stops the rest.
    """
    for cid, path, start, end in items:
        try:
            yield cid, decode_clip(path, start, end, config, clip_id=cid), ""
        except (DecodeError, OSError, ValueError) as exc:
            yield cid, None, str(exc)
