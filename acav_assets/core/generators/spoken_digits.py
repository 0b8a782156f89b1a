"""An independent evaluation corpus: digits written in the system's fonts, spoken by espeak-ng voices.

The demo generator (:mod:`acav_assets.core.generators.demo`) defines its classes by colour,
shape and motion, the very things the weight-free visual features describe, so quality on it
proves little. This corpus takes its classes from material this project did not design, in the
spirit of the paper's MNIST x FSDD pairing:

- picture of class ``c``: the digit ``c`` rendered with a font drawn from every outline font
  installed on the machine (Debian's DejaVu, URW base35, FreeFont and Liberation families give
  a few hundred faces: serif, sans, mono, script, bold, italic), at a random size, position,
  colour and slow drift, over a random colour gradient with clutter (letters of other fonts,
  drifting on their own), with camera shake and pixel noise;
- sound of class ``c``: the English word for ``c`` spoken by espeak-ng, with a voice drawn from
  its accents (7) x variants (about 90 speakers, from whisper to robots), at a random speed and
  pitch, repeated at random times over the clip, over background noise at a random SNR.

A ``matched_fraction`` share of the videos has sound class = picture class; the others speak
another digit. ``ground_truth.csv`` has the same columns as the demo's (so every evaluation
reads both) plus the nuisances (font, voice).

Needs the ``espeak-ng`` program and some fonts (``scripts/test.sh`` installs them with apt where
it can); :func:`check_available` says what is missing.
"""

from __future__ import annotations

import functools
import io
import os
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from acav_assets.core.generators.pairing import plan_corpus, write_corpus
from acav_assets.core.media.encode import write_video

__all__ = ["DIGIT_WORDS", "SpokenDigitVideo", "check_available", "font_files", "speak", "write_spoken_digit_videos"]

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ACCENTS = ("en-gb", "en-us", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd", "en-029")
_FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts")
# faces whose "digits" are symbols or that lack them
_SKIP_FONTS = ("symbol", "dingbat", "d050000l", "math", "emoji")
_SAMPLE_RATE = 22050  # espeak-ng's native rate


@dataclass(frozen=True)
class SpokenDigitVideo:
    file: str
    visual_class: int
    audio_class: int
    matched: bool
    duration_s: float
    font: str
    voice: str


@functools.lru_cache(maxsize=1)
def font_files() -> tuple[str, ...]:
    """Outline fonts on this machine that render the ten digits as ten different glyphs."""
    from PIL import ImageFont

    out = []
    for root in _FONT_DIRS:
        for p in sorted(Path(root).rglob("*")):
            if p.suffix.lower() not in (".ttf", ".otf") or any(s in p.name.lower() for s in _SKIP_FONTS):
                continue
            try:
                font = ImageFont.truetype(str(p), 32)
                masks = {bytes(np.asarray(font.getmask(d)).tobytes()) for d in "0123456789"}
            except OSError:
                continue
            if len(masks) == 10:
                out.append(str(p))
    return tuple(out)


def check_available() -> list[str]:
    """What this generator lacks on this machine (empty when it can run)."""
    missing = []
    if shutil.which("espeak-ng") is None:
        missing.append("the espeak-ng program (Debian: apt-get install espeak-ng)")
    if len(font_files()) < 4:
        missing.append("outline fonts (Debian: apt-get install fonts-dejavu-core fonts-urw-base35 fonts-freefont-ttf)")
    return missing


@functools.lru_cache(maxsize=4096)
def speak(word: str, voice: str, speed: int, pitch: int) -> np.ndarray:
    """The word spoken by espeak-ng (float32 mono at 22,050 Hz), silence trimmed."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "w.wav"
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(wav), word],
            check=True,
            capture_output=True,
            timeout=60,
        )
        with wave.open(io.BytesIO(wav.read_bytes())) as w:
            if w.getsampwidth() != 2 or w.getframerate() != _SAMPLE_RATE:
                raise RuntimeError(f"espeak-ng wrote {w.getsampwidth() * 8}-bit audio at {w.getframerate()} Hz")
            x = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768.0
            x = x.reshape(-1, w.getnchannels()).mean(1)
    loud = np.flatnonzero(np.abs(x) > 0.01)
    return x[loud[0] : loud[-1] + 1] if loud.size else x


def _glyph(font_path: str, char: str, size: int) -> np.ndarray:
    """The character's coverage mask (float32 in [0, 1]), tightly cropped."""
    from PIL import ImageFont

    font = ImageFont.truetype(font_path, size)
    mask = font.getmask(char, mode="L")
    arr = np.asarray(mask, dtype=np.uint8).reshape(mask.size[1], mask.size[0]).astype(np.float32) / 255.0
    ys, xs = np.nonzero(arr > 0.05)
    if ys.size == 0:
        return np.zeros((1, 1), np.float32)
    return arr[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def _paste(frame: np.ndarray, mask: np.ndarray, colour: np.ndarray, x: float, y: float) -> None:
    """Alpha-blend ``colour`` through ``mask`` at top-left (x, y), clipped to the frame."""
    h, w = frame.shape[:2]
    mh, mw = mask.shape
    x0, y0 = int(round(x)), int(round(y))
    fx0, fy0, fx1, fy1 = max(0, x0), max(0, y0), min(w, x0 + mw), min(h, y0 + mh)
    if fx1 <= fx0 or fy1 <= fy0:
        return
    a = mask[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0, None]
    region = frame[fy0:fy1, fx0:fx1]
    region[:] = region * (1 - a) + colour * a


def _frames(
    cls: int, rng: np.random.Generator, n: int, fps: float, width: int, height: int, fonts: tuple[str, ...]
) -> tuple[np.ndarray, str]:
    font = fonts[rng.integers(len(fonts))]
    glyph = _glyph(font, str(cls), int(height * rng.uniform(0.45, 0.85)))
    gh, gw = glyph.shape
    # background: a gradient between two random colours, at a random angle
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    ang = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    ramp = ((xx / width - 0.5) * np.cos(ang) + (yy / height - 0.5) * np.sin(ang) + 0.5).clip(0, 1)[..., None]
    bg = c0 * (1 - ramp) + c1 * ramp
    # the digit's colour stands out from the background's mean, in a random tint
    colour = rng.uniform(0, 255, 3)
    if np.abs(colour - bg.mean((0, 1))).sum() < 150:
        colour = 255 - bg.mean((0, 1))
    # clutter: letters of other fonts, smaller, in colours of their own, drifting
    clutter = []
    for _ in range(rng.integers(2, 6)):
        letter = "ABCDEFGHJKLMNPQRSTUVWXYZabdefghkmnpqrtwxyz"[rng.integers(42)]
        m = _glyph(fonts[rng.integers(len(fonts))], letter, int(height * rng.uniform(0.15, 0.35)))
        clutter.append(
            (
                m,
                rng.uniform(0, 255, 3),
                rng.uniform(-m.shape[1] / 2, width),
                rng.uniform(-m.shape[0] / 2, height),
                rng.uniform(-8, 8, 2),
            )
        )
    # the digit drifts slowly inside the frame; the camera shakes and pans a little
    x0, y0 = rng.uniform(0, max(1, width - gw)), rng.uniform(0, max(1, height - gh))
    vx, vy = rng.uniform(-4, 4, 2)
    shake = rng.uniform(0, 3)
    pan = rng.uniform(-2, 2, 2)
    out = np.empty((n, height, width, 3), np.uint8)
    for f in range(n):
        t = f / fps
        frame = bg.copy()
        for m, col, cx, cy, v in clutter:
            _paste(frame, m, col, cx + v[0] * t, cy + v[1] * t)
        gx = np.clip(x0 + vx * t, -gw * 0.1, width - gw * 0.9)
        gy = np.clip(y0 + vy * t, -gh * 0.1, height - gh * 0.9)
        _paste(frame, glyph, colour, gx, gy)
        dx, dy = (pan * t + rng.normal(0, shake, 2)).round().astype(int)
        frame = np.roll(frame, (dy, dx), axis=(0, 1))
        frame += rng.normal(0, 6, frame.shape)
        out[f] = frame.clip(0, 255).astype(np.uint8)
    return out, Path(font).stem


def _audio(cls: int, rng: np.random.Generator, n: int) -> tuple[np.ndarray, str]:
    accent = ACCENTS[rng.integers(len(ACCENTS))]
    variants = _variants()
    voice = accent if rng.random() < 0.15 else f"{accent}+{variants[rng.integers(len(variants))]}"
    word = speak(DIGIT_WORDS[cls], voice, int(rng.integers(110, 230)), int(rng.integers(10, 90)))
    x = np.zeros(n, np.float32)
    pos = int(rng.uniform(0.0, 0.8) * _SAMPLE_RATE)
    while pos < n:  # the word again and again, with pauses, at varying loudness
        seg = word[: n - pos] * rng.uniform(0.4, 1.0) / max(1e-3, float(np.abs(word).max()))
        x[pos : pos + seg.size] += seg
        pos += word.size + int(rng.uniform(0.25, 1.5) * _SAMPLE_RATE)
    speech_power = float((x**2).mean()) + 1e-9
    noise = rng.standard_normal(n).astype(np.float32)
    if rng.random() < 0.5:  # brown-ish noise half of the time
        noise = np.cumsum(noise)
        noise -= np.convolve(noise, np.ones(256) / 256, mode="same")
    snr_db = rng.uniform(5, 25)
    noise *= np.sqrt(speech_power / (float((noise**2).mean()) + 1e-12) / 10 ** (snr_db / 10))
    return np.clip(x + noise, -1, 1).astype(np.float32), voice


@functools.lru_cache(maxsize=1)
def _variants() -> tuple[str, ...]:
    try:
        out = subprocess.run(["espeak-ng", "--voices=variant"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return ("m1", "f1")
    names = [ln.split()[-1].removeprefix("!v/") for ln in out.splitlines()[1:] if ln.strip()]
    return tuple(n for n in names if n) or ("m1", "f1")


def _write_one(job) -> SpokenDigitVideo:
    path, vcls, acls, duration, fps, width, height, fonts, seed = job
    rng = np.random.default_rng(seed)
    n = int(round(duration * fps))
    frames, font = _frames(vcls, rng, n, fps, width, height, fonts)
    audio, voice = _audio(acls, rng, int(round(duration * _SAMPLE_RATE)))
    write_video(path, frames, fps, audio, _SAMPLE_RATE)
    return SpokenDigitVideo(Path(path).name, vcls, acls, vcls == acls, round(n / fps, 6), font, voice)


def write_spoken_digit_videos(
    out_dir: str | os.PathLike,
    n_videos: int = 300,
    *,
    matched_fraction: float = 0.5,
    n_classes: int = 10,
    duration_s: tuple[float, float] = (11.0, 14.0),
    fps: float = 8.0,
    size: tuple[int, int] = (128, 96),
    seed: int = 0,
    workers: int | None = None,
) -> list[SpokenDigitVideo]:
    """Write ``n_videos`` videos of written and spoken digits, plus ``ground_truth.csv``.

    Deterministic per ``seed`` on a given machine (the set of installed fonts and espeak-ng's
    version are part of the content). Mismatched videos speak a *different* digit.
    """
    missing = check_available()
    if missing:
        raise RuntimeError("the spoken-digits corpus needs " + " and ".join(missing))
    out, jobs = plan_corpus(
        out_dir,
        n_videos,
        prefix="digits",
        matched_fraction=matched_fraction,
        n_classes=n_classes,
        max_classes=len(DIGIT_WORDS),
        duration_s=duration_s,
        size=size,
        seed=seed,
        extra=(fps, *size, font_files()),
    )
    return write_corpus(out, jobs, _write_one, workers, chunksize=4)
