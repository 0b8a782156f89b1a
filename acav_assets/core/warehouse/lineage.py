"""What drove a selection: per clustering pair, per (cluster, cluster) cell, how many clips of
the pool and of the subset fall there and how much that cell adds to the pair's MI.

A cell's contribution is ``(N/n) log(N n / (a b))`` on the selected clips (N its count, a and b
its row and column sums, n the subset size); over a pair's cells they sum to that pair's
plug-in MI, and the mean of the pairs' sums, weighted by ``pair_weight``, is the selection
objective. ``pair_score`` is the pool's adjusted MI of the pair (label-free, see
:mod:`acav_assets.core.selection.weighting`): the evidence the weight was decided on.

Pool counts can be carried over from the previous lineage (incremental curation): the new
batches' counts are added to them, so the pool never has to be read whole again.
:func:`lineage_of` finds the lineage of a given selection, also when a later selection died
after writing its lineage but before its subset (the subset is the commit point).
"""

from __future__ import annotations

import numpy as np
import polars as pl

__all__ = ["lineage_of", "lineage_rows", "pair_tables", "tables_from_lineage"]


def pair_tables(labels: np.ndarray, pairs, ks) -> list[np.ndarray]:
    """One ``k_i × k_j`` count table per pair, over the rows of ``labels``."""
    out = []
    for i, j in pairs:
        cells = labels[:, i].astype(np.int64) * ks[j] + labels[:, j]
        out.append(np.bincount(cells, minlength=ks[i] * ks[j]).reshape(ks[i], ks[j]))
    return out


def tables_from_lineage(lineage: pl.DataFrame, pairs, ks) -> list[np.ndarray]:
    """The pool-count tables recorded in a lineage table (same pairs and clusterings)."""
    out = []
    for p, (i, j) in enumerate(pairs):
        t = np.zeros((ks[i], ks[j]), np.int64)
        cells = lineage.filter(pl.col("pair_index") == p)
        t[cells["cluster_a"].to_numpy(), cells["cluster_b"].to_numpy()] = cells["pool_count"].to_numpy()
        out.append(t)
    return out


def lineage_rows(
    pool: list[np.ndarray],
    selected: list[np.ndarray],
    pairs,
    columns: list[str],
    feature_spaces: list[str],
    selection_id: str,
    *,
    scores=None,
    weights=None,
) -> pl.DataFrame:
    """``selection_lineage`` rows from per-pair pool and subset count tables (non-empty pool cells),
    with each pair's weighting score and weight (None: unweighted, weight 1)."""
    scores = np.full(len(pairs), np.nan) if scores is None else np.asarray(scores, dtype=np.float64)
    weights = np.ones(len(pairs)) if weights is None else np.asarray(weights, dtype=np.float64)
    frames = []
    for p, (i, j) in enumerate(pairs):
        kj = pool[p].shape[1]
        pool_flat, sub = pool[p].ravel(), selected[p]
        n = int(sub.sum())
        a, b = sub.sum(1), sub.sum(0)
        sub_flat = sub.ravel()
        cells = np.flatnonzero(pool_flat)
        ci, cj = cells // kj, cells % kj
        nn = sub_flat[cells].astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            contrib = np.where(nn > 0, nn / max(n, 1) * np.log(nn * n / (a[ci] * b[cj])), 0.0)
        frames.append(
            pl.DataFrame(
                {
                    "selection_id": selection_id,
                    "pair_index": np.full(cells.size, p, np.int32),
                    "clustering_a": columns[i],
                    "clustering_b": columns[j],
                    "feature_space_a": feature_spaces[i],
                    "feature_space_b": feature_spaces[j],
                    "cluster_a": ci.astype(np.int32),
                    "cluster_b": cj.astype(np.int32),
                    "pool_count": pool_flat[cells].astype(np.int64),
                    "selected_count": sub_flat[cells].astype(np.int64),
                    "mi_contribution": contrib,
                    "pair_mi": np.full(cells.size, contrib.sum()),
                    "pair_score": np.full(cells.size, scores[p]),
                    "pair_weight": np.full(cells.size, weights[p]),
                }
            ).with_columns(pl.col("pair_score").fill_nan(None))
        )
    return pl.concat(frames)


def lineage_of(wh, selection_id: str, *, max_versions: int = 20) -> pl.DataFrame:
    """The ``selection_lineage`` rows of ``selection_id``: the table's current version when it
    holds that selection, else the newest of the previous ``max_versions`` versions that does
    (a selection that died between its lineage and its subset left its own lineage on top)."""
    current = wh.version("selection_lineage")
    if current is None:
        raise ValueError("selection_lineage does not exist: materialize curated_subset first")
    for v in range(current, max(-1, current - max_versions), -1):
        df = wh.read("selection_lineage", version=v)
        if df.height and df["selection_id"][0] == selection_id:
            return df
    raise ValueError(
        f"the lineage of selection {selection_id} is not among the last {max_versions} versions of "
        f"selection_lineage: re-select fully (mode 'full')"
    )
