"""The demo corpus: synthetic videos with a planted audio-visual correspondence.

The demo, the tests and the benchmarks all use these, so they are small, fast to write and
deterministic per seed.

Good videos (:func:`write_demo_videos`): every video shows one moving object whose *visual
class* fixes its colour, shape and motion, and plays a sound whose *audio class* fixes its
pitch, timbre and rhythm. A ``matched_fraction`` share of the videos has audio class = visual
class; the others take the audio of a different class. Nuisances (background, size, speed,
phase, loudness, detune, noise) vary per video so that classes are not trivially constant.
``ground_truth.csv`` lists file, classes, ``matched`` and duration.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from acav_assets.core.generators.pairing import plan_corpus, write_corpus
from acav_assets.core.media.encode import write_video

__all__ = ["SynthVideo", "write_demo_videos", "write_video", "read_ground_truth"]

# Per class: colour (RGB), shape, motion; pitch (Hz), timbre, rhythm (beats per second, 0 = steady).
_COLOURS = [
    (230, 40, 40),
    (40, 200, 60),
    (50, 90, 235),
    (240, 210, 40),
    (200, 60, 220),
    (40, 210, 220),
    (245, 140, 30),
    (245, 245, 245),
]
_SHAPES = ["disc", "square", "triangle", "ring", "cross", "bar_h", "bar_v", "diamond"]
_MOTIONS = ["horizontal", "vertical", "circle", "diagonal", "pulse", "zigzag", "still_shake", "orbit"]
_PITCHES = [220.0, 311.1, 440.0, 587.3, 783.9, 1046.5, 1396.9, 1864.7]
_TIMBRES = ["sine", "square", "saw", "triangle", "bell", "sine", "square", "noise"]
_RHYTHMS = [0.0, 2.0, 4.0, 1.0, 3.0, 6.0, 0.0, 1.5]
MAX_CLASSES = len(_COLOURS)


@dataclass(frozen=True)
class SynthVideo:
    file: str
    visual_class: int
    audio_class: int
    matched: bool
    duration_s: float


def _shape_mask(shape: str, s: int) -> np.ndarray:
    yy, xx = np.mgrid[0:s, 0:s]
    c = (s - 1) / 2
    dx, dy = xx - c, yy - c
    r = math.hypot(c, c) * 0.7
    if shape == "disc":
        m = dx**2 + dy**2 <= (s / 2) ** 2
    elif shape == "square":
        m = np.ones((s, s), bool)
    elif shape == "triangle":
        m = yy >= abs(dx) * 1.6 - 1
    elif shape == "ring":
        d = np.sqrt(dx**2 + dy**2)
        m = (d <= s / 2) & (d >= s / 4)
    elif shape == "cross":
        m = (abs(dx) <= s / 6) | (abs(dy) <= s / 6)
    elif shape == "bar_h":
        m = abs(dy) <= s / 5
    elif shape == "bar_v":
        m = abs(dx) <= s / 5
    else:  # diamond
        m = abs(dx) + abs(dy) <= r
    return m


def _position(motion: str, t: np.ndarray, speed: float, phase: float) -> tuple[np.ndarray, np.ndarray]:
    """Object centre in [0, 1]² over time."""
    w = 2 * math.pi * speed * t + phase
    if motion == "horizontal":
        return 0.5 + 0.35 * np.sin(w), np.full_like(t, 0.5)
    if motion == "vertical":
        return np.full_like(t, 0.5), 0.5 + 0.35 * np.sin(w)
    if motion == "circle":
        return 0.5 + 0.3 * np.cos(w), 0.5 + 0.3 * np.sin(w)
    if motion == "diagonal":
        return 0.5 + 0.3 * np.sin(w), 0.5 + 0.3 * np.sin(w)
    if motion == "pulse":
        return np.full_like(t, 0.5), np.full_like(t, 0.5)
    if motion == "zigzag":
        saw = 2 * np.abs((w / (2 * math.pi)) % 1 - 0.5)
        return 0.2 + 0.6 * saw, 0.5 + 0.15 * np.sign(np.sin(3 * w))
    if motion == "still_shake":
        return 0.5 + 0.04 * np.sin(7 * w), 0.5 + 0.04 * np.cos(5 * w)
    return 0.5 + 0.32 * np.cos(w) * np.cos(0.5 * w), 0.5 + 0.32 * np.sin(w)  # orbit


def _frames(cls: int, rng: np.random.Generator, n: int, fps: float, width: int, height: int) -> np.ndarray:
    t = np.arange(n) / fps
    bg = rng.integers(10, 90, 3)
    size = int(min(width, height) * rng.uniform(0.28, 0.4))
    speed = rng.uniform(0.15, 0.4)
    x, y = _position(_MOTIONS[cls], t, speed, rng.uniform(0, 2 * math.pi))
    colour = np.clip(np.array(_COLOURS[cls]) * rng.uniform(0.85, 1.0), 0, 255).astype(np.uint8)
    out = np.empty((n, height, width, 3), np.uint8)
    out[:] = bg.astype(np.uint8)
    noise = rng.integers(0, 12, (height, width, 3), dtype=np.uint8)
    for f in range(n):
        s = size
        if _MOTIONS[cls] == "pulse":
            s = max(4, int(size * (0.7 + 0.5 * (0.5 + 0.5 * math.sin(2 * math.pi * speed * 2 * t[f])))))
        mask = _shape_mask(_SHAPES[cls], s)
        cx = int(x[f] * (width - s))
        cy = int(y[f] * (height - s))
        region = out[f, cy : cy + s, cx : cx + s]
        region[mask[: region.shape[0], : region.shape[1]]] = colour
        out[f] += noise
    return out


def _audio(cls: int, rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    t = np.arange(n) / sr
    f0 = _PITCHES[cls] * rng.uniform(0.97, 1.03)
    ph = 2 * math.pi * f0 * t
    timbre = _TIMBRES[cls]
    if timbre == "sine":
        x = np.sin(ph)
    elif timbre == "square":
        x = np.sign(np.sin(ph)) * 0.6
    elif timbre == "saw":
        x = 2 * ((f0 * t) % 1.0) - 1
    elif timbre == "triangle":
        x = 2 * np.abs(2 * ((f0 * t) % 1.0) - 1) - 1
    elif timbre == "bell":
        x = np.sin(ph) + 0.6 * np.sin(2.76 * ph) + 0.4 * np.sin(5.4 * ph)
        x /= 2.0
    else:  # band noise around f0
        x = rng.standard_normal(n)
        spec = np.fft.rfft(x)
        freqs = np.fft.rfftfreq(n, 1 / sr)
        spec[(freqs < f0 * 0.7) | (freqs > f0 * 1.4)] = 0
        x = np.fft.irfft(spec, n)
        x /= np.abs(x).max() + 1e-9
    rate = _RHYTHMS[cls]
    if rate > 0:
        env = (np.sin(2 * math.pi * rate * t + rng.uniform(0, 2 * math.pi)) > 0).astype(np.float64)
        env = np.convolve(env, np.ones(160) / 160, mode="same")  # soften clicks
        x = x * (0.15 + 0.85 * env)
    x = x * rng.uniform(0.3, 0.6) + rng.standard_normal(n) * 0.01
    return np.clip(x, -1, 1).astype(np.float32)


def _write_one(job) -> SynthVideo:
    path, vcls, acls, duration, fps, width, height, sr, seed = job
    rng = np.random.default_rng(seed)
    n = int(round(duration * fps))
    frames = _frames(vcls, rng, n, fps, width, height)
    audio = _audio(acls, rng, int(round(duration * sr)), sr)
    write_video(path, frames, fps, audio, sr)
    return SynthVideo(Path(path).name, vcls, acls, vcls == acls, round(n / fps, 6))


def write_demo_videos(
    out_dir: str | os.PathLike,
    n_videos: int = 200,
    *,
    matched_fraction: float = 0.5,
    n_classes: int = 8,
    duration_s: tuple[float, float] = (11.0, 20.0),
    fps: float = 12.0,
    size: tuple[int, int] = (96, 64),
    sample_rate: int = 22050,
    seed: int = 0,
    workers: int | None = None,
) -> list[SynthVideo]:
    """Write ``n_videos`` small videos with a planted correspondence plus ``ground_truth.csv``.

    Deterministic per ``seed`` (content and names). ``size`` is (width, height), even numbers.
    Mismatched videos take the audio of a *different* class, so ``matched`` is unambiguous.
    """
    out, jobs = plan_corpus(
        out_dir,
        n_videos,
        prefix="video",
        matched_fraction=matched_fraction,
        n_classes=n_classes,
        max_classes=MAX_CLASSES,
        duration_s=duration_s,
        size=size,
        seed=seed,
        extra=(fps, *size, sample_rate),
    )
    return write_corpus(out, jobs, _write_one, workers)


def read_ground_truth(path: str | os.PathLike) -> dict[str, SynthVideo]:
    """Read a ``ground_truth.csv`` written by :func:`write_demo_videos`, keyed by file name."""
    with open(path, newline="") as fh:
        return {
            r["file"]: SynthVideo(
                r["file"], int(r["visual_class"]), int(r["audio_class"]), r["matched"] == "True", float(r["duration_s"])
            )
            for r in csv.DictReader(fh)
        }
