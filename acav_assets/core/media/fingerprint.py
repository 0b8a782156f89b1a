"""Perceptual fingerprints of a video's picture and sound, and how two are compared.

Exact content hashing (``videos.video_id``) misses re-uploads: the same content re-encoded,
rescaled, trimmed, with another audio bitrate. These fingerprints survive that:

Both cover the centre ``WINDOW_S`` (6) seconds of a video (the whole video when it is shorter):
the middle of the span the default clip is cut from, which copies trimmed at both ends still
share, and a cost per video that does not grow with its length. 6 s rather than 10 s: 40% less
decoding, with every copy still found and no distinct pair merged on both evaluation corpora
(``benchmarks/near_duplicates.py --window``; in CPU time 13-16% of probe + clip decode, against
19-26% for 10 s, 48 kHz sound included).

- **picture**: the low 8×8 DCT frequencies of a 32×32 grey thumbnail of every *keyframe*
  (63 coefficients without the DC term, unit length; and as a 64-bit hash, each bit "above the
  median", for lookups), with its time. Only keyframe packets are decoded, which keeps the cost a
  fraction of a full decode; keyframe times differ between encodes, so a
  keyframe is compared (cosine) with the other copy's keyframes within ``VISUAL_WINDOW_S`` of
  the same moment. Coefficients, not hash bits, decide: a heavy re-encode of a small picture
  flips many bits of coefficients near the median (measured: 16-22 of 64 bits at CRF 45 on
  96×64 frames) while their cosine stays above 0.94.
- **sound**: a 64-bit hash per 1 s window, every 0.25 s: the signs of the differences between
  neighbouring bands of a log-spaced 33-band spectrum (300-3400 Hz, from ~128 ms frames at the
  file's own sample rate, in single precision with scipy's FFT: resampling first costs as much as
  it saves; 32 bits) and of how those differences changed since the
  previous window (32 bits), in the spirit of Haitsma and Kalker's audio fingerprint. Silent
  windows get no hash.

Two videos are near-duplicates when, at the best alignment of their sound (any shift, in steps
of 0.25 s: trims), at least ``audio_match`` of the overlapping sounding windows agree to within
``audio_bits`` bits and at least ``visual_match`` of the shorter one's keyframes have a
counterpart with cosine >= ``visual_cos`` (videos without sound: the keyframes alone, at their
best shift). The defaults (thresholds and window) come from ``benchmarks/near_duplicates.py``.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import av
import numpy as np
import scipy.fft

__all__ = ["Fingerprint", "NearDuplicateConfig", "compare", "fingerprint_file", "fingerprint_or_reason", "popcount64"]

HOP_S = 0.25  # sound hashes every quarter second
VISUAL_WINDOW_S = 1.0
WINDOW_S = 6.0  # the centre span fingerprinted (benchmarks/near_duplicates.py --window: cost and recall)
MAX_KEYFRAMES = 600
MAX_AUDIO_S = 1800.0


@dataclass
class Fingerprint:
    key_times: np.ndarray  # (K,) float64 seconds from the first video frame
    key_hashes: np.ndarray  # (K,) uint64
    key_vectors: np.ndarray  # (K, 63) float32, unit length
    audio_hashes: np.ndarray  # (W,) uint64, window i starts at i * HOP_S
    audio_sounding: np.ndarray  # (W,) bool: False for silent windows (their hash means nothing)
    audio_start_s: float = 0.0  # where window 0 starts, on the picture's clock

    @property
    def duration_s(self) -> float:
        return max(float(self.key_times[-1]) if self.key_times.size else 0.0,
                   self.audio_start_s + self.audio_hashes.size * HOP_S)


@dataclass(frozen=True)
class NearDuplicateConfig:
    audio_bits: int = 12  # sound windows agree when their hashes differ in at most this many bits
    audio_match: float = 0.4  # share of overlapping sounding windows that must agree
    visual_cos: float = 0.9  # keyframes agree when their DCT coefficients have at least this cosine
    lookup_bits: int = 12  # keyframe hash radius for finding candidates of videos without sound
    visual_match: float = 0.75  # share of the shorter video's keyframes that must find a counterpart
    min_overlap_s: float = 3.0  # the copies must overlap this long (at the best alignment)
    window_s: float = WINDOW_S  # the centre span of each video that is fingerprinted (0: all of it)

    def __post_init__(self):
        if self.window_s < 0 or (0 < self.window_s < self.min_overlap_s):
            raise ValueError(f"window_s must be 0 (whole videos) or at least min_overlap_s ({self.min_overlap_s} s), "
                             f"got {self.window_s}")
        if not (0 <= self.audio_bits <= 15 and 0 <= self.lookup_bits <= 15):
            raise ValueError("audio_bits and lookup_bits must be in [0, 15] (the lookup finds codes up to 15 bits away)")
        if not -1 <= self.visual_cos <= 1:
            raise ValueError("visual_cos must be in [-1, 1]")
        if not (0 < self.audio_match <= 1 and 0 < self.visual_match <= 1):
            raise ValueError("audio_match and visual_match must be in (0, 1]")


_M = 32
_DCT = np.cos(np.pi * (2 * np.arange(_M)[None, :] + 1) * np.arange(_M)[:, None] / (2 * _M))  # rows: frequencies
_DCT8 = _DCT[:8]  # the 8 lowest frequencies are all that is kept
_BITS = (1 << np.arange(64, dtype=np.uint64)).astype(np.uint64)


def _pack(bits: np.ndarray) -> np.ndarray:
    """(N, 64) bool -> (N,) uint64."""
    return (bits.astype(np.uint64) * _BITS).sum(axis=1, dtype=np.uint64)


def popcount64(x: np.ndarray) -> np.ndarray:
    """Number of set bits of each uint64."""
    x = np.ascontiguousarray(x, dtype=np.uint64)
    return np.unpackbits(x.view(np.uint8).reshape(*x.shape, 8), axis=-1).sum(axis=-1)


def _picture_hash(grey: np.ndarray) -> tuple[int, np.ndarray]:
    coeffs = (_DCT8 @ grey.astype(np.float64) @ _DCT8.T).reshape(-1)
    low = coeffs[1:]  # the DC term only says how bright the frame is
    median = np.sort(low)[low.size // 2]
    bits = np.concatenate([[coeffs[0] > median], low > median])
    return int(_pack(bits[None])[0]), (low / (np.linalg.norm(low) + 1e-9)).astype(np.float32)


def _mono(frame) -> np.ndarray:
    """A decoded audio frame as mono float32 in [-1, 1], at its own rate."""
    fmt = frame.format
    if fmt.name == "fltp":  # what AAC decodes to: read the planes in place
        n, planes = frame.samples, frame.planes
        if len(planes) == 1:
            return np.frombuffer(planes[0], np.float32, n)
        return np.mean([np.frombuffer(p, np.float32, n) for p in planes], axis=0, dtype=np.float32)
    x = frame.to_ndarray()
    x = x.mean(axis=0) if fmt.is_planar else x.reshape(-1, len(frame.layout.channels)).mean(axis=1)
    if np.issubdtype(x.dtype, np.integer) or fmt.name.startswith(("s", "u")):
        bits = 8 * fmt.bytes
        x = (x - (128 if fmt.name.startswith("u8") else 0)) / float(1 << (bits - 1))
    return x.astype(np.float32)


def _fast_size(n: float) -> int:
    """The smallest length >= n whose only prime factors are 2, 3 and 5 (a fast FFT size)."""
    best = 1 << int(np.ceil(np.log2(n)))
    for p3 in (1, 3, 9, 27):
        for p5 in (1, 5, 25):
            k = p3 * p5
            m = k << max(0, int(np.ceil(np.log2(n / k))))
            if n <= m < best:
                best = m
    return best


@functools.lru_cache(maxsize=16)
def _spectrum_plan(rate: int) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """For a sample rate: the FFT size, its window, the 34 edges (FFT bins) of the 33 log-spaced
    bands from 300 to 3400 Hz, and which bands hold any bin (none above a low rate's Nyquist
    frequency)."""
    n_fft = _fast_size(0.128 * rate)  # about 128 ms frames every 64 ms, whatever the sample rate
    edges = np.searchsorted(np.fft.rfftfreq(n_fft, 1 / rate), np.geomspace(300, 3400, 34))
    filled = edges[1:] > edges[:-1]
    return n_fft, np.hanning(n_fft).astype(np.float32), edges, filled


def _audio_hashes(x: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Sound hashes of mono samples ``x`` at ``rate`` Hz: one per 1 s window, every ``HOP_S``."""
    win, hop_w = int(rate), int(round(HOP_S * rate))
    n_fft, window, edges, filled = _spectrum_plan(rate)
    step = n_fft // 2
    if x.size < max(win, n_fft):
        return np.zeros(0, np.uint64), np.zeros(0, bool)
    frames = np.lib.stride_tricks.sliding_window_view(x.astype(np.float32, copy=False), n_fft)[::step] * window
    spectrum = scipy.fft.rfft(frames, axis=1, workers=1)[:, :edges[-1]]  # the bins up to 3.4 kHz
    bands = np.zeros((spectrum.shape[0], filled.size))  # (frames, 33) energies; bands without bins stay 0
    bands[:, filled] = np.add.reduceat(spectrum.real ** 2 + spectrum.imag ** 2, edges[:-1][filled], axis=1)
    n_win = 1 + (x.size - win) // hop_w
    fpw = win // step  # spectrogram frames per 1 s window
    starts = (np.arange(n_win) * hop_w) // step
    cb = np.concatenate([np.zeros((1, bands.shape[1])), np.cumsum(bands, axis=0)])
    ends = np.minimum(starts + fpw, bands.shape[0])
    energy = (cb[ends] - cb[starts]) / np.maximum(ends - starts, 1)[:, None] / (n_fft / 1024) ** 2
    loud = energy.sum(axis=1)
    sounding = loud > max(1e-7 * fpw, 1e-4 * np.median(loud[loud > 0]) if (loud > 0).any() else 0)
    logE = np.log(energy + 1e-12)
    shape = logE[:, :-1] - logE[:, 1:]  # (W, 32)
    change = np.vstack([np.zeros((1, 32)), shape[1:] - shape[:-1]])
    return _pack(np.hstack([shape > 0, change > 0])), sounding


def fingerprint_file(path: str | os.PathLike, window_s: float = WINDOW_S,
                     duration_s: float | None = None) -> Fingerprint:
    """Fingerprint of a media file: its keyframes and sound within the centre ``window_s``
    seconds (the whole file when it is shorter, or ``window_s`` is 0), so the cost per video is
    bounded however long it is. ``duration_s``: the probed duration (else the container's).
    Raises ValueError when the file has no decodable video."""
    p = os.fspath(path)
    try:
        with av.open(p) as c:
            if not c.streams.video:
                raise ValueError("no video stream")
            vs = c.streams.video[0]
            aus = c.streams.audio[0] if c.streams.audio else None
            t0 = float(vs.start_time * vs.time_base) if vs.start_time is not None else 0.0
            if duration_s is None and c.duration:
                duration_s = c.duration / av.time_base
            lo, hi = 0.0, float("inf")
            if window_s and duration_s and duration_s > window_s + 2 * HOP_S:
                lo = np.floor((duration_s - window_s) / 2 / HOP_S) * HOP_S  # on the sound's 0.25 s grid
                hi = lo + window_s
                c.seek(int((t0 + lo) * av.time_base), backward=True, any_frame=False)
            times, hashes, vectors, chunks = [], [], [], []
            audio_first, rate, got, need = None, None, 0, float("inf")
            vtb = float(vs.time_base)
            atb = float(aus.time_base) if aus is not None else 0.0
            thumb = av.video.reformatter.VideoReformatter()  # one scaler for every keyframe of the file
            # video packets past the window (with room for frames stored ahead of their display time)
            stop_pts = (t0 + hi + 0.5) / vtb if np.isfinite(hi) else float("inf")
            lo_pts, hi_pts = (t0 + lo - VISUAL_WINDOW_S) / vtb, (t0 + hi) / vtb  # keyframes worth decoding
            streams = (vs, aus) if aus is not None else (vs,)

            def keep(frames):
                for frame in frames:
                    t = None if frame.pts is None else frame.pts * vtb - t0
                    if t is not None and lo - VISUAL_WINDOW_S <= t <= hi:
                        h, vec = _picture_hash(thumb.reformat(frame, _M, _M, "gray", interpolation="AREA").to_ndarray())
                        times.append(t), hashes.append(h), vectors.append(vec)

            for packet in c.demux(*streams):
                if packet.stream is vs:
                    if packet.pts is not None and packet.pts > stop_pts and (aus is None or got >= need):
                        break
                    # only keyframes are decoded: a fraction of the cost of decoding every frame
                    if packet.is_keyframe and packet.size and len(times) < MAX_KEYFRAMES and (
                            packet.pts is None or lo_pts <= packet.pts <= hi_pts):
                        keep(packet.decode())
                elif got < need:
                    for frame in packet.decode():
                        if frame.pts is None:
                            continue
                        t = frame.pts * atb - t0
                        if t + frame.samples / frame.sample_rate <= lo:
                            continue
                        if audio_first is None:
                            audio_first, rate = t, frame.sample_rate
                            need = (min(hi, lo + MAX_AUDIO_S) - t + 0.05) * rate  # samples up to the end
                        elif frame.sample_rate != rate:
                            continue  # a mid-stream rate change: the rest of the sound is left out
                        chunks.append(_mono(frame))
                        got += chunks[-1].size
            keep(vs.codec_context.decode(None))  # keyframes the decoder still holds (frame threads delay them)
    except av.error.FFmpegError as exc:
        raise ValueError(f"{p}: {exc}") from exc
    if not times:
        raise ValueError(f"{p}: no decodable keyframe")
    audio_start = lo if np.isfinite(hi) else 0.0
    ah, sounding = np.zeros(0, np.uint64), np.zeros(0, bool)
    if chunks:
        audio = np.concatenate(chunks)
        # align the sound with the window's start on the picture's clock
        lead = int(round((audio_first - audio_start) * rate))
        audio = np.concatenate([np.zeros(lead, np.float32), audio]) if lead > 0 else audio[-lead:]
        if np.isfinite(hi):
            audio = audio[:int(round((hi - lo) * rate))]
        ah, sounding = _audio_hashes(audio[:int(MAX_AUDIO_S * rate)], rate)
    order = np.argsort(times, kind="stable")
    return Fingerprint(np.asarray(times, np.float64)[order], np.asarray(hashes, np.uint64)[order],
                       np.asarray(vectors, np.float32)[order], ah, sounding, float(audio_start))


def fingerprint_or_reason(path: str, duration_s: float | None = None,
                          window_s: float = WINDOW_S) -> Fingerprint | str:
    """:func:`fingerprint_file`, or why it failed (a worker's task)."""
    try:
        return fingerprint_file(path, window_s, duration_s)
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
        shift_s = shift * HOP_S + a.audio_start_s - b.audio_start_s  # b's clock -> a's clock
        visual = _visual_agreement(a, b, shift_s, cfg) if audio >= cfg.audio_match else 0.0
        ok = audio >= cfg.audio_match and visual >= cfg.visual_match
        return ok, {"audio_agreement": round(audio, 3), "visual_agreement": round(visual, 3),
                    "shift_s": shift_s, "overlap_s": n * HOP_S}
    # no usable sound on one side: the keyframes alone, at their best shift (step 0.25 s)
    best, best_shift = 0.0, 0.0
    span = max(a.duration_s, b.duration_s)
    for shift in np.arange(-span, span + HOP_S, HOP_S):
        v = _visual_agreement(a, b, float(shift), cfg)
        if v > best:
            best, best_shift = v, float(shift)
    ok = best >= max(cfg.visual_match, 0.8)  # without sound, ask more of the picture
    return ok, {"audio_agreement": None, "visual_agreement": round(best, 3), "shift_s": best_shift, "overlap_s": None}
