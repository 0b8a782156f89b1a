"""An evaluation corpus for audio-visual synchronisation: visible and audible events, some of them
with the sound shifted by a known offset.

Set-level correspondence (the selection's mutual information) cannot see whether a sound is *in
time* with its picture; this corpus can, because every event is both seen and heard at a known
time. Material from installed packages, as in :mod:`acav_assets.core.generators.stamps_sounds`:

- picture: a Tux Paint cut-out photograph (a hammer, a mallet, drums, a cymbal, balls, tools) over
  a blurred scikit-image photograph or texture that drifts slowly with a little camera shake, or a
  full scikit-image photograph seen through a slowly panning window. At each event the object
  visibly reacts: it *jumps* (displaced, then settles), *shakes* (a decaying oscillation), *flashes*
  (brighter, then fades), *squashes* (grows, then shrinks back) or *strikes* (falls onto its rest
  position in 40-100 ms, the sound coming at the contact, then rebounds); a full photograph gets a
  camera *jolt* or a *flash*. Colour grade and pixel noise on top (a still picture: half of the
  time, with grain that changes every frame; exactly still otherwise).
- sound: one-shot hits cut from real recordings (Tux Paint's hammer and metal mallet, drums and
  cymbal; GCompris's pickaxe, metal hit, brick, falling objects, heart beat, door, bongo, snare,
  drum kit, timpani, tambourine and cymbal: :data:`HIT_SOURCES`), each hit from an onset to the
  next (at most 0.45 s), placed at the event times at random loudness, over pink or brown noise
  at 5-20 dB SNR (against the power while the hits sound), half of the time with a recorded rain
  or water ambience under it.

Events come at random gaps (0.3-1.5 s: irregular, so that one lag explains them) or, for the
``periodic`` kind, at a near-constant period (0.45-0.9 s, ±4 %), where a shift by about a
period is ambiguous. A ``shifted_fraction`` share of the clips with events has its sound shifted
by 0.4-2.0 s, either way (``offset_s`` > 0: the sound comes late, as in the ``clip_sync`` table);
events are drawn from 3 s before the clip to 3 s after it, so a shifted sound brings in hits of
events outside the picture, as a real shifted track does. Clips without usable events: a
static picture with steady noise (``static_noise``), with silence (``static_silence``) or with
hits (``static_sounds``: a still image over a soundtrack), a moving picture with events but a
steady sound (``moving_steady``), and a moving picture with events but no audio stream
(``no_audio``). Frame rates: 25 fps mostly, 15 and 30 fps, and variable frame rate (``vfr``:
frame times from a 30 fps clock with dropped frames and jitter).

Each video is longer than its clip window (``start_s``, ``end_s`` in ``ground_truth.csv``, 10 s
by default), so that an estimator has to seek. Deterministic per ``seed`` for given package
versions; :func:`check_available` says what is missing.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from acav_assets.core.generators.pairing import check_corpus_args, write_corpus
from acav_assets.core.generators.photos_sounds import BACKGROUNDS, PHOTOS, _image, _photo_dir, _window
from acav_assets.core.generators.stamps_sounds import (
    TUXPAINT_DIR,
    _coloured_noise,
    _grade,
    _picture,
    _power,
    _recording,
    _resolve,
    _view,
)
from acav_assets.core.generators.stamps_sounds import check_available as _stamps_check_available
from acav_assets.core.media.encode import write_video

__all__ = [
    "AMBIENCES",
    "CUTOUTS",
    "EVENTLESS_KINDS",
    "HIT_SOURCES",
    "KIND_SHARES",
    "SyncEventVideo",
    "check_available",
    "hits",
    "write_sync_event_videos",
]

_SAMPLE_RATE = 22050  # the generators' audio rate (the recordings are decoded to it)

#: Cut-out photographs (Tux Paint stamps, PNG with alpha) that react visibly at each event.
CUTOUTS: tuple[str, ...] = (
    "household/tools/hammer.png",
    "household/tools/mallet_metal.png",
    "household/tools/wrench.png",
    "household/tools/spade.png",
    "household/tools/toolbox.png",
    "hobbies/music/percussion/drum_tomtom_floor.png",
    "hobbies/music/percussion/drumkit.png",
    "hobbies/music/percussion/cymbal_crash.png",
    "sports/basketball.png",
    "sports/cricketball.png",
    "sports/football.png",
    "sports/soccer.png",
    "sports/tennis_ball.png",
)

#: Recordings of impacts (``tuxpaint/...`` or ``gcompris/...`` as in ``stamps_sounds.CLASSES``),
#: cut into one-shot hits by :func:`hits`.
HIT_SOURCES: tuple[str, ...] = (
    "tuxpaint/household/tools/hammer.ogg",
    "tuxpaint/household/tools/mallet_metal.ogg",
    "tuxpaint/hobbies/music/percussion/drum_tomtom_floor.ogg",
    "tuxpaint/hobbies/music/percussion/drumkit.ogg",
    "gcompris/activities/mining/resource/pickaxe.wav",
    "gcompris/activities/scalesboard/resource/metal_hit.wav",
    "gcompris/core/resource/sounds/brick.wav",
    "gcompris/activities/memory-sound/resource/LRObject_falling_01_LA.ogg",
    "gcompris/activities/memory-sound/resource/LRObject_falling_02_LA.ogg",
    "gcompris/activities/memory-sound/resource/LRHeart_beat_01_LA.ogg",
    "gcompris/activities/canal_lock/resource/door_close.wav",
    *(
        f"gcompris/activities/instruments/resource/{x}.ogg"
        for x in ("bongo", "cymbal", "drum_kit", "snare_drum", "timpani", "tambourine")
    ),
)

#: Steady recorded ambiences laid under the noise half of the time (and as the steady sound of
#: ``moving_steady`` clips).
AMBIENCES: tuple[str, ...] = (
    "gcompris/activities/memory-sound/resource/LRRain_in_garden_01_LA_cut.ogg",
    "gcompris/activities/canal_lock/resource/water_fill.wav",
    "gcompris/core/resource/sounds/water.wav",
)

#: Kinds of clip and their default shares of a corpus. ``events`` and ``periodic`` have visible
#: and audible events (a share of them shifted); the others have no usable events.
KIND_SHARES: dict[str, float] = {
    "events": 0.55,
    "periodic": 0.15,
    "static_noise": 0.06,
    "static_silence": 0.06,
    "static_sounds": 0.06,
    "moving_steady": 0.06,
    "no_audio": 0.06,
}
EVENTLESS_KINDS = ("static_noise", "static_silence", "static_sounds", "moving_steady", "no_audio")
_CUTOUT_MOTIONS = ("jump", "shake", "flash", "squash", "strike")
_PHOTO_MOTIONS = ("jolt", "flash")
_FPS_CHOICES = ((25.0, 0.55), (30.0, 0.15), (15.0, 0.15), (0.0, 0.15))  # 0: variable frame rate
_MARGIN_S = 3.0  # events are drawn this far before and after the video, so shifted sound has hits at its edges


@dataclass(frozen=True)
class SyncEventVideo:
    file: str
    kind: str  # one of KIND_SHARES
    has_events: bool  # visible and audible events in the window: an offset can be measured
    shifted: bool  # the sound is shifted by offset_s (|offset_s| >= 0.4)
    offset_s: float  # true sound lag against the picture, seconds (> 0: the sound comes late); 0 when in sync
    fps: float  # nominal frame rate (for vfr: the mean)
    vfr: bool  # variable frame rate
    start_s: float  # the clip window to estimate on
    end_s: float
    duration_s: float
    n_events: int  # events shown in the window
    period_s: float  # mean gap of near-periodic events; 0 otherwise
    motion: str  # how the picture reacts to an event ("" when it does not move)
    picture: str
    sound: str  # the hit recording, or the steady sound ("" for silence or no audio)


def check_available() -> list[str]:
    """What this generator lacks on this machine (empty when it can run); unpacks nothing."""
    missing = list(_stamps_check_available())
    d = _photo_dir()
    if d is None or not all((d / p).is_file() for p in PHOTOS + BACKGROUNDS):
        if not any("scikit-image" in m for m in missing):
            missing.append("scikit-image's sample photographs (pip install scikit-image==0.26.0)")
    if TUXPAINT_DIR.is_dir() and not all((TUXPAINT_DIR / p).is_file() for p in CUTOUTS):
        missing.append("the Tux Paint stamps " + ", ".join(p for p in CUTOUTS if not (TUXPAINT_DIR / p).is_file()))
    return missing


# ----------------------------------------------------------------------------------------------
# sounds


def hits(x: np.ndarray, sample_rate: int = _SAMPLE_RATE) -> list[np.ndarray]:
    """The one-shot hits of a recording: from each onset (the 5 ms energy rises 12 dB above the
    lowest of the 30 ms before it, within 20 dB of the loudest) to the next onset, at most 0.45 s,
    kept when the hit peaks in its first 30 ms (an impact, not a swell) and lasts 80 ms or more;
    faded out over their last 20 ms."""
    lead = int(0.05 * sample_rate)
    x = np.concatenate([np.zeros(lead, np.float32), x.astype(np.float32)])
    h = int(0.005 * sample_rate)
    n = x.size // h
    e = 10 * np.log10((x[: n * h].reshape(n, h).astype(np.float64) ** 2).mean(1) + 1e-10)
    top = e.max()
    onsets, last = [], -100
    for i in range(6, n):
        if e[i] - e[i - 6 : i].min() > 12 and e[i] > top - 20 and i - last > 10:
            onsets.append(i)
            last = i
    out = []
    fade = int(0.02 * sample_rate)
    for j, i in enumerate(onsets):
        end = min(onsets[j + 1] if j + 1 < len(onsets) else n, i + 90)
        if end - i < 16 or int(np.argmax(e[i:end])) > 6:
            continue
        seg = x[max(0, i * h - h) : end * h].copy()
        seg[-fade:] *= np.linspace(1, 0, fade, dtype=np.float32)
        out.append(seg / max(1e-6, float(np.abs(seg).max())))
    return out


@functools.lru_cache(maxsize=64)
def _hits_of(rel: str) -> tuple[np.ndarray, ...]:
    return tuple(hits(_recording(str(_resolve(rel)))))


@functools.lru_cache(maxsize=8)
def _ambience(rel: str) -> np.ndarray:
    return _recording(str(_resolve(rel)))


def _loop(x: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` samples of ``x`` from a random start, looped (with a short cross-fade at each seam)."""
    fade = min(x.size // 4, int(0.05 * _SAMPLE_RATE))
    out = np.zeros(n, np.float32)
    pos = 0
    start = int(rng.integers(0, max(1, x.size - fade)))
    while pos < n:
        seg = x[start:].copy()
        start = 0
        if fade:
            seg[:fade] *= np.linspace(0, 1, fade, dtype=np.float32)
            seg[-fade:] *= np.linspace(1, 0, fade, dtype=np.float32)
        k = min(seg.size, n - pos)
        out[pos : pos + k] += seg[:k]
        pos += max(1, seg.size - fade)
    return out


def _hit_track(times: np.ndarray, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, str]:
    """Hits of one recording (or two, a third of the time) at ``times`` (seconds, may start before
    0), at random loudness. Returns the track, where it sounds, and the recordings used."""
    sources = [rel for rel in HIT_SOURCES if _hits_of(rel)]  # recordings in which hits were found
    picks = [sources[i] for i in rng.choice(len(sources), 2 if rng.random() < 1 / 3 else 1, replace=False)]
    pool = [h for rel in picks for h in _hits_of(rel)]
    x, active = np.zeros(n, np.float32), np.zeros(n, bool)
    for t in times:
        hit = pool[rng.integers(len(pool))] * rng.uniform(0.5, 1.0)
        i = int(round(t * _SAMPLE_RATE))
        lo, hi = max(0, i), min(n, i + hit.size)
        if hi > lo:
            x[lo:hi] += hit[lo - i : hi - i]
            active[lo:hi] = True
    return x, active, "+".join(picks)


def _steady(rng: np.random.Generator, n: int) -> tuple[np.ndarray, str]:
    """A steady sound: coloured noise, a recorded ambience, or a hum with harmonics."""
    r = rng.random()
    if r < 0.4:
        exp = 1.0 if rng.random() < 0.5 else 2.0
        x = _coloured_noise(rng, n, exp)
        name = "pink noise" if exp == 1.0 else "brown noise"
    elif r < 0.8:
        name = AMBIENCES[rng.integers(len(AMBIENCES))]
        x = _loop(_ambience(name), rng, n)
    else:
        f0 = rng.uniform(50, 200)
        t = np.arange(n) / _SAMPLE_RATE
        x = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6.3)) / k for k in range(1, 6)).astype(np.float32)
        hiss = _coloured_noise(rng, n, 1.0)
        x += 0.05 * hiss / np.sqrt(_power(hiss))
        name = f"hum {f0:.0f} Hz"
    return (x / np.sqrt(_power(x)) * 0.1).astype(np.float32), name


def _event_audio(times: np.ndarray, rng: np.random.Generator, n: int) -> tuple[np.ndarray, str]:
    """Hits at ``times`` over noise at 5-20 dB SNR, half of the time with an ambience under it."""
    x, active, name = _hit_track(times, rng, n)
    power = _power(x, active)
    noise = _coloured_noise(rng, n, 1.0 if rng.random() < 0.5 else 2.0)
    if rng.random() < 0.5:
        amb = _loop(_ambience(AMBIENCES[rng.integers(len(AMBIENCES))]), rng, n)
        noise = noise / np.sqrt(_power(noise)) + amb / np.sqrt(_power(amb))
    x = x + noise * np.sqrt(power / _power(noise) / 10 ** (rng.uniform(5, 20) / 10))
    return (x / max(1.0, float(np.abs(x).max()) / 0.95)).astype(np.float32), name


# ----------------------------------------------------------------------------------------------
# pictures


def _response(motion: str, u: np.ndarray, tau: float, freq: float, approach: float) -> np.ndarray:
    """How far an object is from rest ``u`` seconds after an event (one event; 0 before it, except
    for a strike's approach): 1 at the event for jump, flash and squash, decaying with ``tau``; a
    decaying cosine for shake and jolt; for strike, the fall onto the rest position during
    ``approach`` seconds before the event (from 1 to 0, accelerating), then a small rebound."""
    out = np.zeros_like(u)
    after = u >= 0
    decay = np.exp(-np.where(after, u, 0) / tau)
    if motion in ("jump", "flash", "squash"):
        out[after] = decay[after]
    elif motion in ("shake", "jolt"):
        out[after] = (decay * np.cos(2 * np.pi * freq * np.where(after, u, 0)))[after]
    elif motion == "strike":
        fall = (u < 0) & (u >= -approach)
        out[fall] = (u[fall] / approach) ** 2
        out[after] = 0.25 * (decay * np.abs(np.sin(np.pi * np.where(after, u, 0) / (2 * tau))))[after]
    return out


def _state(motion: str, events: np.ndarray, times: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The object's excursion from rest at each frame time, summed over events (each drawn its own
    strength 0.6-1)."""
    tau = rng.uniform(0.08, 0.2)
    freq = rng.uniform(6, 10)
    approach = rng.uniform(0.04, 0.1)
    out = np.zeros(times.size)
    for e in events:
        near = (times > e - 0.2) & (times < e + 8 * tau)
        if near.any():
            out[near] += rng.uniform(0.6, 1.0) * _response(motion, times[near] - e, tau, freq, approach)
    return out


def _frame_times(fps: float, duration: float, rng: np.random.Generator) -> np.ndarray:
    """Frame times: ``fps`` regular, or (fps 0) a 30 fps clock with dropped frames (1 in 5) and
    ±3 ms jitter, as phones record."""
    if fps > 0:
        return np.arange(int(round(duration * fps))) / fps
    ticks = np.arange(int(duration * 30))
    ticks = ticks[(rng.random(ticks.size) > 0.2) | (ticks == 0)]
    t = ticks / 30 + np.where(ticks > 0, rng.uniform(-0.003, 0.003, ticks.size), 0)
    return np.round(t, 3)


def _photo_frames(times, events, motion, rng, width, height, static) -> tuple[np.ndarray, str]:
    """A full scikit-image photograph through a slowly panning window; a jolt moves the window,
    a flash brightens the frame."""
    name = PHOTOS[rng.integers(len(PHOTOS))]
    img = _image(name)
    aspect = width / height
    boxes = (_window(rng, img.width, img.height, aspect), _window(rng, img.width, img.height, aspect))
    n = times.size
    shake = np.zeros((n, 2)) if static else np.cumsum(rng.normal(0, rng.uniform(0, 0.3), (n, 2)), 0) * 0.5
    state = _state(motion, events, times, rng) if not static else np.zeros(n)
    gain = np.ones(n)
    if motion == "jolt":
        direction = rng.normal(0, 1, 2)
        shake = shake + np.outer(state, direction / np.linalg.norm(direction)) * rng.uniform(0.06, 0.12) * height
    elif motion == "flash":
        gain = 1 + state * rng.uniform(0.3, 0.6)
    if static:
        frame = _view(img, boxes, 0.0, np.zeros((1, 2)), width, height)
        frames = np.repeat(frame, n, 0)
    else:
        frames = _view(img, boxes, rng.uniform(0.05, 0.3), shake, width, height)
    return frames * gain[:, None, None, None], f"skimage/{name}"


def _cutout_frames(times, events, motion, rng, width, height, static) -> tuple[np.ndarray, str]:
    """A Tux Paint cut-out over a blurred photograph or texture; the object reacts to each event."""
    from PIL import Image

    rel = CUTOUTS[rng.integers(len(CUTOUTS))]
    n = times.size
    bg_name = (PHOTOS + BACKGROUNDS)[rng.integers(len(PHOTOS + BACKGROUNDS))]
    bg = _image(bg_name)
    aspect = width / height
    boxes = (_window(rng, bg.width, bg.height, aspect), _window(rng, bg.width, bg.height, aspect))
    shake = np.zeros((n, 2)) if static else np.cumsum(rng.normal(0, rng.uniform(0, 0.3), (n, 2)), 0) * 0.5
    blur = rng.uniform(1.0, 2.5) * height / 96
    if static:
        back = np.repeat(_view(bg, boxes, 0.0, np.zeros((1, 2)), width, height, blur=blur), n, 0)
    else:
        back = _view(bg, boxes, rng.uniform(0.0, 0.3), shake, width, height, blur=blur)
    back *= rng.uniform(0.6, 1.0)

    cut = _picture(str(TUXPAINT_DIR / rel), 2 * height)
    if rng.random() < 0.5:
        cut = cut.transpose(Image.FLIP_LEFT_RIGHT)
    base = min(rng.uniform(0.35, 0.6) * height / cut.height, rng.uniform(0.4, 0.6) * width / cut.width)
    cut = cut.resize((max(2, round(cut.width * base * 1.3)), max(2, round(cut.height * base * 1.3))), Image.LANCZOS)
    s0 = 1 / 1.3
    c0 = np.array([rng.uniform(0.35, 0.65) * width, rng.uniform(0.45, 0.65) * height])
    drift = np.zeros(2) if static else rng.uniform(-0.02, 0.02, 2) * (width, height)  # per second
    theta = np.deg2rad(rng.uniform(-10, 10))
    state = _state(motion, events, times, rng) if not static else np.zeros(n)
    amp = rng.uniform(0.08, 0.16) * height  # displacement of a jump, shake or strike
    ocx, ocy = cut.width / 2, cut.height / 2
    for f in range(n):
        c = c0 + drift * times[f] + shake[f]
        s, gain = s0, 1.0
        if motion in ("jump", "strike"):
            c = c + (0, -amp * state[f])
        elif motion == "shake":
            c = c + (amp * state[f], 0)
        elif motion == "squash":
            s = s0 * (1 + 0.25 * state[f])
        elif motion == "flash":
            gain = 1 + 0.8 * state[f]
        a, b = np.cos(theta) / s, np.sin(theta) / s
        d, e = -np.sin(theta) / s, np.cos(theta) / s
        layer = cut.transform(
            (width, height),
            Image.AFFINE,
            (a, b, ocx - a * c[0] - b * c[1], d, e, ocy - d * c[0] - e * c[1]),
            resample=Image.BILINEAR,
        )
        rgba = np.asarray(layer, np.float32)
        alpha = rgba[..., 3:] / 255
        back[f] = back[f] * (1 - alpha) + np.minimum(255, rgba[..., :3] * gain) * alpha
    return back, f"tuxpaint/{rel}"


# ----------------------------------------------------------------------------------------------
# videos


def _event_times(rng: np.random.Generator, duration: float, period: float) -> np.ndarray:
    """Event times from ``-_MARGIN_S`` to ``duration + _MARGIN_S``: random gaps of 0.3-1.5 s, or
    ``period`` ± 4 % when ``period`` > 0."""
    t, out = -_MARGIN_S + rng.uniform(0, 1.0), []
    while t < duration + _MARGIN_S:
        out.append(t)
        t += period * rng.uniform(0.96, 1.04) if period > 0 else rng.uniform(0.3, 1.5)
    return np.array(out)


def _write_one(job) -> SyncEventVideo:
    path, kind, offset, fps, duration, start, end, width, height, seed = job
    rng = np.random.default_rng(seed)
    moving = kind in ("events", "periodic", "moving_steady", "no_audio")
    period = rng.uniform(0.45, 0.9) if kind == "periodic" else 0.0
    events = _event_times(rng, duration, period)
    times = _frame_times(fps, duration, rng)
    photo = rng.random() < 0.3
    motion = ""
    if moving:
        motion = (_PHOTO_MOTIONS if photo else _CUTOUT_MOTIONS)[rng.integers(2 if photo else len(_CUTOUT_MOTIONS))]
    render = _photo_frames if photo else _cutout_frames
    frames, picture = render(times, events if moving else np.zeros(0), motion or "jump", rng, width, height, not moving)
    if moving or rng.random() < 0.5:  # a static picture is noise-free half of the time (a still image)
        frames = _grade(frames, rng)
    else:
        frames = frames.clip(0, 255).astype(np.uint8)

    n_audio = int(round(duration * _SAMPLE_RATE))
    audio, sound = None, ""
    if kind in ("events", "periodic", "static_sounds"):
        audio, sound = _event_audio(events + offset, rng, n_audio)
    elif kind in ("static_noise", "moving_steady"):
        audio, sound = _steady(rng, n_audio)
    elif kind == "static_silence":
        audio = np.zeros(n_audio, np.float32)
    vfr = fps == 0
    write_video(path, frames, fps or 30.0, audio, _SAMPLE_RATE, frame_times=times if vfr else None, gop_s=2.0)
    has_events = kind in ("events", "periodic")
    return SyncEventVideo(
        file=Path(path).name,
        kind=kind,
        has_events=has_events,
        shifted=abs(offset) >= 0.4,
        offset_s=round(float(offset), 4),
        fps=round(float(times.size / duration if vfr else fps), 3),
        vfr=vfr,
        start_s=start,
        end_s=end,
        duration_s=round(duration, 4),
        n_events=int(((events >= start) & (events < end)).sum()) if moving else 0,
        period_s=round(float(period), 4),
        motion=motion,
        picture=picture,
        sound=sound,
    )


def write_sync_event_videos(
    out_dir: str | os.PathLike,
    n_videos: int = 60,
    *,
    shifted_fraction: float = 0.5,
    kind_shares: dict[str, float] | None = None,
    shift_s: tuple[float, float] = (0.4, 2.0),
    window_s: float = 10.0,
    size: tuple[int, int] = (160, 120),
    seed: int = 0,
    workers: int | None = None,
) -> list[SyncEventVideo]:
    """Write ``n_videos`` videos and ``ground_truth.csv`` (one :class:`SyncEventVideo` per row).

    Kinds come in the proportions of ``kind_shares`` (default :data:`KIND_SHARES`; counts are
    rounded, so a corpus has exactly its share of each), and a ``shifted_fraction`` share of the
    clips with events has its sound shifted by ``shift_s`` seconds, either way at random. Each video
    lasts ``window_s`` + 1-3 s, its window starting 0.5-2.5 s in. Deterministic per ``seed``.
    """
    check_corpus_args(n_videos, shifted_fraction, size)
    if not 0 < shift_s[0] <= shift_s[1] or window_s < 1:
        raise ValueError(f"bad shift range {shift_s} or window {window_s}")
    missing = check_available()
    if missing:
        raise RuntimeError("the sync corpus needs " + " and ".join(missing))
    for rel in HIT_SOURCES + AMBIENCES:  # unpack the GCompris archives before the workers start
        _resolve(rel)
    shares = kind_shares or KIND_SHARES
    unknown = set(shares) - set(KIND_SHARES)
    if unknown:
        raise ValueError(f"unknown kinds {sorted(unknown)}")
    rng = np.random.default_rng(seed)
    names = list(shares)
    w = np.array([shares[k] for k in names], float)
    counts = np.floor(w / w.sum() * n_videos).astype(int)
    for i in np.argsort(-(w / w.sum() * n_videos - counts))[: n_videos - counts.sum()]:
        counts[i] += 1
    kinds = np.repeat(names, counts)[rng.permutation(n_videos)]
    with_events = np.flatnonzero(np.isin(kinds, ("events", "periodic")))
    shifted = np.zeros(n_videos, bool)
    shifted[rng.permutation(with_events)[: int(round(shifted_fraction * with_events.size))]] = True
    offsets = np.where(shifted, rng.uniform(*shift_s, n_videos) * rng.choice([-1.0, 1.0], n_videos), 0.0)
    fps_values, fps_p = zip(*_FPS_CHOICES)
    fps = rng.choice(fps_values, n_videos, p=fps_p)
    durations = window_s + rng.uniform(1.0, 3.0, n_videos)
    starts = np.round(rng.uniform(0.5, durations - window_s - 0.5), 3)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [
        (
            str(out / f"sync_{i:05d}.mp4"),
            str(kinds[i]),
            float(offsets[i]),
            float(fps[i]),
            float(durations[i]),
            float(starts[i]),
            float(starts[i] + window_s),
            *size,
            [seed, i],
        )
        for i in range(n_videos)
    ]
    return write_corpus(out, jobs, _write_one, workers, chunksize=2)
