"""What each real-world encoding gives at every media stage: probe, clip windows, clip decoding,
embedding, fingerprint and export.

A source video is written again in each :data:`~acav_assets.core.generators.encodings.ENCODINGS`
encoding; each copy goes through the stages the pipeline runs, and is compared with the source
going through the same stages:

- ``probe``: status, duration, the size *as displayed* (a phone's 90° rotation swaps the stored
  size), the number of keyframes;
- ``decode``: the first clip window's frames against the source's (mean absolute difference in
  grey levels, 0-255: a picture shown turned or shifted in time differs by far more than a
  re-encode does) and its sound against the source's (correlation of the 50 ms loudness
  envelopes where the copy has sound), the seconds of silence padded where it does not;
- ``embed``: the weight-free profile's vectors of that window against the source's (mean cosine
  over the feature spaces);
- ``fingerprint``: picture samples, sound present, and whether the copy is found as a
  near-duplicate of the source: with every picture sampled, and with pictures on demand (the
  default: sound only in the fingerprints, the pictures read from both files);
- ``export``: the exact cut re-encoded (frames, size, samples) against the source's cut.

``benchmarks/encodings.py`` prints the table (``docs/encodings.md``); the tests assert on it.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import av
import numpy as np

from acav_assets.core.export.cut import CutConfig, cut_clip
from acav_assets.core.generators.encodings import Encoding, reencode
from acav_assets.core.media.clips import clip_windows
from acav_assets.core.media.decode import decode_clip
from acav_assets.core.media.fingerprint import NearDuplicateConfig, compare, fingerprint_file
from acav_assets.core.media.probe import probe_file
from acav_assets.core.stages.near_duplicates import PicturesOnDemand, compare_pair

__all__ = ["EncodingResult", "StageReference", "reference", "run_encoding"]

_ENVELOPE_S = 0.05


@dataclass
class EncodingResult:
    encoding: str
    probe_status: str
    probe_error: str
    duration_s: float | None
    width: int | None  # as displayed
    height: int | None
    keyframes: int
    windows: int
    picture_diff: float | None  # mean |copy - source| of the decoded clip frames, grey levels
    sound_corr: float | None  # correlation of the decoded clip's loudness envelope with the source's
    audio_pad_s: float | None
    embed_cos: float | None  # mean cosine with the source's vectors over the weight-free spaces
    fingerprint_samples: int
    fingerprint_sound: bool
    near_duplicate: bool
    fingerprint_evidence: str
    export_frames: int
    export_size: str
    export_samples: int
    export_diff: float | None  # mean |copy - source| of the exported frames, grey levels
    seconds: float  # the stages' wall time (not the re-encode)
    near_duplicate_on_demand: bool = False  # found with pictures on demand (read from both files)

    def as_row(self) -> dict:
        return asdict(self)


@dataclass
class StageReference:
    """The source through the same stages, to compare every copy with."""

    path: Path
    window: tuple[float, float]
    frames: np.ndarray
    envelope: np.ndarray
    vectors: dict[str, np.ndarray]
    fingerprint: object
    export_frames: np.ndarray
    extractors: list


def _grey(frames: np.ndarray) -> np.ndarray:
    return frames.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def _envelope(audio: np.ndarray, sr: int) -> np.ndarray:
    hop = int(_ENVELOPE_S * sr)
    n = audio.size // hop
    return np.sqrt((audio[: n * hop].reshape(n, hop) ** 2).mean(axis=1) + 1e-12)


def _corr(a: np.ndarray, b: np.ndarray) -> float | None:
    n = min(a.size, b.size)
    a, b = a[:n] - a[:n].mean(), b[:n] - b[:n].mean()
    den = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b / den) if den > 0 else None


def _embed(clip, extractors) -> dict[str, np.ndarray]:
    from acav_assets.core.features.base import ClipBatch

    out: dict[str, np.ndarray] = {}
    for ex in extractors:
        out.update(ex.extract(ClipBatch.from_clips([clip], ex.device)))
    return {k: v[0] for k, v in out.items()}


def _keyframes(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for p in c.demux(c.streams.video[0]) if p.size and p.is_keyframe)


def reference(src: str | os.PathLike) -> StageReference:
    """Run the source through the stages once (the weight-free profile embeds)."""
    from acav_assets.core.features.profiles import build_profile

    src = Path(src)
    rec = probe_file(src)
    if rec.status != "ok":
        raise ValueError(f"{src}: the source must probe ok, got {rec.status} ({rec.error})")
    w = clip_windows(src.stem, rec.duration_s)[0]
    clip = decode_clip(src, w.start_s, w.end_s)
    extractors = build_profile("weightfree", device="cpu")
    cut = cut_clip(src, w.start_s, w.end_s, CutConfig(with_arrays=True))
    return StageReference(
        src,
        (w.start_s, w.end_s),
        clip.frames,
        _envelope(clip.audio, clip.sample_rate),
        _embed(clip, extractors),
        fingerprint_file(src),
        cut.frames,
        extractors,
    )


def run_encoding(ref: StageReference, enc: Encoding, out_dir: str | os.PathLike) -> EncodingResult:
    """Write the reference's source as ``enc`` into ``out_dir`` and run it through the stages."""
    dst = Path(out_dir) / f"{ref.path.stem}_{enc.name}{enc.suffix}"
    reencode(ref.path, dst, enc)
    t0 = time.perf_counter()
    rec = probe_file(dst)
    row = EncodingResult(
        enc.name,
        rec.status,
        rec.error or "",
        rec.duration_s,
        rec.width,
        rec.height,
        _keyframes(dst),
        0,
        None,
        None,
        None,
        None,
        0,
        False,
        False,
        "",
        0,
        "",
        0,
        None,
        0.0,
    )
    if rec.status != "ok":
        row.seconds = time.perf_counter() - t0
        return row
    row.windows = len(clip_windows(dst.stem, rec.duration_s))
    start, end = ref.window
    clip = decode_clip(dst, start, end)
    if clip.frames.shape == ref.frames.shape:
        row.picture_diff = float(np.abs(_grey(clip.frames) - _grey(ref.frames)).mean())
    env = _envelope(clip.audio, clip.sample_rate)
    heard = env > 1e-5  # where the copy has sound (padding is exact silence)
    row.sound_corr = _corr(env[heard], ref.envelope[: env.size][heard]) if heard.sum() > 20 else None
    row.audio_pad_s = round(clip.audio_pad_s, 3)
    vectors = _embed(clip, ref.extractors)
    cos = []
    for name, v in vectors.items():
        r = ref.vectors[name]
        den = float(np.linalg.norm(v) * np.linalg.norm(r))
        if np.all(np.isfinite(v)) and den > 0:
            cos.append(float(v @ r) / den)
    row.embed_cos = float(np.mean(cos)) if len(cos) == len(vectors) else None
    fp = fingerprint_file(dst)
    row.fingerprint_samples = len(fp.frame_times)
    row.fingerprint_sound = bool(fp.audio_sounding.any())
    dup, evidence = compare(ref.fingerprint, fp)
    row.near_duplicate = bool(dup)
    row.fingerprint_evidence = f"sound {evidence['audio_agreement']}, picture {evidence['visual_agreement']}"
    pictures = PicturesOnDemand(lambda r: r["path"])
    dup, evidence = compare_pair(
        ({"batch": "b", "path": str(ref.path)}, fingerprint_file(ref.path, pictures_on_demand=True)),
        ({"batch": "b", "path": str(dst)}, fingerprint_file(dst, pictures_on_demand=True)),
        NearDuplicateConfig(),
        pictures.locate,
        pictures,
    )
    row.near_duplicate_on_demand = bool(dup)
    row.fingerprint_evidence += f"; on demand: picture {evidence['visual_agreement']}"
    cut = cut_clip(dst, start, end, CutConfig(with_arrays=True))
    row.export_frames, row.export_size, row.export_samples = cut.n_frames, f"{cut.width}x{cut.height}", cut.n_samples
    if cut.frames is not None and cut.frames.shape == ref.export_frames.shape:
        row.export_diff = float(np.abs(_grey(cut.frames) - _grey(ref.export_frames)).mean())
    row.seconds = time.perf_counter() - t0
    return row
