"""Stage ``clip_embeddings``: long-format rows, one per clip per feature space."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import polars as pl

from acav_assets.core.features.base import Extractor
from acav_assets.core.features.embed import embed_clips
from acav_assets.core.media.decode import DecodeConfig
from acav_assets.core.media.probe import resolves_inside

__all__ = ["embedding_rows"]


def embedding_rows(
    clips: list[dict],
    landing_root: str | os.PathLike,
    extractors: list[Extractor],
    *,
    decode_config: DecodeConfig = DecodeConfig(),
    batch_size: int = 16,
    decode_workers: int = 2,
    progress: Callable[[int, int], None] | None = None,
    allowed_roots: tuple[str, ...] = (),
) -> tuple[pl.DataFrame, dict[str, str]]:
    """Long-format ``clip_embeddings`` rows (one per clip per feature space) and the clips that
    could not be embedded, with why. A file that now resolves outside ``landing_root`` and
    ``allowed_roots`` (a link changed since probing) is not opened: its clips fail."""
    root = Path(landing_root)
    items, outside = [], {}
    for c in clips:
        path = str(root / c["path"])
        if resolves_inside(path, (str(root), *allowed_roots)):
            items.append((c["clip_id"], path, c["start_s"], c["end_s"]))
        else:
            outside[c["clip_id"]] = f"outside_landing: {c['path']} now resolves outside the landing area; not read"
    res = embed_clips(
        items,
        extractors,
        decode_config=decode_config,
        batch_size=batch_size,
        decode_workers=decode_workers,
        progress=progress,
    )
    res.failed.update(outside)
    batch = {c["clip_id"]: c["batch"] for c in clips}
    frames = []
    for fs, mat in res.vectors.items():
        frames.append(
            pl.DataFrame(
                {
                    "batch": [batch[c] for c in res.clip_ids],
                    "clip_id": res.clip_ids,
                    "feature_space": fs,
                    "vector": pl.Series(mat, dtype=pl.Array(pl.Float32, mat.shape[1])).cast(pl.List(pl.Float32)),
                }
            )
        )
    df = (
        pl.concat(frames)
        if frames
        else pl.DataFrame(
            schema={"batch": pl.String, "clip_id": pl.String, "feature_space": pl.String, "vector": pl.List(pl.Float32)}
        )
    )
    return df, res.failed
