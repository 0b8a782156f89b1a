"""Embeddings of chosen clips of the selection pool, read batch by batch from ``clip_embeddings``.

The selection works on cluster labels; semantic dedup and the agreement refinement also need some
clips' embeddings. They are read here one batch at a time (a filter on the batch partition, the
feature spaces and the clip ids), so that only the asked rows of the asked spaces are ever held,
optionally mapped (e.g. to a few principal components) as each batch arrives.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import polars as pl

from acav_assets.core.warehouse.tables import Warehouse

__all__ = ["read_vectors"]


def read_vectors(
    wh: Warehouse,
    spaces: Sequence[str],
    keys: Sequence[tuple[str, str]],
    transform: Callable[[str, np.ndarray], np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Per feature space, the embeddings of the clips ``keys`` ((clip id, batch), one row each in
    that order), as float32; ``transform(space, vectors)`` maps each batch's block as it is read.
    A space with no embedding for any of the clips is an error naming it; a clip missing from a
    space keeps a row of zeros."""
    where = pl.DataFrame(
        {"clip_id": [k for k, _ in keys], "batch": [b for _, b in keys], "row": np.arange(len(keys))},
        schema={"clip_id": pl.String, "batch": pl.String, "row": pl.Int64},
    )
    out: dict[str, np.ndarray] = {}
    for batch, part in where.group_by("batch", maintain_order=True):
        got = (
            wh.scan("clip_embeddings")
            .filter(
                (pl.col("batch") == batch[0])
                & pl.col("feature_space").is_in(list(spaces))
                & pl.col("clip_id").is_in(part["clip_id"].implode())
            )
            .select("clip_id", "feature_space", "vector")
            .collect()
            .join(part.select("clip_id", "row"), on="clip_id")
        )
        for (space,), rows in got.group_by("feature_space"):
            vec = np.asarray(rows["vector"].to_list(), np.float32)
            if transform is not None:
                vec = transform(space, vec)
            if space not in out:
                out[space] = np.zeros((len(keys), vec.shape[1]), np.float32)
            out[space][rows["row"].to_numpy()] = vec
    missing = [s for s in spaces if s not in out]
    if missing:
        raise ValueError(f"no embeddings of {missing} for the pool's clips: materialize clip_embeddings")
    return out
