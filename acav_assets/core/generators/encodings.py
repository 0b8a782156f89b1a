"""Re-encode a video the ways real uploads come: encoder defaults, long GOPs, B-frames, other
containers and codecs, 48 kHz stereo or 5.1, a display rotation, variable frame rate, sound that
starts late or ends early.

The demo generator writes what is cheapest to test (x264 ``ultrafast``, no B-frames, a keyframe
every 2 s). Real files rarely look like that: FFmpeg's libx264 with no options places a keyframe
at most every 250 frames (a 6-20 s video has **one**, at 0 s), uses B-frames, CABAC and
deblocking. :func:`reencode` writes such files from any source, so that every stage can be run
on encodings this project did not choose (:data:`ENCODINGS` is the matrix the tests and
``benchmarks/near_duplicates.py`` use).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from fractions import Fraction

import av
import numpy as np

__all__ = ["Encoding", "ENCODINGS", "reencode"]


@dataclass(frozen=True)
class Encoding:
    """How to write a copy. ``None`` keeps the encoder's own default (what FFmpeg does when the
    user names no option)."""

    name: str
    suffix: str = ".mp4"  # the container, by file suffix
    video_codec: str = "libx264"
    gop_s: float | None = None  # seconds between keyframes (None: the encoder's default, 250 frames for x264)
    video_options: dict = field(default_factory=dict)  # encoder options ({"bf": "3", "open_gop": "1", ...})
    pix_fmt: str = "yuv420p"
    audio_codec: str | None = "aac"  # None: no sound
    audio_options: dict = field(default_factory=dict)
    sample_rate: int | None = None  # None: the source's
    layout: str = "mono"  # "stereo", "5.1"
    rotate: int = 0  # display rotation in degrees (a phone held upright): frames stored turned
    vfr: bool = False  # variable frame rate: frame durations vary between 1 and 3 source frames
    audio_delay_s: float = (
        0.0  # the sound track starts this late (in time with the picture: its first seconds are missing)
    )
    audio_cut_s: float = 0.0  # the sound ends this much before the picture
    start_s: float = 0.0  # a sub-clip: [start_s, end_s) of the source (end None: to the end)
    end_s: float | None = None
    short_side: int | None = None  # rescale (even sizes)


#: The encoding matrix: each is run through probe, clips, decode, embedding, fingerprint and export.
ENCODINGS = (
    Encoding("x264_defaults"),  # keyint 250: one keyframe in a short video, B-frames, CABAC
    Encoding("gop_1s", gop_s=1.0),
    Encoding("gop_2s", gop_s=2.0),
    Encoding("gop_10s", gop_s=10.0, video_options={"sc_threshold": "0"}),
    Encoding("bframes_open_gop", gop_s=4.0, video_options={"bf": "3", "open_gop": "1", "b_pyramid": "normal"}),
    Encoding("vfr", vfr=True),
    Encoding("rotated_90", rotate=90),
    Encoding("yuv444", pix_fmt="yuv444p"),
    Encoding("yuv420_10bit", pix_fmt="yuv420p10le"),
    Encoding("stereo_48k", sample_rate=48_000, layout="stereo"),
    Encoding("surround_5_1", sample_rate=48_000, layout="5.1"),
    Encoding("mov", suffix=".mov"),
    Encoding(
        "mkv_vorbis",
        suffix=".mkv",
        audio_codec="vorbis",
        sample_rate=44_100,
        layout="stereo",
        audio_options={"strict": "experimental"},
    ),
    Encoding(
        "webm_vp9_opus",
        suffix=".webm",
        video_codec="libvpx-vp9",
        audio_codec="libopus",
        sample_rate=48_000,
        video_options={"deadline": "realtime", "cpu-used": "8"},
    ),
    Encoding("mkv_mp3", suffix=".mkv", audio_codec="libmp3lame", sample_rate=44_100),
    Encoding("audio_late", audio_delay_s=1.5),
    Encoding("audio_ends_early", audio_cut_s=3.0),
)


def _frames_and_sound(src: str, start_s: float, end_s: float | None, rate: int, layout: str):
    """Every frame of ``src`` in [start_s, end_s) as RGB arrays, its frame rate, and the sound
    in that span resampled to ``rate``/``layout`` (float planes, channels x samples)."""
    frames, planes = [], []
    with av.open(src) as c:
        vs = c.streams.video[0]
        fps = float(vs.average_rate or vs.guessed_rate or 25)
        aus = c.streams.audio[0] if c.streams.audio else None
        t0 = float(vs.start_time * vs.time_base) if vs.start_time is not None else 0.0
        end = np.inf if end_s is None else end_s
        for fr in c.decode(vs):
            t = (fr.time or 0.0) - t0
            if start_s - 0.5 / fps <= t < end - 0.5 / fps:
                frames.append(fr.to_ndarray(format="rgb24"))
        if aus is not None:
            c.seek(0)
            res = av.AudioResampler(format="fltp", layout=layout, rate=rate)
            for fr in c.decode(aus):
                for out in res.resample(fr):
                    planes.append(out.to_ndarray())
            for out in res.resample(None):
                planes.append(out.to_ndarray())
    sound = np.concatenate(planes, axis=1) if planes else None
    if sound is not None:
        a, b = int(round(start_s * rate)), None if end_s is None else int(round(end_s * rate))
        sound = sound[:, a:b]
    return frames, fps, sound


def reencode(src: str | os.PathLike, dst: str | os.PathLike, enc: Encoding, *, seed: int = 0) -> None:
    """Write ``src`` again as ``enc`` says, to ``dst`` (its suffix should be ``enc.suffix``)."""
    with av.open(os.fspath(src)) as c:
        src_rate = c.streams.audio[0].codec_context.sample_rate if c.streams.audio else 22_050
    rate = enc.sample_rate or src_rate
    if enc.audio_codec == "libopus":
        rate = 48_000
    frames, fps, sound = _frames_and_sound(os.fspath(src), enc.start_s, enc.end_s, rate, enc.layout)
    if not frames:
        raise ValueError(f"{src}: no frames in [{enc.start_s}, {enc.end_s})")
    if enc.short_side:
        frames = _rescale(frames, enc.short_side)
    rotate = enc.rotate % 360
    if rotate:
        # stored turned the other way; the display matrix turns it back upright for the viewer
        frames = [np.ascontiguousarray(np.rot90(f, k=rotate // 90)) for f in frames]
    h, w = frames[0].shape[:2]
    rng = np.random.default_rng(seed)
    with av.open(os.fspath(dst), "w") as out:
        vs = out.add_stream(enc.video_codec, rate=Fraction(fps).limit_denominator(1000))
        vs.width, vs.height, vs.pix_fmt = w - w % 2, h - h % 2, enc.pix_fmt
        enc_opts = dict(enc.video_options)
        if enc.gop_s is not None:
            vs.codec_context.gop_size = max(1, int(round(enc.gop_s * fps)))
            if enc.video_codec == "libx264":  # a fixed GOP: no shorter one at scene changes
                enc_opts = {"keyint_min": str(vs.codec_context.gop_size), **enc_opts}
        if enc_opts:
            vs.options = enc_opts
        tb = Fraction(1, 1000) if enc.vfr else Fraction(1, 1) / Fraction(fps).limit_denominator(1000)
        vs.time_base = tb
        vs.codec_context.time_base = tb
        if rotate:
            vs.set_display_rotation(-rotate)  # FFmpeg's angle is counterclockwise: turn back clockwise
        aus = None
        if enc.audio_codec and sound is not None:
            aus = out.add_stream(enc.audio_codec, rate=rate, layout=enc.layout)
            if enc.audio_options:
                aus.codec_context.options = dict(enc.audio_options)
        # frames: each shown for 1/fps (VFR: for 1-3 source frames' time, some frames dropped)
        times, t, i = [], 0.0, 0
        keep = []
        while i < len(frames):
            keep.append(i), times.append(t)
            step = int(rng.integers(1, 4)) if enc.vfr else 1
            t += step / fps
            i += step
        for n, (i, t) in enumerate(zip(keep, times)):
            vf = av.VideoFrame.from_ndarray(frames[i][: vs.height, : vs.width], format="rgb24")
            vf.pts = int(round(t * 1000)) if enc.vfr else n
            vf.time_base = tb
            for p in vs.encode(vf):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
        if aus is not None:
            duration = len(frames) / fps
            lead = int(round(enc.audio_delay_s * rate))
            n_keep = max(0, int(round((duration - enc.audio_cut_s) * rate)) - lead)
            data = np.ascontiguousarray(sound[:, lead : lead + n_keep], dtype=np.float32)
            frame_size = aus.codec_context.frame_size or 1024
            for a in range(0, data.shape[1], frame_size):
                chunk = np.ascontiguousarray(data[:, a : a + frame_size])
                af = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=enc.layout)
                af.sample_rate = rate
                af.pts = lead + a
                af.time_base = Fraction(1, rate)
                for p in aus.encode(af):
                    out.mux(p)
            for p in aus.encode():
                out.mux(p)


def _rescale(frames: list[np.ndarray], short: int) -> list[np.ndarray]:
    h, w = frames[0].shape[:2]
    scale = short / min(h, w)
    tw, th = max(2, int(round(w * scale / 2)) * 2), max(2, int(round(h * scale / 2)) * 2)
    out = []
    for f in frames:
        vf = av.VideoFrame.from_ndarray(f, format="rgb24")
        out.append(vf.reformat(width=tw, height=th, interpolation="AREA").to_ndarray(format="rgb24"))
    return out
