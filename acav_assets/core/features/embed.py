"""The embedding pipeline: decode clips in worker threads while the extractors compute on the
previous batch; a clip that fails to decode is recorded, never raised."""

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

from acav_assets.core.features.base import ClipBatch, Extractor, profile_feature_spaces
from acav_assets.core.media.decode import DecodeConfig, DecodedClip, decode_clip

__all__ = ["EmbeddingResult", "embed_clips"]

log = logging.getLogger(__name__)


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


def _decode_ahead(
    items, config: DecodeConfig, workers: int, depth: int
) -> Iterator[tuple[str, DecodedClip | None, str]]:
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
    vectors = {
        name: (np.concatenate(v) if v else np.zeros((0, fs.dim), np.float32))
        for (name, v), fs in zip(out.items(), spaces)
    }
    return EmbeddingResult(ids, vectors, failed, pads, time.perf_counter() - t0)


def _run_batches(
    clips: list[DecodedClip], extractors: Sequence[Extractor], device: torch.device
) -> list[dict[str, np.ndarray]]:
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
