"""Clip embeddings: the extractor interface, the registry of extractors and profiles, and the
embedding pipeline that overlaps decoding with compute.

An extractor has a name, declares its feature spaces (``<modality>/<model>/<layer>`` with a
dimension) and turns a :class:`ClipBatch` into one float32 matrix per feature space. A profile
is a named list of extractors, chosen by configuration:

- ``weightfree`` (default, offline, used by the demo and CI): informative, deterministic
  features at several scales per modality (:mod:`acav_assets.core.handcrafted`);
- ``pretrained``: an R(2+1)D-18 video network (5 stages) and a VGGish-style audio CNN
  (5 layers) (:mod:`acav_assets.core.backbones`), with weights from a local file or the torch
  cache, or seeded random weights (with a warning) when none are configured.

Every extractor runs in torch on the chosen device: CUDA when available (half precision for
the networks, inference mode), CPU otherwise — the same code path either way.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice

import numpy as np
import torch

from acav_assets.core.decode import DecodeConfig, DecodedClip, decode_clip

__all__ = [
    "ClipBatch", "EmbeddingResult", "Extractor", "FeatureSpace", "PROFILES", "build_profile",
    "embed_clips", "profile_feature_spaces", "register_extractor", "resolve_device",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeatureSpace:
    name: str  # "<modality>/<model>/<layer>"
    dim: int

    @property
    def modality(self) -> str:
        return self.name.split("/", 1)[0]


@dataclass
class ClipBatch:
    """Decoded clips stacked for an extractor.

    ``frames``: (B, T, H, W, 3) uint8 RGB on the device; ``audio``: list of B mono float32
    tensors at ``sample_rate`` (clips shorter than the clip length have fewer samples).
    """

    clip_ids: list[str]
    frames: torch.Tensor
    audio: list[torch.Tensor]
    sample_rate: int

    @classmethod
    def from_clips(cls, clips: Sequence[DecodedClip], device: torch.device) -> ClipBatch:
        frames = torch.from_numpy(np.stack([c.frames for c in clips])).to(device)
        audio = [torch.from_numpy(c.audio).to(device) for c in clips]
        return cls([c.clip_id for c in clips], frames, audio, clips[0].sample_rate)

    def __len__(self) -> int:
        return len(self.clip_ids)


class Extractor:
    """Base class: subclasses set ``name`` and implement ``feature_spaces`` and ``_extract``."""

    name: str = ""

    def __init__(self, device: torch.device | str = "cpu"):
        self.device = torch.device(device)

    def feature_spaces(self) -> list[FeatureSpace]:
        raise NotImplementedError

    def _extract(self, batch: ClipBatch) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    @torch.inference_mode()
    def extract(self, batch: ClipBatch) -> dict[str, np.ndarray]:
        """One (B, dim) float32 matrix per declared feature space."""
        out = self._extract(batch)
        result = {}
        for fs in self.feature_spaces():
            v = out[fs.name].float().cpu().numpy()
            if v.shape != (len(batch), fs.dim):
                raise RuntimeError(f"{self.name}: {fs.name} gave shape {v.shape}, declared ({len(batch)}, {fs.dim})")
            result[fs.name] = np.ascontiguousarray(v, dtype=np.float32)
        return result


_REGISTRY: dict[str, Callable[..., Extractor]] = {}


def register_extractor(name: str):
    """Class decorator: make an extractor available to profiles under ``name``."""
    def deco(cls):
        cls.name = name
        _REGISTRY[name] = cls
        return cls
    return deco


#: Named sets of extractors. Each entry: (registered extractor name, keyword arguments).
PROFILES: dict[str, list[tuple[str, dict]]] = {
    "weightfree": [("visual/pixels", {}), ("audio/logmel", {})],
    "pretrained": [("visual/r2plus1d_18", {}), ("audio/vggish", {})],
}


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``None``/"auto": CUDA when available, else CPU. An explicit "cuda" without a GPU is an error."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for, but torch sees no GPU")
    return dev


def build_profile(profile: str, device: str | torch.device | None = None,
                  options: dict[str, dict] | None = None) -> list[Extractor]:
    """Instantiate a profile's extractors on ``device``; ``options`` overrides keyword arguments
    per extractor name (e.g. ``{"visual/r2plus1d_18": {"weights": "/models/r2p1d.pth"}}``)."""
    _load_builtin_extractors()
    if profile not in PROFILES:
        raise ValueError(f"unknown extractor profile {profile!r}: expected one of {sorted(PROFILES)}")
    dev = resolve_device(device)
    options = options or {}
    unknown = set(options) - {n for n, _ in PROFILES[profile]}
    if unknown:
        raise ValueError(f"options given for extractors not in profile {profile!r}: {sorted(unknown)}")
    return [_REGISTRY[name](device=dev, **{**kw, **options.get(name, {})}) for name, kw in PROFILES[profile]]


def profile_feature_spaces(extractors: Iterable[Extractor]) -> list[FeatureSpace]:
    spaces = [fs for e in extractors for fs in e.feature_spaces()]
    names = [fs.name for fs in spaces]
    if len(set(names)) != len(names):
        raise ValueError(f"feature spaces declared twice: {sorted({n for n in names if names.count(n) > 1})}")
    return spaces


def _load_builtin_extractors() -> None:
    # imported for their registration side effect, lazily (backbones import torchvision)
    from acav_assets.core import backbones, handcrafted  # noqa: F401


@dataclass
class EmbeddingResult:
    clip_ids: list[str]
    vectors: dict[str, np.ndarray]  # feature space -> (len(clip_ids), dim)
    failed: dict[str, str] = field(default_factory=dict)  # clip_id -> why it has no embedding
    audio_pad_s: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


def _decode_one(item, config: DecodeConfig) -> tuple[str, DecodedClip | None, str]:
    cid, path, s, e = item
    try:
        return cid, decode_clip(path, s, e, config, clip_id=cid), ""
    except Exception as exc:  # noqa: BLE001 - a bad clip is data, not a crash
        return cid, None, f"{type(exc).__name__}: {exc}"


def _decode_ahead(items, config: DecodeConfig, workers: int, depth: int) -> Iterator[tuple[str, DecodedClip | None, str]]:
    """Decode in ``workers`` threads (FFmpeg releases the GIL), yielding in input order, with at
    most ``depth`` clips in flight ahead of the consumer (bounded memory)."""
    it = iter(items)
    if workers <= 1:
        for item in it:
            yield _decode_one(item, config)
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="decode") as pool:
        window = deque(pool.submit(_decode_one, item, config) for item in islice(it, depth))
        while window:
            result = window.popleft().result()
            nxt = next(it, None)
            if nxt is not None:
                window.append(pool.submit(_decode_one, nxt, config))
            yield result


def embed_clips(
    items: Iterable[tuple[str, str, float, float]],
    extractors: Sequence[Extractor],
    *,
    decode_config: DecodeConfig = DecodeConfig(),
    batch_size: int = 16,
    decode_workers: int = 2,
    progress: Callable[[int, int], None] | None = None,
) -> EmbeddingResult:
    """Decode and embed ``(clip_id, path, start_s, end_s)`` items.

    Decoding runs ahead in worker threads while the extractors compute on the previous batch.
    A clip that fails to decode is reported in ``failed`` (with the reason), never raised. On
    CUDA, a batch that runs out of memory is split in halves and retried.
    """
    items = list(items)
    spaces = profile_feature_spaces(extractors)
    device = extractors[0].device if extractors else torch.device("cpu")
    out: dict[str, list[np.ndarray]] = {fs.name: [] for fs in spaces}
    ids: list[str] = []
    failed: dict[str, str] = {}
    pads: dict[str, float] = {}
    t0 = time.perf_counter()
    pending: list[DecodedClip] = []
    done = 0

    def flush():
        nonlocal done
        if not pending:
            return
        for part in _run_batches(pending, extractors, device):
            for name, v in part.items():
                out[name].append(v)
        ids.extend(c.clip_id for c in pending)
        done += len(pending)
        pending.clear()
        if progress is not None:
            progress(done + len(failed), len(items))

    # On the CPU, decoder threads and torch's threads share the cores; acav_assets sets
    # OMP_WAIT_POLICY=PASSIVE before torch loads so that idle OpenMP threads sleep, not spin.
    try:
        for cid, clip, err in _decode_ahead(items, decode_config, decode_workers, depth=2 * batch_size):
            if clip is None:
                failed[cid] = err or "decode failed"
                continue
            if clip.audio_pad_s > 0:
                pads[cid] = clip.audio_pad_s
            pending.append(clip)
            if len(pending) >= batch_size:
                flush()
        flush()
    finally:
        pending.clear()
    vectors = {name: (np.concatenate(v) if v else np.zeros((0, fs.dim), np.float32))
               for (name, v), fs in zip(out.items(), spaces)}
    return EmbeddingResult(ids, vectors, failed, pads, time.perf_counter() - t0)


def _run_batches(clips: list[DecodedClip], extractors: Sequence[Extractor], device: torch.device) -> list[dict[str, np.ndarray]]:
    """Run every extractor on one batch; halve and retry on CUDA out-of-memory."""
    try:
        batch = ClipBatch.from_clips(clips, device)
        merged: dict[str, np.ndarray] = {}
        for e in extractors:
            merged.update(e.extract(batch))
        return [merged]
    except torch.cuda.OutOfMemoryError:
        if len(clips) == 1:
            raise
        torch.cuda.empty_cache()
        half = len(clips) // 2
        log.warning("CUDA out of memory on a batch of %d clips; retrying in halves", len(clips))
        return _run_batches(clips[:half], extractors, device) + _run_batches(clips[half:], extractors, device)
