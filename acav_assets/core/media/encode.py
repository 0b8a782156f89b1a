"""Encoding video files with PyAV: the generators' writer (frames and/or mono audio)."""

from __future__ import annotations

import math
import os
from fractions import Fraction

import av
import numpy as np

__all__ = ["write_video"]


def write_video(
    path: str | os.PathLike,
    frames: np.ndarray | None,
    fps: float,
    audio: np.ndarray | None = None,
    sample_rate: int = 22050,
    *,
    codec: str = "libx264",
    gop_s: float = 2.0,
    frame_times: np.ndarray | None = None,
    faststart: bool = False,
    time_offset_s: float = 0.0,
) -> None:
    """Encode ``frames`` (T×H×W×3 uint8) and/or mono ``audio`` (float32) into a container.

    ``frame_times`` (seconds) gives each frame its own timestamp: variable frame rate.
    ``faststart`` puts the MP4 index first (as web videos have it); ``time_offset_s`` shifts
    every timestamp (streams that do not start at zero, as broadcast captures do).
    """
    opts = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", container_options=opts) as out:
        vs = aus = None
        if frames is not None:
            rate = Fraction(fps).limit_denominator(1000)
            vs = out.add_stream(codec, rate=rate)
            vs.height, vs.width = frames.shape[1], frames.shape[2]
            vs.pix_fmt = "yuv420p"
            vs.codec_context.gop_size = max(1, int(round(gop_s * fps)))
            if codec == "libx264":
                vs.options = {"preset": "ultrafast", "bf": "0"}
            if frame_times is not None:
                vs.codec_context.time_base = Fraction(1, 1000)
                vs.time_base = Fraction(1, 1000)
        if audio is not None:
            aus = out.add_stream("aac", rate=sample_rate, layout="mono")
        a = None if aus is None else np.ascontiguousarray(audio.reshape(-1), dtype=np.float32)
        a_pos = 0  # next audio sample to encode; audio is interleaved with video, as muxers expect

        def encode_audio_until(t: float) -> None:
            nonlocal a_pos
            upto = a.size if t == math.inf else min(a.size, int(t * sample_rate))
            while a_pos < upto:
                n = min(1024, upto - a_pos)
                af = av.AudioFrame.from_ndarray(a[a_pos : a_pos + n].reshape(1, -1), format="fltp", layout="mono")
                af.sample_rate = sample_rate
                af.pts = a_pos + int(round(time_offset_s * sample_rate))
                for packet in aus.encode(af):
                    out.mux(packet)
                a_pos += n

        if vs is not None:
            for i, img in enumerate(frames):
                t = frame_times[i] if frame_times is not None else i / fps
                if a is not None:
                    encode_audio_until(t + 0.5)
                vf = av.VideoFrame.from_ndarray(img, format="rgb24")
                if frame_times is not None:
                    vf.pts = int(round((frame_times[i] + time_offset_s) * 1000))
                    vf.time_base = Fraction(1, 1000)
                else:
                    vf.pts = i + int(round(time_offset_s * fps))
                for packet in vs.encode(vf):
                    out.mux(packet)
            for packet in vs.encode():
                out.mux(packet)
        if a is not None:
            encode_audio_until(math.inf)
            for packet in aus.encode():
                out.mux(packet)
