"""Stage ``clip_embeddings``: long-format rows, one per clip per feature space."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import polars as pl

from acav_assets.core.features.base import Extractor
from acav_assets.core.features.embed import embed_clips
from acav_assets.core.media.decode import DecodeConfig

__all__ = ["embedding_rows"]


def embedding_rows(clips: list[dict], landing_root: str | os.PathLike, extractors: list[Extractor], *,
                   decode_config: DecodeConfig = DecodeConfig(), batch_size: int = 16, decode_workers: int = 2,
                   progress: Callable[[int, int], None] | None = None) -> tuple[pl.DataFrame, dict[str, str]]:
    """Long-format ``clip_embeddings`` rows (one per clip per feature space) and the clips that
    could not be embedded, with why."""
    root = Path(landing_root)
    items = [(c["clip_id"], str(root / c["path"]), c["start_s"], c["end_s"]) for c in clips]
    res = embed_clips(items, extractors, decode_config=decode_config, batch_size=batch_size,
                      decode_workers=decode_workers, progress=progress)
    batch = {c["clip_id"]: c["batch"] for c in clips}
    frames = []
    for fs, mat in res.vectors.items():
        frames.append(pl.DataFrame({
            "batch": [batch[c] for c in res.clip_ids], "clip_id": res.clip_ids, "feature_space": fs,
            "vector": pl.Series(mat, dtype=pl.Array(pl.Float32, mat.shape[1])).cast(pl.List(pl.Float32)),
        }))
    df = pl.concat(frames) if frames else pl.DataFrame(schema={"batch": pl.String, "clip_id": pl.String,
                                                               "feature_space": pl.String, "vector": pl.List(pl.Float32)})
    return df, res.failed
