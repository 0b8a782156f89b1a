"""Perceptual fingerprints of a video's picture and sound, and how two are compared.

Exact content hashing (``videos.video_id``) misses re-uploads: the same content re-encoded,
rescaled, rotated, trimmed, with another audio bitrate or container. These fingerprints survive
that, and their cost per video is bounded however long it is:

- **picture**: frames at fixed times, every ``FRAME_STEP_S`` (0.25 s) over the centre
  ``PICTURE_SPAN_S`` (2 s) of the video, whatever the keyframe placement (one seek to the
  keyframe before the span, then decoding forward to the first frame at or after each time;
  before the span, frames nothing refers to are skipped). Decoding is most of the cost: the
  span is kept short, and the sound is read in a pass of its own. Real uploads often have one keyframe
  in a short video (libx264's default keyint of 250): sampling keyframes would leave them
  without a picture. Each sample is the low 8x8 DCT frequencies of a 32x32 grey thumbnail, as
  displayed (a rotated phone video is turned upright), without the DC term (63 coefficients,
  stored as they are: their size says how much the frame shows; compared at unit length; and
  as a 64-bit hash, each bit "above the median", for lookups). Frames that show nothing (black,
  a fade, nearly flat) are left out of the vote. Coefficients, not hash bits, decide: a heavy
  re-encode of a small picture flips many bits of coefficients near the median (measured: 16-22
  of 64 bits at CRF 45 on 96x64 frames) while their cosine stays high.
- **sound**: over the centre ``WINDOW_S`` (6) seconds (the whole video when it is shorter; one
  seek, then only the sound's packets are decoded), a
  64-bit hash per 1 s window, every 0.25 s: the signs of the differences between neighbouring
  bands of a log-spaced 33-band spectrum (300-3400 Hz, from ~128 ms frames at the file's own
  sample rate, in single precision with scipy's FFT: resampling first costs as much as it
  saves; 32 bits) and of how those differences changed since the previous window (32 bits), in
  the spirit of Haitsma and Kalker's audio fingerprint. Silent windows get no hash.

A merge needs the sound to agree before the picture counts, so with ``pictures_on_demand`` (the
platform's default) a video with usable sound is
fingerprinted by its sound alone and its picture is sampled from its file only for the pairs
whose sound agrees (``stages/near_duplicates.py``): a quarter to a third of the cost.

Two videos are near-duplicates only on two kinds of evidence, never on one weak signal. With
sound on both sides: at the best alignment of their sound (any shift, in steps of 0.25 s:
trims), at least ``audio_match`` of the overlapping sounding windows agree to within
``audio_bits`` bits, **and** the picture agrees at that alignment: at least ``visual_match`` of
the informative samples (at least ``min_frames`` of them) find a sample of the other within
``VISUAL_WINDOW_S`` with cosine >= ``visual_cos``. A picture that cannot be compared (no
informative samples in the overlap) is unknown, not a vote: no merge (one music bed under
black pictures stays two videos). Without usable sound on one side: the picture alone, at its
best shift, and then it must be strong: ``silent_min_frames`` matching samples spanning at least
``silent_min_span_s``. The defaults come from ``benchmarks/near_duplicates.py``.
"""

from __future__ import annotations

import contextlib
import functools
import os
from dataclasses import dataclass

import av
import numpy as np
import scipy.fft

from acav_assets.core.bits import popcount64
from acav_assets.core.media.decode import display_turns
from acav_assets.core.settings import setting

__all__ = [
    "Fingerprint",
    "NearDuplicateConfig",
    "compare",
    "fingerprint_file",
    "fingerprint_or_reason",
    "picture_samples",
    "picture_span",
    "popcount64",
]

HOP_S = 0.25  # sound hashes every quarter second
VISUAL_WINDOW_S = 0.3  # a picture sample is compared with the other's samples this close in time (half a sound hop + a frame at 6 fps)
WINDOW_S = 6.0  # the centre span whose sound is fingerprinted (benchmarks/near_duplicates.py --window)
PICTURE_SPAN_S = 2.0  # the centre span whose picture is sampled (decoding it is most of the cost)
FRAME_STEP_S = 0.25  # one picture sample every quarter second of that span (9 samples)
# frames decoded before the first picture sample at most: x264's default keyint (250), and
# more than a 3 s GOP at 120 fps
MAX_LEAD_FRAMES = 400
MAX_AUDIO_S = 1800.0
# a new video's sound is hashed on OFFGRID grids about 32 ms apart (half a spectrum frame step),
# together spanning one hop: a copy cut at any point finds one within 16 ms of its original's
# grid. At the true shift, the share of agreeing windows of an excerpt swings from 0.11 to 0.95
# as its cut moves within one hop (8 excerpts, photos corpus, benchmarks/near_duplicates.py
# --parts f); only the first grid is stored and indexed
OFFGRID = 8
PICTURES = ("on_demand", "always")  # NearDuplicateConfig.pictures
MIN_STRUCTURE = 3.0  # grey levels of low-frequency structure below which a frame shows nothing (black, a fade)


@dataclass
class Fingerprint:
    # the picture samples (table columns key_times, key_hashes, key_vectors)
    frame_times: np.ndarray  # (K,) float64 seconds from the first video frame
    frame_hashes: np.ndarray  # (K,) uint64
    frame_vectors: np.ndarray  # (K, 63) float32: the low DCT coefficients (their size says how much is shown)
    audio_hashes: np.ndarray  # (W,) uint64, window i starts at i * HOP_S
    audio_sounding: np.ndarray  # (W,) bool: False for silent windows (their hash means nothing)
    audio_start_s: float = 0.0  # where window 0 starts, on the picture's clock
    # the sound hashed on the grids between (OFFGRID - 1, W), row k - 1 starting audio_offgrid_s[k - 1]
    # seconds later; taken when the video is fingerprinted, for its own lookups and comparisons,
    # not stored
    audio_offgrid: np.ndarray | None = None
    audio_offgrid_sounding: np.ndarray | None = None
    audio_offgrid_s: np.ndarray | None = None

    def sound_grids(self) -> list[tuple[float, np.ndarray, np.ndarray]]:
        """(offset in hops, hashes, sounding) of the stored grid, then of each grid between."""
        grids = [(0.0, self.audio_hashes, self.audio_sounding)]
        if self.audio_offgrid is not None:
            grids += [
                (float(t) / HOP_S, h, snd)
                for t, h, snd in zip(self.audio_offgrid_s, self.audio_offgrid, self.audio_offgrid_sounding)
            ]
        return grids

    @functools.cached_property
    def frame_units(self) -> np.ndarray:
        """The samples' coefficients at unit length (what is compared)."""
        v = self.frame_vectors.astype(np.float32)
        return v / (np.linalg.norm(v, axis=1, keepdims=True) + 1e-9)

    @functools.cached_property
    def frame_informative(self) -> np.ndarray:
        """(K,) bool: the samples that show something and so may vote. About the standard
        deviation, in grey levels, of the thumbnail's low frequencies (an unscaled 32-point DCT
        makes a coefficient 16x the orthonormal one; 1024 pixels)."""
        return np.linalg.norm(self.frame_vectors, axis=1) / 512.0 >= MIN_STRUCTURE

    @property
    def duration_s(self) -> float:
        return max(
            float(self.frame_times[-1]) if self.frame_times.size else 0.0,
            self.audio_start_s + self.audio_hashes.size * HOP_S,
        )


@dataclass(frozen=True)
class NearDuplicateConfig:
    audio_bits: int = setting(12, "sound windows agree when their 64-bit hashes differ in at most this many bits")
    audio_match: float = setting(0.5, "share of overlapping sounding windows that must agree")
    visual_cos: float = setting(0.8, "picture samples agree when their DCT coefficients have at least this cosine")
    lookup_bits: int = 12  # picture hash radius for finding candidates of videos without sound
    visual_match: float = setting(0.7, "share of the informative picture samples that must find a counterpart")
    min_frames: int = 3  # informative samples compared, at least (fewer: the picture is unknown)
    silent_match: float = 0.8  # without sound, the share asked of the picture
    silent_min_frames: int = 7  # without sound, matching samples needed ...
    silent_min_span_s: float = 1.5  # ... spanning at least this long
    min_overlap_s: float = 3.0  # the copies must overlap this long (at the best alignment)
    # an alignment on the grids between must agree this much more (benchmarks/near_duplicates.py:
    # two distinct generated videos of one sound class agree 0.55 there, excerpts 0.61-1.0 on
    # the photos corpus)
    offgrid_margin: float = 0.1
    window_s: float = setting(WINDOW_S, "centre span of each video whose sound is fingerprinted, in seconds (0 = all)")
    pictures: str = setting(
        "on_demand",
        "when a video's picture is sampled: on_demand (at ingest only without usable sound; else from "
        "the files of the pairs whose sound agrees) or always (at ingest)",
        choices=PICTURES,
    )

    def __post_init__(self):
        if self.pictures not in PICTURES:
            raise ValueError(f"pictures must be one of {', '.join(PICTURES)}, got {self.pictures!r}")
        if self.window_s < 0 or (0 < self.window_s < self.min_overlap_s):
            raise ValueError(
                f"window_s must be 0 (whole videos) or at least min_overlap_s ({self.min_overlap_s} s), "
                f"got {self.window_s}"
            )
        if not (0 <= self.audio_bits <= 15 and 0 <= self.lookup_bits <= 15):
            raise ValueError(
                "audio_bits and lookup_bits must be in [0, 15] (the lookup finds codes up to 15 bits away)"
            )
        if not -1 <= self.visual_cos <= 1:
            raise ValueError("visual_cos must be in [-1, 1]")
        if not (0 < self.audio_match <= 1 and 0 < self.visual_match <= 1):
            raise ValueError("audio_match and visual_match must be in (0, 1]")

    @property
    def pictures_on_demand(self) -> bool:
        """Whether pictures of videos with usable sound are left to the comparisons."""
        return self.pictures == "on_demand"

    def sound_usable(self, sounding: np.ndarray) -> bool:
        """Whether a video's sound can take part in a comparison (enough sounding windows)."""
        return int(np.sum(sounding)) >= self.min_overlap_s / HOP_S


_M = 32
_DCT = np.cos(np.pi * (2 * np.arange(_M)[None, :] + 1) * np.arange(_M)[:, None] / (2 * _M))  # rows: frequencies
_DCT8 = _DCT[:8]  # the 8 lowest frequencies are all that is kept
_BITS = (1 << np.arange(64, dtype=np.uint64)).astype(np.uint64)


def _pack(bits: np.ndarray) -> np.ndarray:
    """(N, 64) bool -> (N,) uint64."""
    return (bits.astype(np.uint64) * _BITS).sum(axis=1, dtype=np.uint64)


def _picture_hash(grey: np.ndarray) -> tuple[int, np.ndarray]:
    coeffs = (_DCT8 @ grey.astype(np.float64) @ _DCT8.T).reshape(-1)
    low = coeffs[1:]  # the DC term only says how bright the frame is
    median = np.sort(low)[low.size // 2]
    bits = np.concatenate([[coeffs[0] > median], low > median])
    return int(_pack(bits[None])[0]), low.astype(np.float32)


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


def _band_energies(x: np.ndarray, rate: int, first: int) -> np.ndarray:
    """(frames, 33) energies of the log-spaced bands, spectrum frames from sample ``first`` every
    half a frame (about 64 ms)."""
    n_fft, window, edges, filled = _spectrum_plan(rate)
    frames = np.lib.stride_tricks.sliding_window_view(x.astype(np.float32, copy=False), n_fft)[first :: n_fft // 2]
    spectrum = scipy.fft.rfft(frames * window, axis=1, workers=1)[:, : edges[-1]]  # the bins up to 3.4 kHz
    bands = np.zeros((spectrum.shape[0], filled.size))  # bands without bins stay 0
    bands[:, filled] = np.add.reduceat(spectrum.real**2 + spectrum.imag**2, edges[:-1][filled], axis=1)
    return bands


def _hashes_of_bands(bands: np.ndarray, n: int, rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Sound hashes of ``n`` samples whose band energies are ``bands`` (from their first sample)."""
    win, hop_w = int(rate), int(round(HOP_S * rate))
    n_fft = _spectrum_plan(rate)[0]
    step = n_fft // 2
    if n < max(win, n_fft) or not len(bands):
        return np.zeros(0, np.uint64), np.zeros(0, bool)
    n_win = 1 + (n - win) // hop_w
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


def _audio_hashes(x: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Sound hashes of mono samples ``x`` at ``rate`` Hz: one per 1 s window, every ``HOP_S``."""
    if x.size < max(int(rate), _spectrum_plan(rate)[0]):
        return np.zeros(0, np.uint64), np.zeros(0, bool)
    return _hashes_of_bands(_band_energies(x, rate, 0), x.size, rate)


def _offgrid_hashes(x: np.ndarray, rate: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The sound hashed on the ``OFFGRID - 1`` grids between: grid k starts ``k`` half spectrum
    steps after the first, so its frames are the first grid's, or those of one more pass from
    half a step, a whole number of steps later (two passes of the spectrum for all grids; each
    grid's hashes equal ``_audio_hashes(x[offset:])``). Rows cut or padded (silent) to ``width``;
    returns hashes, sounding flags and each grid's offset in seconds."""
    step = _spectrum_plan(rate)[0] // 2
    half = step // 2
    out_h = np.zeros((OFFGRID - 1, width), np.uint64)
    out_s = np.zeros((OFFGRID - 1, width), bool)
    offsets = np.array([(k // 2) * step + (k % 2) * half for k in range(1, OFFGRID)])
    if x.size >= max(int(rate), 2 * step):
        passes = (_band_energies(x, rate, 0), _band_energies(x, rate, half))
        for row, k in enumerate(range(1, OFFGRID)):
            h, snd = _hashes_of_bands(passes[k % 2][k // 2 :], x.size - int(offsets[row]), rate)
            out_h[row, : min(width, h.size)], out_s[row, : min(width, snd.size)] = h[:width], snd[:width]
    return out_h, out_s, offsets / rate


def picture_span(centre: float) -> np.ndarray:
    """The picture's sample times around ``centre``: every ``FRAME_STEP_S`` over
    ``PICTURE_SPAN_S`` (at ingest, and when a comparison reads a picture on demand)."""
    return centre + np.arange(-PICTURE_SPAN_S / 2, PICTURE_SPAN_S / 2 + 1e-9, FRAME_STEP_S)


def _picture_targets(duration_s: float | None, lo: float, hi: float) -> np.ndarray:
    """The fixed times (seconds from the first frame) at which the picture is sampled: every
    ``FRAME_STEP_S`` over the centre ``PICTURE_SPAN_S`` of the video, on the sound's grid."""
    if duration_s and duration_s > 0:
        centre = np.floor(duration_s / 2 / HOP_S) * HOP_S
        end = duration_s
    else:
        centre, end = (lo + hi) / 2 if np.isfinite(hi) else 0.0, np.inf
    t = picture_span(centre)
    return t[(t >= 0) & (t < end)] if (t >= 0).any() else np.zeros(1)


def _picture_decoder(vs) -> None:
    """Set up ``vs``'s decoder for picture samples, before its first frame: one thread (videos are
    fingerprinted side by side), no deblocking at all (only 32x32 thumbnails are kept), frames
    nothing refers to skipped (until the span: see :func:`_sample_picture`)."""
    cc = vs.codec_context
    cc.thread_type, cc.thread_count = "SLICE", 1
    cc.skip_frame = "NONREF"
    cc.options = {"skip_loop_filter": "all"}


def _decodes_a_frame(c, vs) -> bool:
    """Whether the video stream yields a frame (read from where ``c`` stands; at most
    ``MAX_LEAD_FRAMES`` packets)."""
    for n, packet in enumerate(c.demux(vs)):
        try:
            if packet.size and packet.decode():
                return True
        except av.error.InvalidDataError:
            pass  # a broken packet at the start (a capture cut mid-GOP): the next may decode
        if n > MAX_LEAD_FRAMES:
            return False
    return bool(vs.codec_context.decode(None))


def _sample_picture(c, vs, t0: float, targets: np.ndarray, rewind: bool = False) -> tuple[list, list, list, int]:
    """The picture at ``targets`` (seconds from the first frame): one seek to the keyframe before
    the first (also to the start when ``rewind``: ``c`` was read further), then decoding forward;
    the first frame at or after each target stands for it. Returns times, hashes, coefficient
    vectors and how many frames were decoded. The decoder is set up by :func:`_picture_decoder`
    first."""
    cc = vs.codec_context
    cc.skip_frame = "NONREF"  # until the span
    if targets[0] > 0 or rewind:
        c.seek(int((t0 + max(0.0, float(targets[0]))) * av.time_base), backward=True, any_frame=False)
    vtb = float(vs.time_base)
    thumb = av.video.reformatter.VideoReformatter()  # one scaler for every sample of the file
    times, hashes, vectors = [], [], []
    ti = decoded = 0  # next target; frames decoded

    def keep(frames) -> None:
        nonlocal ti, decoded
        for frame in frames:
            decoded += 1
            if frame.pts is None or ti >= targets.size:
                continue
            t = frame.pts * vtb - t0
            if t < targets[ti]:
                if cc.skip_frame != "DEFAULT" and t >= targets[0] - 2 * FRAME_STEP_S:
                    cc.skip_frame = "DEFAULT"  # within the span every frame counts: exact times
                continue
            while ti < targets.size and targets[ti] <= t:
                ti += 1  # the first frame at or after each target stands for it
            if t - targets[ti - 1] > FRAME_STEP_S:
                continue  # a gap in the stream: no frame near that time
            grey = thumb.reformat(frame, _M, _M, "gray", interpolation="AREA").to_ndarray()
            turn = display_turns(frame)
            if turn:
                grey = np.ascontiguousarray(np.rot90(grey, k=turn))  # as displayed: upright
            h, vec = _picture_hash(grey)
            times.append(t), hashes.append(h), vectors.append(vec)

    def done() -> bool:
        # all samples taken, or the keyframe is too far before them (an hour with one keyframe):
        # the picture is left unsampled rather than decoding all of it
        return ti >= targets.size or (ti == 0 and decoded > MAX_LEAD_FRAMES)

    for packet in c.demux(vs):
        if done():
            break
        if packet.size:  # the demuxer's empty end packet would flush the decoder: done below
            keep(packet.decode())
    if not done():
        keep(cc.decode(None))  # frames the decoder still holds
    return times, hashes, vectors, decoded


def _sample_sound(c, aus, t0: float, lo: float, hi: float) -> tuple[np.ndarray, ...]:
    """Sound hashes of ``[lo, hi)`` (seconds from the first video frame; ``hi`` infinite: to the
    end, at most ``MAX_AUDIO_S``), window 0 starting at ``lo``, from where ``c`` stands (at or
    before ``lo``); only the sound's packets are decoded. Returns the hashes and sounding flags of
    the grid, and of the ``OFFGRID - 1`` grids between (see :attr:`Fingerprint.audio_offgrid`)."""
    atb = float(aus.time_base)
    chunks, first, rate, got, need = [], None, None, 0, float("inf")
    for packet in c.demux(aus):
        for frame in packet.decode():
            if frame.pts is None:
                continue
            t = frame.pts * atb - t0
            if t + frame.samples / frame.sample_rate <= lo:
                continue
            if first is None:
                first, rate = t, frame.sample_rate
                need = (min(hi, lo + MAX_AUDIO_S) - t + 0.05) * rate  # samples up to the end
            elif frame.sample_rate != rate:
                continue  # a mid-stream rate change: the rest of the sound is left out
            chunks.append(_mono(frame))
            got += chunks[-1].size
        if got >= need:
            break
    if not chunks:
        return _no_sound()
    audio = np.concatenate(chunks)
    lead = int(round((first - lo) * rate))  # align the sound with the window's start
    audio = np.concatenate([np.zeros(lead, np.float32), audio]) if lead > 0 else audio[-lead:]
    if np.isfinite(hi):
        audio = audio[: int(round((hi - lo) * rate))]
    audio = audio[: int(MAX_AUDIO_S * rate)]
    hashes, sounding = _audio_hashes(audio, rate)
    return (hashes, sounding, *_offgrid_hashes(audio, rate, hashes.size))


def _no_sound() -> tuple[np.ndarray, ...]:
    return (
        np.zeros(0, np.uint64),
        np.zeros(0, bool),
        np.zeros((OFFGRID - 1, 0), np.uint64),
        np.zeros((OFFGRID - 1, 0), bool),
        np.zeros(OFFGRID - 1),
    )


def fingerprint_file(
    path: str | os.PathLike,
    window_s: float = WINDOW_S,
    duration_s: float | None = None,
    pictures_on_demand: bool = False,
) -> Fingerprint:
    """Fingerprint of a media file: its picture at fixed times of the centre ``PICTURE_SPAN_S``
    (whatever the keyframe placement: one seek, then decoding forward) and its sound within the
    centre ``window_s`` seconds (the whole file when it is shorter, or ``window_s`` is 0; one
    more seek, then only sound packets are decoded). The picture's cost per video is bounded
    however long it is (at most ``MAX_LEAD_FRAMES`` frames decoded before the first sample: a
    file with one keyframe in an hour gets no picture samples). With ``pictures_on_demand`` a
    video whose sound is usable gets no picture samples (only its first frame is decoded): its
    picture is sampled from its file when a comparison needs it. ``duration_s``: the probed
    duration (else the container's). Raises ValueError when the file has no decodable video
    frame; a video whose frames are all uninformative (black, flat) gets a fingerprint without
    picture samples."""
    p = os.fspath(path)
    times, hashes, vectors = [], [], []
    try:
        with contextlib.ExitStack() as files:
            c = files.enter_context(av.open(p))
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
            targets = _picture_targets(duration_s, lo, hi)
            _picture_decoder(vs)
            first = pictures_on_demand and aus is not None  # the sound first: when it is usable, the picture waits
            if first and _decodes_a_frame(c, vs):
                read, aus, sound = _sound_pass(c, aus, files, p, t0, lo, hi)
                if not NearDuplicateConfig().sound_usable(sound[1]):
                    if read is not c:  # reopened
                        c, vs = read, read.streams.video[0]
                        _picture_decoder(vs)
                    times, hashes, vectors, _ = _sample_picture(c, vs, t0, targets, rewind=True)
            else:  # every picture now (or no frame from the start: the span decides whether the video decodes)
                times, hashes, vectors, decoded = _sample_picture(c, vs, t0, targets, rewind=first)
                if not decoded:
                    raise ValueError("no decodable video frame")
                sound = _sound_pass(c, aus, files, p, t0, lo, hi)[2] if aus is not None else _no_sound()
    except (av.error.FFmpegError, ValueError) as exc:
        raise ValueError(f"{p}: {exc}") from exc
    ah, sounding, off_h, off_s, off_t = sound
    return Fingerprint(
        np.asarray(times, np.float64),
        np.asarray(hashes, np.uint64),
        np.asarray(vectors, np.float32).reshape(-1, 63),
        ah,
        sounding,
        float(lo if np.isfinite(hi) else 0.0),
        off_h,
        off_s,
        off_t,
    )


def _sound_pass(c, aus, files: contextlib.ExitStack, path: str, t0: float, lo: float, hi: float):
    """One seek to the sound's window (reopening a file that cannot seek: its sound from the
    start), then :func:`_sample_sound`. Returns the container and stream read, and the sound."""
    try:
        c.seek(int((t0 + lo) * av.time_base), backward=True, any_frame=False)
    except av.error.FFmpegError:
        c = files.enter_context(av.open(path))
        aus = c.streams.audio[0]
    return c, aus, _sample_sound(c, aus, t0, lo, hi)


def picture_samples(path: str | os.PathLike, times: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The picture of ``path`` at ``times`` (sorted seconds from its first frame), sampled as
    :func:`fingerprint_file` samples its span: times, hashes and coefficient vectors. For a pair
    whose sound agrees where no stored samples overlap (an excerpt of a long video). Raises
    ValueError when the file cannot be read."""
    p = os.fspath(path)
    try:
        with av.open(p) as c:
            if not c.streams.video:
                raise ValueError("no video stream")
            vs = c.streams.video[0]
            t0 = float(vs.start_time * vs.time_base) if vs.start_time is not None else 0.0
            _picture_decoder(vs)
            t, h, v, _ = _sample_picture(c, vs, t0, np.asarray(times, np.float64))
    except av.error.FFmpegError as exc:
        raise ValueError(f"{p}: {exc}") from exc
    return np.asarray(t, np.float64), np.asarray(h, np.uint64), np.asarray(v, np.float32).reshape(-1, 63)


def fingerprint_or_reason(
    path: str, duration_s: float | None = None, window_s: float = WINDOW_S, pictures_on_demand: bool = False
) -> Fingerprint | str:
    """:func:`fingerprint_file`, or why it failed (a worker's task)."""
    try:
        return fingerprint_file(path, window_s, duration_s, pictures_on_demand)
    except (ValueError, OSError) as exc:
        return str(exc)


def _audio_alignment(a: Fingerprint, b: Fingerprint, cfg: NearDuplicateConfig) -> tuple[float, float, int]:
    """The best alignment of b's sound against a's: the share of agreeing sounding windows, the
    shift (in hops, with the fraction of the grids between when one side has them: b's window
    j sits at a's j + shift) and the overlap (windows). An alignment on the grids between is
    one of ``OFFGRID`` times more tried, so it must beat chance by more: its share counts
    ``cfg.offgrid_margin`` less."""
    if b.audio_offgrid is not None:  # b's grids between cover every fraction of a hop
        pairs = [(a.audio_hashes, a.audio_sounding, -f, hb, sb) for f, hb, sb in b.sound_grids()]
    else:
        pairs = [(ha, sa, f, b.audio_hashes, b.audio_sounding) for f, ha, sa in a.sound_grids()]
    best = (0.0, 0.0, 0)
    min_overlap = int(cfg.min_overlap_s / HOP_S)
    for ha_all, sa_all, frac, hb_all, sb_all in pairs:
        na, nb = ha_all.size, hb_all.size
        for shift in range(-(nb - min_overlap), na - min_overlap + 1):  # b's window j sits at a's j + shift
            i0, i1 = max(0, shift), min(na, nb + shift)
            if i1 - i0 < min_overlap:
                continue
            both = sa_all[i0:i1] & sb_all[i0 - shift : i1 - shift]
            n = int(both.sum())
            if n < min_overlap // 2:
                continue
            agree = (popcount64(ha_all[i0:i1][both] ^ hb_all[i0 - shift : i1 - shift][both]) <= cfg.audio_bits).mean()
            agree -= cfg.offgrid_margin if frac else 0.0
            if agree > best[0]:
                best = (float(agree), shift + frac, n)
    return best


def _visual_agreement(
    a: Fingerprint, b: Fingerprint, shift_s: float, cfg: NearDuplicateConfig
) -> tuple[float, int, float]:
    """At ``shift_s`` (b's clock -> a's), over the informative samples in the overlap of the
    video with fewer of them: the share that find a sample of the other (informative or not: a
    borderline frame may fall either side in two encodes) within ``VISUAL_WINDOW_S`` with
    cosine >= ``visual_cos``; how many were compared; and the time the matching ones span."""
    if not a.frame_times.size or not b.frame_times.size:
        return 0.0, 0, 0.0
    tb = b.frame_times + shift_s  # b's samples on a's clock
    lo = max(a.frame_times[0], tb[0]) - VISUAL_WINDOW_S
    hi = min(a.frame_times[-1], tb[-1]) + VISUAL_WINDOW_S
    ia = (a.frame_times >= lo) & (a.frame_times <= hi)
    ib = (tb >= lo) & (tb <= hi)
    sides = [
        (a.frame_times, a.frame_units, ia, ia & a.frame_informative),
        (tb, b.frame_units, ib, ib & b.frame_informative),
    ]
    (qt, qv, _, qi), (rt, rv, ri, _) = sorted(sides, key=lambda s: int(s[3].sum()))
    if not qi.any() or not ri.any():
        return 0.0, 0, 0.0
    qt, qv, rt, rv = qt[qi], qv[qi], rt[ri], rv[ri]
    near = np.abs(qt[:, None] - rt[None, :]) <= VISUAL_WINDOW_S
    hit = np.where(near, qv @ rv.T, -1.0).max(axis=1) >= cfg.visual_cos
    span = float(qt[hit].max() - qt[hit].min()) if hit.any() else 0.0
    return float(hit.mean()), int(qt.size), span


def compare(a: Fingerprint, b: Fingerprint, cfg: NearDuplicateConfig = NearDuplicateConfig()) -> tuple[bool, dict]:
    """Whether ``a`` and ``b`` are near-duplicates, and the evidence (``visual_agreement`` None:
    the picture could not be compared; ``offgrid``: the sound aligned on the grids between, and
    ``audio_agreement`` is its share less ``offgrid_margin``)."""
    if cfg.sound_usable(a.audio_sounding) and cfg.sound_usable(b.audio_sounding):
        audio, shift, n = _audio_alignment(a, b, cfg)
        shift_s = shift * HOP_S + a.audio_start_s - b.audio_start_s  # b's clock -> a's clock
        visual, frames, _ = _visual_agreement(a, b, shift_s, cfg) if audio >= cfg.audio_match else (0.0, 0, 0.0)
        known = frames >= cfg.min_frames
        ok = audio >= cfg.audio_match and known and visual >= cfg.visual_match
        return ok, {
            "audio_agreement": round(audio, 3),
            "visual_agreement": round(visual, 3) if known or audio < cfg.audio_match else None,
            "shift_s": shift_s,
            "overlap_s": n * HOP_S,
            "frames_compared": frames,
            "offgrid": bool(shift % 1),  # aligned on the grids between: its agreement counted offgrid_margin less
        }
    # no usable sound on one side: the picture alone, at its best shift (step 0.25 s), and strong
    best, best_shift, best_frames, best_span = 0.0, 0.0, 0, 0.0
    span = max(a.duration_s, b.duration_s)
    for shift in np.arange(-span, span + HOP_S, HOP_S):
        v, frames, matched_span = _visual_agreement(a, b, float(shift), cfg)
        if frames >= cfg.silent_min_frames and (v, matched_span) > (best, best_span):
            best, best_shift, best_frames, best_span = v, float(shift), frames, matched_span
    ok = (
        best >= max(cfg.visual_match, cfg.silent_match)
        and best * best_frames >= cfg.silent_min_frames
        and best_span >= cfg.silent_min_span_s
    )
    return ok, {
        "audio_agreement": None,
        "visual_agreement": round(best, 3) if best_frames else None,
        "shift_s": best_shift,
        "overlap_s": None,
        "frames_compared": best_frames,
    }
