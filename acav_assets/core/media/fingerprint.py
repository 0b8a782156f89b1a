"""Perceptual fingerprints of a video's picture and sound, and how two are compared.

Exact content hashing (``videos.video_id``) misses re-uploads: the same content re-encoded,
rescaled, trimmed, with another audio bitrate. These fingerprints survive that:

- **picture**: the low 8×8 DCT frequencies of a 32×32 grey thumbnail of every *keyframe*
  (63 coefficients without the DC term, unit length; and as a 64-bit hash, each bit "above the
  median", for lookups), with its time. Only keyframes are decoded (``skip_frame = NONKEY``),
  which keeps the cost a fraction of a full decode; keyframe times differ between encodes, so a
  keyframe is compared (cosine) with the other copy's keyframes within ``VISUAL_WINDOW_S`` of
  the same moment. Coefficients, not hash bits, decide: a heavy re-encode of a small picture
  flips many bits of coefficients near the median (measured: 16-22 of 64 bits at CRF 45 on
  96×64 frames) while their cosine stays above 0.94.
- **sound**: a 64-bit hash per 1 s window, every 0.25 s: the signs of the differences between
  neighbouring bands of a log-spaced 33-band spectrum (300-3400 Hz at 8 kHz; 32 bits) and of how
  those differences changed since the previous window (32 bits), in the spirit of Haitsma and
  Kalker's audio fingerprint. Silent windows get no hash.

Two videos are near-duplicates when, at the best alignment of their sound (any shift, in steps
of 0.25 s: trims), at least ``audio_match`` of the overlapping sounding windows agree to within
``audio_bits`` bits and at least ``visual_match`` of the shorter one's keyframes have a
counterpart with cosine >= ``visual_cos`` (videos without sound: the keyframes alone, at their
best shift). The defaults come from ``benchmarks/near_duplicates.py``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import av
import numpy as np

__all__ = ["Fingerprint", "NearDuplicateConfig", "compare", "fingerprint_file", "fingerprint_or_reason", "popcount64"]

HOP_S = 0.25  # sound hashes every quarter second
AUDIO_RATE = 8000
VISUAL_WINDOW_S = 1.0
MAX_KEYFRAMES = 600
MAX_AUDIO_S = 1800.0


@dataclass
class Fingerprint:
    key_times: np.ndarray  # (K,) float64 seconds from the first video frame
    key_hashes: np.ndarray  # (K,) uint64
    key_vectors: np.ndarray  # (K, 63) float32, unit length
    audio_hashes: np.ndarray  # (W,) uint64, window i starts at i * HOP_S
    audio_sounding: np.ndarray  # (W,) bool: False for silent windows (their hash means nothing)

    @property
    def duration_s(self) -> float:
        return max(float(self.key_times[-1]) if self.key_times.size else 0.0, self.audio_hashes.size * HOP_S)


@dataclass(frozen=True)
class NearDuplicateConfig:
    audio_bits: int = 12  # sound windows agree when their hashes differ in at most this many bits
    audio_match: float = 0.4  # share of overlapping sounding windows that must agree
    visual_cos: float = 0.9  # keyframes agree when their DCT coefficients have at least this cosine
    lookup_bits: int = 12  # keyframe hash radius for finding candidates of videos without sound
    visual_match: float = 0.75  # share of the shorter video's keyframes that must find a counterpart
    min_overlap_s: float = 3.0  # the copies must overlap this long (at the best alignment)

    def __post_init__(self):
        if not (0 <= self.audio_bits <= 15 and 0 <= self.lookup_bits <= 15):
            raise ValueError("audio_bits and lookup_bits must be in [0, 15] (the lookup finds codes up to 15 bits away)")
        if not -1 <= self.visual_cos <= 1:
            raise ValueError("visual_cos must be in [-1, 1]")
        if not (0 < self.audio_match <= 1 and 0 < self.visual_match <= 1):
            raise ValueError("audio_match and visual_match must be in (0, 1]")


_M = 32
_DCT = np.cos(np.pi * (2 * np.arange(_M)[None, :] + 1) * np.arange(_M)[:, None] / (2 * _M))  # rows: frequencies
_BITS = (1 << np.arange(64, dtype=np.uint64)).astype(np.uint64)


def _pack(bits: np.ndarray) -> np.ndarray:
    """(N, 64) bool -> (N,) uint64."""
    return (bits.astype(np.uint64) * _BITS).sum(axis=1, dtype=np.uint64)


def popcount64(x: np.ndarray) -> np.ndarray:
    """Number of set bits of each uint64."""
    x = np.ascontiguousarray(x, dtype=np.uint64)
    return np.unpackbits(x.view(np.uint8).reshape(*x.shape, 8), axis=-1).sum(axis=-1)


def _picture_hash(grey: np.ndarray) -> tuple[int, np.ndarray]:
    coeffs = (_DCT @ grey.astype(np.float64) @ _DCT.T)[:8, :8].reshape(-1)
    low = coeffs[1:]  # the DC term only says how bright the frame is
    bits = np.concatenate([[coeffs[0] > np.median(low)], low > np.median(low)])
    return int(_pack(bits[None])[0]), (low / (np.linalg.norm(low) + 1e-9)).astype(np.float32)


def _band_edges() -> np.ndarray:
    n_fft = 1024
    freqs = np.fft.rfftfreq(n_fft, 1 / AUDIO_RATE)
    edges_hz = np.geomspace(300, 3400, 34)
    return np.searchsorted(freqs, edges_hz)


_EDGES = _band_edges()


def _audio_hashes(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    win, hop, n_fft = AUDIO_RATE, int(HOP_S * AUDIO_RATE), 1024
    if x.size < win:
        return np.zeros(0, np.uint64), np.zeros(0, bool)
    # a power spectrogram of 128 ms frames every 64 ms, then 1 s windows of it every 0.25 s
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::n_fft // 2] * np.hanning(n_fft)
    spec = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    csum = np.concatenate([np.zeros((spec.shape[0], 1)), np.cumsum(spec, axis=1)], axis=1)
    bands = csum[:, _EDGES[1:]] - csum[:, _EDGES[:-1]]  # (frames, 33)
    n_win = 1 + (x.size - win) // hop
    fpw = win // (n_fft // 2)  # spectrogram frames per 1 s window
    starts = (np.arange(n_win) * hop) // (n_fft // 2)
    cb = np.concatenate([np.zeros((1, bands.shape[1])), np.cumsum(bands, axis=0)])
    ends = np.minimum(starts + fpw, bands.shape[0])
    energy = (cb[ends] - cb[starts]) / np.maximum(ends - starts, 1)[:, None]
    loud = energy.sum(axis=1)
    sounding = loud > max(1e-7 * fpw, 1e-4 * np.median(loud[loud > 0]) if (loud > 0).any() else 0)
    logE = np.log(energy + 1e-12)
    shape = logE[:, :-1] - logE[:, 1:]  # (W, 32)
    change = np.vstack([np.zeros((1, 32)), shape[1:] - shape[:-1]])
    return _pack(np.hstack([shape > 0, change > 0])), sounding


def fingerprint_file(path: str | os.PathLike) -> Fingerprint:
    """Fingerprint of a media file (raises ValueError when it has no decodable video)."""
    try:
        with av.open(os.fspath(path)) as c:
            if not c.streams.video:
                raise ValueError("no video stream")
            vs = c.streams.video[0]
            t0 = float(vs.start_time * vs.time_base) if vs.start_time is not None else 0.0
            vs.codec_context.skip_frame = "NONKEY"
            times, hashes, vectors = [], [], []
            for frame in c.decode(vs):
                if frame.time is None:
                    continue
                grey = frame.reformat(width=_M, height=_M, format="gray", interpolation="AREA").to_ndarray()
                h, vec = _picture_hash(grey)
                times.append(frame.time - t0)
                hashes.append(h)
                vectors.append(vec)
                if len(times) >= MAX_KEYFRAMES:
                    break
        audio = np.zeros(0, np.float32)
        with av.open(os.fspath(path)) as c:
            if c.streams.audio:
                aus = c.streams.audio[0]
                res = av.AudioResampler(format="flt", layout="mono", rate=AUDIO_RATE)
                chunks, first, got = [], None, 0
                for frame in c.decode(aus):
                    if frame.time is None:
                        continue
                    for r in res.resample(frame):
                        if first is None:
                            first = frame.time - t0
                        chunks.append(r.to_ndarray().reshape(-1))
                        got += chunks[-1].size
                    if got >= MAX_AUDIO_S * AUDIO_RATE:
                        break
                if chunks:
                    audio = np.concatenate(chunks)
                    lead = int(round(first * AUDIO_RATE))  # align the sound's clock with the picture's
                    audio = np.concatenate([np.zeros(lead, np.float32), audio]) if lead > 0 else audio[-lead:]
    except av.error.FFmpegError as exc:
        raise ValueError(f"{os.fspath(path)}: {exc}") from exc
    if not times:
        raise ValueError(f"{os.fspath(path)}: no decodable keyframe")
    ah, sounding = _audio_hashes(audio)
    order = np.argsort(times, kind="stable")
    return Fingerprint(np.asarray(times, np.float64)[order], np.asarray(hashes, np.uint64)[order],
                       np.asarray(vectors, np.float32)[order], ah, sounding)


def fingerprint_or_reason(path: str) -> Fingerprint | str:
    """:func:`fingerprint_file`, or why it failed (a worker's task)."""
    try:
        return fingerprint_file(path)
    except (ValueError, OSError) as exc:
        return str(exc)


def _audio_alignment(a: Fingerprint, b: Fingerprint, cfg: NearDuplicateConfig) -> tuple[float, int, int]:
    """Best share of agreeing sounding windows over shifts of b against a, the shift (in hops)
    and the overlap (windows)."""
    na, nb = a.audio_hashes.size, b.audio_hashes.size
    best = (0.0, 0, 0)
    min_overlap = int(cfg.min_overlap_s / HOP_S)
    for shift in range(-(nb - min_overlap), na - min_overlap + 1):  # b's window j sits at a's j + shift
        i0, i1 = max(0, shift), min(na, nb + shift)
        if i1 - i0 < min_overlap:
            continue
        ha, hb = a.audio_hashes[i0:i1], b.audio_hashes[i0 - shift:i1 - shift]
        both = a.audio_sounding[i0:i1] & b.audio_sounding[i0 - shift:i1 - shift]
        n = int(both.sum())
        if n < min_overlap // 2:
            continue
        agree = (popcount64(ha[both] ^ hb[both]) <= cfg.audio_bits).mean()
        if agree > best[0]:
            best = (float(agree), shift, n)
    return best


def _visual_agreement(a: Fingerprint, b: Fingerprint, shift_s: float, cfg: NearDuplicateConfig) -> float:
    """Share of the keyframes of the video with fewer of them (within the overlap) that find a
    keyframe of the other, ``shift_s`` later in a's clock, within ``visual_bits`` bits."""
    tb = b.key_times + shift_s  # b's keyframes on a's clock
    lo, hi = max(a.key_times[0], tb[0]) - VISUAL_WINDOW_S, min(a.key_times[-1], tb[-1]) + VISUAL_WINDOW_S
    ia = (a.key_times >= lo) & (a.key_times <= hi)
    ib = (tb >= lo) & (tb <= hi)
    if ia.sum() == 0 or ib.sum() == 0:
        return 0.0
    (qt, qv), (rt, rv) = sorted([(a.key_times[ia], a.key_vectors[ia]), (tb[ib], b.key_vectors[ib])],
                                key=lambda x: x[0].size)
    near = np.abs(qt[:, None] - rt[None, :]) <= VISUAL_WINDOW_S
    cos = qv @ rv.T
    return float((np.where(near, cos, -1.0).max(axis=1) >= cfg.visual_cos).mean())


def compare(a: Fingerprint, b: Fingerprint, cfg: NearDuplicateConfig = NearDuplicateConfig()) -> tuple[bool, dict]:
    """Whether ``a`` and ``b`` are near-duplicates, and the evidence."""
    if a.audio_sounding.sum() >= cfg.min_overlap_s / HOP_S and b.audio_sounding.sum() >= cfg.min_overlap_s / HOP_S:
        audio, shift, n = _audio_alignment(a, b, cfg)
        visual = _visual_agreement(a, b, shift * HOP_S, cfg) if audio >= cfg.audio_match else 0.0
        ok = audio >= cfg.audio_match and visual >= cfg.visual_match
        return ok, {"audio_agreement": round(audio, 3), "visual_agreement": round(visual, 3),
                    "shift_s": shift * HOP_S, "overlap_s": n * HOP_S}
    # no usable sound on one side: the keyframes alone, at their best shift (step 0.25 s)
    best, best_shift = 0.0, 0.0
    span = max(a.duration_s, b.duration_s)
    for shift in np.arange(-span, span + HOP_S, HOP_S):
        v = _visual_agreement(a, b, float(shift), cfg)
        if v > best:
            best, best_shift = v, float(shift)
    ok = best >= max(cfg.visual_match, 0.8)  # without sound, ask more of the picture
    return ok, {"audio_agreement": None, "visual_agreement": round(best, 3), "shift_s": best_shift, "overlap_s": None}
