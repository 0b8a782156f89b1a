"""Clip decode speed: our windowed decode against a plain full decode of the same files.

    .venv/bin/python benchmarks/decode.py [--videos 12] [--durations 30,120] [--size 320x240] [--fps 25]

Both run in this process, one core each (decoder threads = 1), on the same generated files, and
produce the same thing: 32 RGB frames over the centred 10 s window and its audio as mono 16 kHz.
The baseline is what one writes first with PyAV: decode every packet of the file in order
(``container.decode(video=0, audio=0)``), resample all of its audio, and keep the frames it
needs. Ours seeks to the key frame before the window and stops when the window is covered, so
the ratio grows with file length / window length.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from acav_assets.core.generators.demo import _audio, _frames
from acav_assets.core.media.clips import ClipConfig, clip_windows
from acav_assets.core.media.decode import DecodeConfig, decode_clip
from acav_assets.core.media.encode import write_video
from acav_assets.core.media.probe import probe_file


def full_decode(path: str, start: float, end: float, cfg: DecodeConfig) -> tuple[np.ndarray, np.ndarray]:
    with av.open(path) as c:
        vs = c.streams.video[0]
        vs.codec_context.thread_count = 1
        t0 = float(vs.start_time * vs.time_base) if vs.start_time is not None else 0.0
        targets = start + (np.arange(cfg.n_frames) + 0.5) * (end - start) / cfg.n_frames
        frames, ti, prev = [], 0, None
        res = av.AudioResampler(format="flt", layout="mono", rate=cfg.sample_rate)
        audio, a0 = [], None
        for frame in c.decode(video=0, audio=0):
            if isinstance(frame, av.VideoFrame):
                t = frame.time - t0
                while prev is not None and ti < len(targets) and targets[ti] < t:
                    frames.append(
                        prev.reformat(
                            width=cfg.short_side, height=cfg.short_side, format="rgb24", interpolation="AREA"
                        ).to_ndarray()
                    )
                    ti += 1
                prev = frame
            else:
                if a0 is None:
                    a0 = frame.time - t0
                audio.extend(o.to_ndarray().reshape(-1) for o in res.resample(frame))
        while ti < len(targets):
            frames.append(
                prev.reformat(
                    width=cfg.short_side, height=cfg.short_side, format="rgb24", interpolation="AREA"
                ).to_ndarray()
            )
            ti += 1
        samples = np.concatenate(audio)
        i0 = int(round((start - a0) * cfg.sample_rate))
        return np.stack(frames), samples[i0 : i0 + int(round((end - start) * cfg.sample_rate))]


def run(n_videos: int, duration: float, w: int, h: int, fps: float, repeats: int, tmp: str):
    cfg = DecodeConfig()
    jobs = []
    for i in range(n_videos):
        rng = np.random.default_rng(i)
        p = Path(tmp) / f"v{duration:g}_{i}.mp4"
        write_video(
            p,
            _frames(i % 8, rng, int(duration * fps), fps, w, h),
            fps,
            _audio(i % 8, rng, int(duration * 44100), 44100),
            44100,
        )
        rec = probe_file(p)
        (win,) = clip_windows(rec.video_id, rec.duration_s, ClipConfig())
        jobs.append((str(p), win.start_s, win.end_s))
    ours_t, base_t = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        for p, s, e in jobs:
            clip = decode_clip(p, s, e, cfg)
        ours_t.append(time.perf_counter() - t)
        t = time.perf_counter()
        for p, s, e in jobs:
            fr, au = full_decode(p, s, e, cfg)
        base_t.append(time.perf_counter() - t)
    assert clip.frames.shape == fr.shape, (clip.frames.shape, fr.shape)
    ours, base = statistics.median(ours_t), statistics.median(base_t)
    print(
        f"| {duration:g} s | {10 / duration:.0%} | {n_videos / base:.1f} | {n_videos / ours:.1f} | {base / ours:.2f}x |",
        flush=True,
    )
    return base / ours


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=int, default=12, help="videos per duration")
    ap.add_argument("--durations", default="30,120", help="file lengths in seconds")
    ap.add_argument("--size", default="320x240")
    ap.add_argument("--fps", type=float, default=25.0)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    w, h = (int(x) for x in args.size.split("x"))
    print(
        f"# decode benchmark: {args.videos} videos per length, {w}x{h} @ {args.fps:g} fps, h264 + aac 44.1 kHz;\n"
        f"# one centred 10 s clip each -> 32 frames 112x112 + 16 kHz mono; 1 decoder thread; median of {args.repeats}\n"
    )
    print("| file length | window share | full decode clips/s | ours clips/s | ratio ours / full |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for d in (float(x) for x in args.durations.split(",")):
            run(args.videos, d, w, h, args.fps, args.repeats, tmp)


if __name__ == "__main__":
    sys.exit(main())
