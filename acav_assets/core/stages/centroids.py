"""Stage ``cluster_centroids``: one k-means per feature space, fitted on a bounded sample of
all batches' embeddings; and reading the fitted clusterings back."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict

import numpy as np
import polars as pl

from acav_assets.core.clustering import Clustering, KMeansConfig, auto_k, auto_nredo, fit_kmeans
from acav_assets.core.warehouse.tables import Warehouse

__all__ = ["fit_clusterings", "load_clusterings", "too_few_to_cluster", "MIN_CLIPS_TO_CLUSTER"]

MIN_CLIPS_TO_CLUSTER = 2  # with an automatic k (its floor is 2 clusters)


def _finite_vector() -> pl.Expr:
    """Rows whose vector is all finite (a batch that failed its embedding check may hold NaN/inf)."""
    return pl.col("vector").list.eval(pl.element().is_finite()).list.all()


def _vectors(wh: Warehouse, feature_space: str, *, max_rows: int | None, seed: int) -> tuple[list[str], np.ndarray]:
    lf = wh.scan("clip_embeddings").filter(pl.col("feature_space") == feature_space)
    n = lf.select(pl.len()).collect().item()
    if max_rows is not None and n > max_rows:
        # a deterministic, streaming sample: keep rows whose id hashes below the wanted share
        bound = int(max_rows / n * 2**32)
        lf = lf.filter((pl.col("clip_id").hash(seed) % (2**32)) < bound)
    # rows with NaN/inf (a batch that failed its embedding check) are left out of the fit
    df = lf.select("clip_id", "vector").filter(_finite_vector()).sort("clip_id").collect()
    if df.height == 0:
        return [], np.zeros((0, 0), np.float32)
    dim = df["vector"].list.len().max()
    mat = df["vector"].cast(pl.Array(pl.Float32, dim)).to_numpy()
    return df["clip_id"].to_list(), np.ascontiguousarray(mat, dtype=np.float32)


def fit_clusterings(
    wh: Warehouse,
    config: KMeansConfig,
    *,
    k: int | None = None,
    nredo: int | None = None,
    log: Callable[[str], None] = lambda m: None,
) -> list[Clustering]:
    """Fit one k-means per feature space in ``clip_embeddings`` on a bounded sample of all
    batches (vectors with NaN/inf left out). ``k=None``: :func:`auto_k` of the number of clips; ``nredo=None``:
    :func:`auto_nredo`. The fit version is derived from the sampled clips, so re-fitting the
    same data gives the same clustering ids."""
    spaces = sorted(wh.scan("clip_embeddings").select("feature_space").unique().collect()["feature_space"].to_list())
    if not spaces:
        raise ValueError("clip_embeddings is empty: materialize clip_embeddings for at least one batch first")
    out = []
    for fs in spaces:
        ids, x = _vectors(wh, fs, max_rows=config.max_sample, seed=config.seed)
        kk = k or auto_k(len(ids), config.k)
        redo = nredo or auto_nredo(x.shape[0], x.shape[1])
        cfg = KMeansConfig(**{**asdict(config), "k": kk, "nredo": redo, "max_sample": max(config.max_sample, kk)})
        version = hashlib.blake2b("\n".join(ids).encode(), digest_size=6).hexdigest()
        cl = fit_kmeans(x, fs, cfg, fit_version=version)
        log(f"{fs}: k={kk}, {redo} run(s), on {x.shape[0]} clips x {x.shape[1]} dims")
        out.append(cl)
    return out


def too_few_to_cluster(wh: Warehouse, k: int | None = None, *, empty_waits: bool = True) -> str | None:
    """Why the clips embedded so far cannot be clustered yet (fewer than ``k``, or than
    :data:`MIN_CLIPS_TO_CLUSTER` with an automatic k), in one line; None when they can. Not an
    error: the batches stay ingested and clustering and selection wait for more data. With
    ``empty_waits=False`` an empty ``clip_embeddings`` is not a waiting state (None: fitting then
    says that nothing was embedded)."""
    need = max(k or 0, MIN_CLIPS_TO_CLUSTER)
    per_space = (
        wh.scan("clip_embeddings")
        .filter(_finite_vector())
        .group_by("feature_space")
        .agg(pl.col("clip_id").n_unique())
        .collect()
    )  # one pass over the table
    if per_space.height == 0 and not empty_waits:
        return None
    n = int(per_space["clip_id"].min()) if per_space.height else 0
    if n >= need:
        return None
    return f"{n} clip(s): too few to cluster, need >= {need}; ingested, selection waits for more data"


def load_clusterings(wh: Warehouse) -> list[Clustering]:
    df = wh.read("cluster_centroids")
    if df.height == 0:
        raise ValueError("cluster_centroids is empty: materialize cluster_centroids first")
    return [Clustering.from_rows(g.to_dicts()) for _, g in df.group_by("clustering_id", maintain_order=True)]
