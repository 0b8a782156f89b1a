"""An independent evaluation corpus of real photographs and real recorded sounds.

Where the demo generator draws its own shapes and tones, every class here is material this
project did not make, shipped by packages:

- picture of class ``c``: one of the photographs that scikit-image ships in its wheel
  (an astronaut, a cat, a cup of coffee, a rocket, a motorcycle, the Hubble deep field, a
  retina, coins, a stained tissue slide, a printed page). The camera looks at a random window
  of it (35-100 % of the short side), flipped or not, and pans / zooms to another window over
  the clip; the picture is tinted, its contrast changed, sometimes made grey, sometimes shown
  smaller over a background of another real texture (brick, grass, gravel, the moon, text,
  a blurred clock) that belongs to no class; pixel noise on top.
- sound of class ``c``: one of the recordings of the freedesktop sound theme (an alarm clock,
  a bell, a camera shutter, a phone ringing, a busy tone, a bin being emptied, ...), repeated
  at random times over the clip at random loudness and speed (pitch and tempo change together,
  ±15 %), over white or brown noise at 5-25 dB SNR, half of the time with a spoken distractor
  (the theme's loudspeaker-test voice) under it.

A ``matched_fraction`` share of the videos has sound class = picture class; the others carry
another class's sound. ``ground_truth.csv`` has the demo's columns plus the nuisances.

Needs ``scikit-image`` (a dependency) and the Debian package ``sound-theme-freedesktop``
(``scripts/test.sh`` installs it where it can); :func:`check_available` says what is missing.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from acav_assets.core.generators.pairing import plan_corpus, write_corpus
from acav_assets.core.media.encode import write_video

__all__ = ["PHOTOS", "SOUNDS", "PhotoSoundVideo", "check_available", "write_photo_sound_videos"]

PHOTOS = (
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "hubble_deep_field.jpg",
    "retina.jpg",
    "coins.png",
    "ihc.png",
    "page.png",
)
BACKGROUNDS = ("brick.png", "grass.png", "gravel.png", "moon.png", "text.png", "clock_motion.png")
SOUNDS = (
    "alarm-clock-elapsed",
    "bell",
    "camera-shutter",
    "complete",
    "dialog-warning",
    "message-new-instant",
    "phone-incoming-call",
    "phone-outgoing-busy",
    "service-login",
    "trash-empty",
)
DISTRACTORS = (
    "audio-channel-front-left",
    "audio-channel-front-right",
    "audio-channel-rear-center",
    "audio-channel-side-left",
    "audio-channel-side-right",
)
SOUND_DIR = Path("/usr/share/sounds/freedesktop/stereo")
_SAMPLE_RATE = 22050


@dataclass(frozen=True)
class PhotoSoundVideo:
    file: str
    visual_class: int
    audio_class: int
    matched: bool
    duration_s: float
    photo: str
    sound: str


def _photo_dir() -> Path | None:
    try:
        from importlib import resources

        return Path(str(resources.files("skimage").joinpath("data")))
    except ModuleNotFoundError:
        return None


def check_available() -> list[str]:
    """What this generator lacks on this machine (empty when it can run)."""
    missing = []
    d = _photo_dir()
    if d is None or not all((d / p).is_file() for p in PHOTOS + BACKGROUNDS):
        missing.append("scikit-image's sample photographs (pip install scikit-image==0.26.0)")
    if not all((SOUND_DIR / f"{s}.oga").is_file() for s in SOUNDS + DISTRACTORS):
        missing.append(f"the freedesktop sound theme in {SOUND_DIR} (Debian: apt-get install sound-theme-freedesktop)")
    return missing


@functools.lru_cache(maxsize=32)
def _image(name: str):
    from PIL import Image

    return Image.open(_photo_dir() / name).convert("RGB")


@functools.lru_cache(maxsize=32)
def _sound(name: str) -> np.ndarray:
    """The recording as float32 mono at 22,050 Hz, silence at both ends trimmed."""
    import av

    chunks = []
    with av.open(str(SOUND_DIR / f"{name}.oga")) as c:
        res = av.AudioResampler(format="flt", layout="mono", rate=_SAMPLE_RATE)
        for frame in c.decode(audio=0):
            chunks += [f.to_ndarray().reshape(-1) for f in res.resample(frame)]
        chunks += [f.to_ndarray().reshape(-1) for f in res.resample(None)]
    x = np.concatenate(chunks).astype(np.float32)
    loud = np.flatnonzero(np.abs(x) > 0.01 * max(1e-6, float(np.abs(x).max())))
    return x[loud[0] : loud[-1] + 1] if loud.size else x


def _window(rng: np.random.Generator, iw: int, ih: int, aspect: float) -> np.ndarray:
    """(cx, cy, h) of a random view of the image with the frame's aspect."""
    h = rng.uniform(0.35, 1.0) * min(ih, iw / aspect)
    w = h * aspect
    return np.array([rng.uniform(w / 2, iw - w / 2), rng.uniform(h / 2, ih - h / 2), h])


def _frames(cls: int, rng: np.random.Generator, n: int, width: int, height: int) -> np.ndarray:
    from PIL import Image

    img = _image(PHOTOS[cls])
    iw, ih = img.size
    # picture-in-picture over a texture that belongs to no class, half of the time
    inset = rng.random() < 0.5
    vw, vh = (width, height) if not inset else (int(width * rng.uniform(0.55, 0.9)), 0)
    vh = vh or int(round(vw * height / width))
    start, end = _window(rng, iw, ih, vw / vh), _window(rng, iw, ih, vw / vh)
    move = rng.uniform(0.0, 0.6)  # how far the camera travels towards the second view
    flip = rng.random() < 0.5
    grey = rng.random() < 0.2
    gain = rng.uniform(0.75, 1.25, 3)
    contrast, offset = rng.uniform(0.7, 1.2), rng.uniform(-30, 30)
    noise = rng.uniform(0, 8)
    if inset:
        bg_img = _image(BACKGROUNDS[rng.integers(len(BACKGROUNDS))])
        bw, bh = bg_img.size
        s = rng.uniform(0.4, 1.0) * min(bh, bw * height / width)
        bx, by = rng.uniform(0, bw - s * width / height), rng.uniform(0, bh - s)
        bg = np.asarray(
            bg_img.resize((width, height), Image.BILINEAR, box=(bx, by, bx + s * width / height, by + s)), np.float32
        ) * rng.uniform(0.5, 1.1)
        ox, oy = int(rng.integers(0, width - vw + 1)), int(rng.integers(0, height - vh + 1))
    out = np.empty((n, height, width, 3), np.uint8)
    for f in range(n):
        cx, cy, h = start + (end - start) * move * f / max(1, n - 1)
        w = h * vw / vh
        view = np.asarray(
            img.resize((vw, vh), Image.BILINEAR, box=(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)), np.float32
        )
        if flip:
            view = view[:, ::-1]
        if grey:
            view = np.repeat(view.mean(2, keepdims=True), 3, 2)
        view = (view - 128) * contrast + 128 + offset
        view = view * gain
        if inset:
            frame = bg.copy()
            frame[oy : oy + vh, ox : ox + vw] = view
        else:
            frame = view
        frame = frame + rng.normal(0, noise, frame.shape)
        out[f] = frame.clip(0, 255).astype(np.uint8)
    return out


def _speed(x: np.ndarray, factor: float) -> np.ndarray:
    """Play ``x`` ``factor`` times faster (pitch and tempo together), by linear interpolation."""
    n = max(2, int(round(x.size / factor)))
    return np.interp(np.linspace(0, x.size - 1, n), np.arange(x.size), x).astype(np.float32)


def _audio(cls: int, rng: np.random.Generator, n: int) -> np.ndarray:
    sound = _speed(_sound(SOUNDS[cls]), rng.uniform(0.87, 1.15))
    sound = sound / max(1e-3, float(np.abs(sound).max()))
    x = np.zeros(n, np.float32)
    pos = int(rng.uniform(0.0, 1.0) * _SAMPLE_RATE)
    while pos < n:  # the sound again and again, with pauses, at varying loudness
        seg = sound[: n - pos] * rng.uniform(0.4, 1.0)
        x[pos : pos + seg.size] += seg
        pos += sound.size + int(rng.uniform(0.2, 2.0) * _SAMPLE_RATE)
    power = float((x**2).mean()) + 1e-9
    if rng.random() < 0.5:  # a voice talking under it, 10-20 dB quieter
        voice = _sound(DISTRACTORS[rng.integers(len(DISTRACTORS))])
        talk = np.zeros(n, np.float32)
        p = int(rng.uniform(0, 2) * _SAMPLE_RATE)
        while p < n:
            seg = voice[: n - p]
            talk[p : p + seg.size] += seg
            p += voice.size + int(rng.uniform(0.5, 3.0) * _SAMPLE_RATE)
        talk *= np.sqrt(power / (float((talk**2).mean()) + 1e-12) / 10 ** (rng.uniform(10, 20) / 10))
        x += talk
    noise = rng.standard_normal(n).astype(np.float32)
    if rng.random() < 0.5:  # brown-ish noise half of the time
        noise = np.cumsum(noise)
        noise -= np.convolve(noise, np.ones(256) / 256, mode="same")
    noise *= np.sqrt(power / (float((noise**2).mean()) + 1e-12) / 10 ** (rng.uniform(5, 25) / 10))
    return np.clip(x + noise, -1, 1).astype(np.float32)


def _write_one(job) -> PhotoSoundVideo:
    path, vcls, acls, duration, fps, width, height, seed = job
    rng = np.random.default_rng(seed)
    n = int(round(duration * fps))
    frames = _frames(vcls, rng, n, width, height)
    audio = _audio(acls, rng, int(round(duration * _SAMPLE_RATE)))
    write_video(path, frames, fps, audio, _SAMPLE_RATE)
    return PhotoSoundVideo(
        Path(path).name, vcls, acls, vcls == acls, round(n / fps, 6), PHOTOS[vcls].rsplit(".", 1)[0], SOUNDS[acls]
    )


def write_photo_sound_videos(
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
) -> list[PhotoSoundVideo]:
    """Write ``n_videos`` videos of real photographs with real sounds, plus ``ground_truth.csv``.

    Deterministic per ``seed`` for given package versions. Mismatched videos carry the sound of
    a *different* class.
    """
    missing = check_available()
    if missing:
        raise RuntimeError("the photos-and-sounds corpus needs " + " and ".join(missing))
    out, jobs = plan_corpus(
        out_dir,
        n_videos,
        prefix="photos",
        matched_fraction=matched_fraction,
        n_classes=n_classes,
        max_classes=len(PHOTOS),
        duration_s=duration_s,
        size=size,
        seed=seed,
        extra=(fps, *size),
    )
    return write_corpus(out, jobs, _write_one, workers, chunksize=4)
