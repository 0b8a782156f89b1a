"""Stage ``cluster_assignments``: nearest frozen centroid of every clip of a batch."""

from __future__ import annotations

import numpy as np
import polars as pl

from acav_assets.core.clustering import Clustering
from acav_assets.core.warehouse.tables import Warehouse

__all__ = ["assignment_rows"]


def assignment_rows(wh: Warehouse, batch: str, clusterings: list[Clustering]) -> pl.DataFrame:
    """Nearest centroid of every embedded clip of ``batch``, for every clustering. A vector with
    NaN or inf (a broken embedding) gets no assignment: the clip stays out of the pool (the
    ``assignments_complete`` check names it) instead of failing the whole batch or taking an
    arbitrary cluster."""
    frames = []
    for cl in clusterings:
        df = (
            wh.scan("clip_embeddings")
            .filter((pl.col("batch") == batch) & (pl.col("feature_space") == cl.feature_space))
            .select("clip_id", "vector")
            .sort("clip_id")
            .collect()
        )
        if df.height == 0:
            continue
        x = df["vector"].cast(pl.Array(pl.Float32, cl.dim)).to_numpy()
        finite = np.isfinite(x).all(axis=1)
        if not finite.all():
            x, df = x[finite], df.filter(pl.Series(finite))
        labels, dist = cl.assign(x)
        frames.append(
            pl.DataFrame(
                {
                    "batch": batch,
                    "clip_id": df["clip_id"],
                    "clustering_id": cl.clustering_id,
                    "feature_space": cl.feature_space,
                    "cluster": labels,
                    "distance": dist,
                }
            )
        )
    if not frames:
        return pl.DataFrame(
            schema={
                "batch": pl.String,
                "clip_id": pl.String,
                "clustering_id": pl.String,
                "feature_space": pl.String,
                "cluster": pl.Int32,
                "distance": pl.Float32,
            }
        )
    return pl.concat(frames)
