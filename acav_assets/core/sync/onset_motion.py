"""The weight-free synchronisation estimator: sound onsets against picture motion.

When something is hit, dropped, clapped or stepped on, the picture changes abruptly and the
sound starts abruptly at the same moment. So the clip's *onset strength* (how much louder the
sound gets from one 10 ms step to the next, averaged over mel bands: half-wave-rectified spectral
flux of a log-mel spectrogram) and its *motion energy* (how much the picture changes from one
frame to the next: mean absolute difference of grey thumbnails, see
:func:`acav_assets.core.sync.signals.motion_energy`) rise together when the clip is in sync, and
one is a shifted copy of the other when it is not.

Steps: both envelopes, less their running median (the steady level: noise, a camera pan), are
drawn on one 100 Hz clock as Gaussian bumps at their own times (the frames' timestamps, so
variable frame rate needs nothing special; the picture's envelope adds the rise of motion, which
marks an event's start) and cross-correlated over lags of ±3 s. The lag of the highest
correlation, refined between grid points by a parabola, is the offset (> 0: the sound comes
late). When other peaks come within ``sharp_ratio`` of the highest (events at a near-constant
period), envelopes drawn with narrower bumps choose among them.

The score says how much of the peak's height the correlation already has at lag ≈ 0 (within
``in_sync_s``), weighed by how clearly the peak stands out of the correlation's spread: 1 for a
clear peak at 0, 0 for a clear peak elsewhere, 0.5 when no lag stands out.

Unknown (offset and score None, never "out of sync"): a clip without sound or whose sound has
fewer than ``min_events`` onsets (silence, steady noise or hum), a picture with fewer than
``min_events`` motion events (a still image, a smooth pan), and a clip whose onsets and motion
events do not meet at the best lag: fewer than ``min_events`` pairs, fewer than
``min_matched_share`` of the events that could pair, or no more pairs than chance would give
(binomial tail above ``max_chance``): the sound's events are not the picture's.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass

import numpy as np
import scipy.fft
from numpy.lib.stride_tricks import sliding_window_view
from scipy.ndimage import median_filter

from acav_assets.core.sync.base import SyncEstimate
from acav_assets.core.sync.signals import decode_sync_signals, motion_energy

__all__ = [
    "METHOD",
    "OnsetMotionEstimator",
    "SyncAnalysis",
    "analyse_signals",
    "SyncConfig",
    "correlate_envelopes",
    "estimate_from_signals",
    "onset_envelope",
]

METHOD = "onset-motion"


@dataclass(frozen=True)
class SyncConfig:
    """Settings of the onset-motion estimator; the defaults are the measured choice
    (``benchmarks/sync.py``, ``docs/sync.md``)."""

    max_lag_s: float = 3.0  # lags searched either way: the largest offset it can find
    rate_hz: float = 100.0  # common clock of both envelopes; also the audio hop (10 ms)
    sample_rate: int = 16_000  # audio is decoded to this rate
    window_s: float = 0.032  # audio analysis window (512 samples at 16 kHz)
    n_bands: int = 32  # mel bands of the log spectrogram
    fmin_hz: float = 50.0  # lowest mel band edge
    floor_db: float = -75.0  # band power below this (dB re a full-scale sine) is silence
    top_db: float = 80.0  # ... and so is power this far below the loudest band in the clip
    thumb_size: tuple[int, int] = (48, 36)  # grey thumbnail (width, height) motion is measured on
    smooth_s: float = 0.03  # standard deviation of the Gaussian bump each envelope sample becomes
    sharp_s: float = 0.015  # ... and of the sharper envelopes that decide between near-equal peaks
    sharp_ratio: float = 0.8  # peaks this close to the highest (a near-constant period) are near-equal
    baseline_s: float = 0.5  # running median window whose value (the steady level) is subtracted
    audio_sigmas: float = 5.0  # a sound onset: flux this many robust deviations above the baseline ...
    audio_floor_db: float = 1.5  # ... and at least this many dB per step (mean over bands)
    motion_sigmas: float = 3.0  # a motion event: motion this many robust deviations above the baseline ...
    motion_floor: float = 0.3  # ... and at least this much mean absolute change (grey levels, 0-255)
    min_gap_s: float = 0.1  # peaks closer than this are one event ...
    tail_s: float = 0.2  # ... and so is a peak this soon after a higher one (a shake's swings, a drum's rattle)
    min_events: int = 3  # fewer onsets or motion events than this (or matched at the best lag): unknown
    match_s: float = 0.1  # an onset and a motion event this close (after the offset) are one event
    in_sync_s: float = 0.1  # lags this close to 0 count as in sync for the score
    min_matched_share: float = 0.6  # fewer of the onsets or motion events that can meet doing so: unknown ...
    max_chance: float = 0.03  # ... and so is meeting as often as chance would this often (binomial tail)
    prominence_lo: float = 2.0  # peak height over the correlation's median, in standard deviations:
    prominence_hi: float = 6.0  # ... at or below lo the score says nothing (0.5), at or above hi it says all
    motion_dead_zone: float = 2.0  # grey-level changes this small are codec and sensor noise, not motion

    def __post_init__(self):
        if self.max_lag_s <= 0 or self.rate_hz <= 0 or self.min_events < 1 or self.prominence_hi <= self.prominence_lo:
            raise ValueError("max_lag_s > 0, rate_hz > 0, min_events >= 1 and prominence_hi > prominence_lo required")


@functools.lru_cache(maxsize=8)
def _mel_bank(sample_rate: int, n_fft: int, n_bands: int, fmin: float) -> np.ndarray:
    """Triangular mel filters (n_bands, n_fft // 2 + 1), each summing to 1 (a band's mean power)."""

    def mel(f):
        return 2595 * np.log10(1 + np.asarray(f) / 700)

    edges = 700 * (10 ** (np.linspace(mel(fmin), mel(sample_rate / 2), n_bands + 2) / 2595) - 1)
    freqs = np.fft.rfftfreq(n_fft, 1 / sample_rate)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    bank = np.maximum(0, np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)))
    empty = bank.sum(1) == 0  # a band narrower than a bin: take its nearest bin
    bank[empty, np.abs(freqs[None] - mid[empty]).argmin(1)] = 1
    return (bank / bank.sum(1, keepdims=True)).astype(np.float32)


def onset_envelope(
    audio: np.ndarray, sample_rate: int, config: SyncConfig = SyncConfig()
) -> tuple[np.ndarray, np.ndarray]:
    """Onset strength of ``audio``: mean over mel bands of the rise of log power (dB) from one
    analysis frame to the next, rises only. Frames are centred every ``1 / rate_hz`` seconds;
    each value is placed midway between its two frames. Returns ``(flux, times)``."""
    hop = max(1, int(round(sample_rate / config.rate_hz)))
    n_fft = 1 << int(np.ceil(np.log2(config.window_s * sample_rate)))
    x = np.asarray(audio, np.float32).reshape(-1)
    if x.size < n_fft:
        return np.zeros(0), np.zeros(0)
    x = np.pad(x, (n_fft // 2, n_fft // 2))
    frames = sliding_window_view(x, n_fft)[::hop]
    window = np.hanning(n_fft).astype(np.float32)
    spec = scipy.fft.rfft(frames * window, axis=1)  # single precision (numpy's FFT works in double)
    power = (spec.real**2 + spec.imag**2) * np.float32(4 / window.sum() ** 2)  # a full-scale sine: 1
    # einsum, not a BLAS product: a small product is slower on BLAS threads that share busy cores
    bands = np.einsum("fk,bk->fb", power, _mel_bank(sample_rate, n_fft, config.n_bands, config.fmin_hz))
    floor = max(10 ** (config.floor_db / 10), float(bands.max()) * 10 ** (-config.top_db / 10))
    db = 10 * np.log10(np.maximum(bands, floor))
    flux = np.maximum(0, np.diff(db, axis=0)).mean(1)
    times = (np.arange(1, db.shape[0]) - 0.5) * hop / sample_rate
    return flux.astype(np.float64), times


def _running_median(x: np.ndarray, n: int) -> np.ndarray:
    n = max(1, n | 1)
    if x.size == 0 or n == 1:
        return x.copy()
    return median_filter(x, size=n, mode="nearest")


def _above_baseline(x: np.ndarray, n: int) -> tuple[np.ndarray, float]:
    """``x`` less its running median over ``n`` samples, and the robust deviation of that."""
    hp = x - _running_median(x, n)
    return hp, 1.4826 * float(np.median(np.abs(hp - np.median(hp)))) if hp.size else 0.0


def _peaks(x: np.ndarray, times: np.ndarray, threshold: float, min_gap_s: float, tail_s: float = 0.0) -> np.ndarray:
    """Times of local maxima of ``x`` above ``threshold`` that also rise by ``threshold`` from the
    lowest point of the ``2 * min_gap_s`` before them (a bump on a decaying tail is no new event).
    The higher wins when two are closer than ``min_gap_s``, and a peak up to ``tail_s`` after a
    higher one is part of its event (the swings of a shake, a drum's rattle). Sorted."""
    if x.size < 3:
        return np.zeros(0)
    i = np.flatnonzero((x[1:-1] > threshold) & (x[1:-1] >= x[:-2]) & (x[1:-1] > x[2:])) + 1
    start = np.searchsorted(times, times[i] - 2 * min_gap_s)
    i = i[[x[j] - x[min(s, j - 1) : j].min() > threshold for s, j in zip(start, i)]]
    kept: list[float] = []
    for j in i[np.argsort(-x[i], kind="stable")]:
        t = times[j]
        if all(abs(t - k) >= min_gap_s and not 0 < t - k <= tail_s for k in kept):
            kept.append(float(t))
    return np.sort(np.array(kept))


def _render(values: np.ndarray, times: np.ndarray, n: int, rate: float, sd_s: float) -> np.ndarray:
    """``values`` at ``times`` drawn on an ``n``-sample clock at ``rate`` as Gaussian bumps."""
    out = np.zeros(n)
    keep = values > 0
    values, times = values[keep], times[keep]
    if values.size == 0:
        return out
    sd = sd_s * rate
    k = int(np.ceil(4 * sd))
    centre = times * rate
    idx = np.round(centre).astype(int)[:, None] + np.arange(-k, k + 1)[None]
    w = values[:, None] * np.exp(-0.5 * ((idx - centre[:, None]) / sd) ** 2)
    ok = (idx >= 0) & (idx < n)
    np.add.at(out, idx[ok], w[ok])
    return out


def correlate_envelopes(audio_env: np.ndarray, visual_env: np.ndarray, max_lag: int) -> np.ndarray:
    """Normalised cross-correlation ``r[k]`` for lags ``k`` = -max_lag..max_lag (index ``k + max_lag``):
    the sum of ``audio_env[t + k] * visual_env[t]`` over the clock, both envelopes zero-mean, over the
    product of their norms. A peak at ``k`` > 0 means the sound comes ``k`` samples late."""
    a = audio_env - audio_env.mean()
    v = visual_env - visual_env.mean()
    norm = float(np.sqrt((a * a).sum() * (v * v).sum()))
    if norm == 0:
        return np.zeros(2 * max_lag + 1)
    n = scipy.fft.next_fast_len(a.size + v.size)
    c = scipy.fft.irfft(scipy.fft.rfft(a, n) * np.conj(scipy.fft.rfft(v, n)), n)  # c[k] (k < 0 at n + k)
    lags = np.arange(-max_lag, max_lag + 1)
    r = np.where(np.abs(lags) < min(a.size, v.size), c[lags % n], 0.0)
    return r / norm


def _pairs(a: np.ndarray, b: np.ndarray, tol: float) -> int:
    """How many one-to-one pairs of an ``a`` and a ``b`` within ``tol`` of each other there are
    (closest first)."""
    if a.size == 0 or b.size == 0:
        return 0
    d = np.abs(a[:, None] - b[None, :])
    ia, ib = np.nonzero(d <= tol)
    used_a, used_b = set(), set()
    for k in np.argsort(d[ia, ib], kind="stable"):
        if ia[k] not in used_a and ib[k] not in used_b:
            used_a.add(ia[k])
            used_b.add(ib[k])
    return len(used_a)


def _chance(matched: int, n_onsets: int, moves: np.ndarray, tol: float, span: tuple[float, float]) -> float:
    """The probability that ``matched`` or more of ``n_onsets`` events of the sparser train, at
    random times in ``span``, would each fall within ``tol`` of one of ``moves``, the denser train:
    a binomial tail, each meeting with the share of the span that ``moves``' ``±tol``
    neighbourhoods cover."""
    lo, hi = span
    if hi <= lo or n_onsets == 0:
        return 1.0
    covered, end = 0.0, lo
    for m in np.sort(moves):
        a, b = max(end, m - tol, lo), min(m + tol, hi)
        if b > a:
            covered += b - a
            end = b
    p = min(1.0, covered / (hi - lo))
    return float(
        min(1.0, sum(math.comb(n_onsets, i) * p**i * (1 - p) ** (n_onsets - i) for i in range(matched, n_onsets + 1)))
    )


def _refine(r: np.ndarray, i: int) -> float:
    """The peak's position between grid points: the vertex of the parabola through ``r[i-1..i+1]``."""
    if 0 < i < r.size - 1:
        den = r[i - 1] - 2 * r[i] + r[i + 1]
        if den < 0:
            return i + float(np.clip(0.5 * (r[i - 1] - r[i + 1]) / den, -0.5, 0.5))
    return float(i)


@dataclass
class SyncAnalysis:
    """What an estimate rests on, for inspection: the events found, the correlation, its peak."""

    onsets: np.ndarray  # times of sound onsets (s from the window's start)
    moves: np.ndarray  # times of motion events
    correlation: np.ndarray  # r over lags -max_lag..max_lag on the envelope clock (empty when not computed)
    offset_s: float | None = None
    prominence: float = 0.0  # peak over the correlation's median, in its standard deviations
    at_zero: float = 0.0  # share of the peak's height (over the median) reached within in_sync_s of lag 0
    matched: int = 0  # onsets that meet a motion event at the offset
    matched_share: float = 0.0  # matched over the fewer of onsets and motion events that can meet (both in the window)
    chance: float = 1.0  # probability of meeting that often by chance at one lag (see _chance)
    reason: str = ""  # why there is no estimate ("" when there is)


def analyse_signals(
    audio: np.ndarray | None,
    sample_rate: int,
    motion: np.ndarray,
    motion_times: np.ndarray,
    config: SyncConfig = SyncConfig(),
    *,
    duration_s: float | None = None,
) -> SyncAnalysis:
    """The steps of :func:`estimate_from_signals`, with what each found."""
    empty = np.zeros(0)
    motion = np.asarray(motion, float)
    motion_times = np.asarray(motion_times, float)
    if audio is None or np.asarray(audio).size == 0:
        return SyncAnalysis(empty, empty, empty, reason="no audio")
    duration = duration_s if duration_s is not None else np.asarray(audio).size / sample_rate
    rate = config.rate_hz

    flux, flux_times = onset_envelope(audio, sample_rate, config)
    a_hp, a_dev = _above_baseline(flux, int(round(config.baseline_s * rate)))
    a_thr = max(config.audio_sigmas * a_dev, config.audio_floor_db)
    onsets = _peaks(a_hp, flux_times, a_thr, config.min_gap_s, config.tail_s)
    fps = (motion.size - 1) / max(1e-6, motion_times[-1] - motion_times[0]) if motion.size >= 2 else 1.0
    m_hp, m_dev = _above_baseline(motion, int(round(config.baseline_s * fps)))
    m_thr = max(config.motion_sigmas * m_dev, config.motion_floor)
    moves = _peaks(m_hp, motion_times, m_thr, config.min_gap_s, config.tail_s)
    if onsets.size < config.min_events:
        return SyncAnalysis(onsets, moves, empty, reason="too few sound onsets")
    if moves.size < config.min_events:
        return SyncAnalysis(onsets, moves, empty, reason="too few motion events")

    n = int(np.ceil(duration * rate)) + 1
    a_env = _render(a_hp, flux_times, n, rate, config.smooth_s)
    # the picture's envelope: motion above its steady level, plus its rise (sharper at an event's start)
    v_val = np.maximum(0, m_hp) + np.maximum(0, np.diff(motion, prepend=motion[:1]))
    v_env = _render(v_val, motion_times, n, rate, config.smooth_s)
    max_lag = int(round(config.max_lag_s * rate))
    r = correlate_envelopes(a_env, v_env, max_lag)
    i = int(np.argmax(r))
    judge = r  # the correlation the score reads
    cand = np.flatnonzero((r[1:-1] >= r[:-2]) & (r[1:-1] > r[2:]) & (r[1:-1] >= config.sharp_ratio * r[i])) + 1
    if cand.size > 1 and config.sharp_s > 0:
        # near-equal peaks (events at a near-constant period): sharper envelopes decide, and judge
        a_sharp = _render(a_hp, flux_times, n, rate, config.sharp_s)
        judge = correlate_envelopes(a_sharp, _render(v_val, motion_times, n, rate, config.sharp_s), max_lag)
        i = int(max(cand, key=lambda c: judge[max(0, c - 2) : c + 3].max()))
    offset = (_refine(r, i) - max_lag) / rate
    # onsets whose event is in the picture, and motion events whose sound is in the window
    on = onsets[(onsets - offset >= 0) & (onsets - offset <= duration)]
    mv = moves[(moves + offset >= 0) & (moves + offset <= duration)]
    matched = _pairs(on - offset, mv, config.match_s)
    share = matched / max(1, min(on.size, mv.size))
    sparse, dense = (on - offset, mv) if on.size <= mv.size else (mv, on - offset)
    chance = _chance(matched, sparse.size, dense, config.match_s, (max(0.0, -offset), min(duration, duration - offset)))
    base, spread = float(np.median(r)), float(r.std())
    peak = float(r[i])
    near = int(round(config.in_sync_s * rate))
    jb = float(np.median(judge))
    jp = float(judge[max(0, i - 2) : i + 3].max())
    at_zero = float(np.clip((judge[max_lag - near : max_lag + near + 1].max() - jb) / max(1e-12, jp - jb), 0, 1))
    prominence = (peak - base) / max(1e-12, spread)
    out = SyncAnalysis(onsets, moves, r, offset, prominence, at_zero, matched, share, chance)
    if matched < config.min_events or share < config.min_matched_share or chance > config.max_chance:
        out.reason = "onsets and motion do not meet"
    return out


def estimate_from_signals(
    audio: np.ndarray | None,
    sample_rate: int,
    motion: np.ndarray,
    motion_times: np.ndarray,
    config: SyncConfig = SyncConfig(),
    *,
    duration_s: float | None = None,
) -> SyncEstimate:
    """The offset of ``audio`` against the picture whose motion energy is ``motion`` at
    ``motion_times`` (see :func:`acav_assets.core.sync.signals.motion_energy`).

    Audio sample 0 and motion time 0 are the same instant (the window's start); ``duration_s``
    defaults to the audio's length. ``audio`` None (no audio stream) gives an unknown estimate.
    """
    a = analyse_signals(audio, sample_rate, motion, motion_times, config, duration_s=duration_s)
    if a.reason:
        return SyncEstimate(None, None, a.matched or min(a.onsets.size, a.moves.size), METHOD, a.reason)
    lo, hi = config.prominence_lo, config.prominence_hi
    conf = float(np.clip((a.prominence - lo) / (hi - lo), 0, 1))
    score = float(np.clip(0.5 + 0.5 * conf * (2 * a.at_zero - 1), 0, 1))
    return SyncEstimate(float(a.offset_s), score, a.matched, METHOD)


class OnsetMotionEstimator:
    """Weight-free :class:`~acav_assets.core.sync.base.SyncEstimator`: decodes the window once
    (grey thumbnails of every frame, mono audio) and runs :func:`estimate_from_signals`."""

    method = METHOD

    def __init__(self, config: SyncConfig = SyncConfig()):
        self.config = config

    def estimate(self, path: str | os.PathLike, start_s: float, end_s: float) -> SyncEstimate:
        sig = decode_sync_signals(
            path, start_s, end_s, thumb_size=self.config.thumb_size, sample_rate=self.config.sample_rate
        )
        motion, times = motion_energy(sig.thumbnails, sig.frame_times, self.config.motion_dead_zone, sig.key_frames)
        return estimate_from_signals(sig.audio, sig.sample_rate, motion, times, self.config, duration_s=sig.duration_s)
