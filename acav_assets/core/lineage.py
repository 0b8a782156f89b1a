"""What drove a selection: per clustering pair, per (cluster, cluster) cell, how many clips of
the pool and of the subset fall there and how much that cell adds to the pair's MI.

A cell's contribution is ``(N/n) log(N n / (a b))`` on the selected clips (N its count, a and b
its row and column sums, n the subset size); over a pair's cells they sum to that pair's
plug-in MI, and the mean of the pairs' sums is the selection objective.
"""

from __future__ import annotations

import numpy as np
import polars as pl

__all__ = ["lineage_rows"]


def lineage_rows(labels: np.ndarray, selected: np.ndarray, pairs, columns: list[str], feature_spaces: list[str],
                 selection_id: str) -> pl.DataFrame:
    """``selection_lineage`` rows: one per non-empty cell (in the pool) of every pair."""
    selected = np.asarray(selected, dtype=np.int64)
    n = selected.size
    frames = []
    for p, (i, j) in enumerate(pairs):
        ki, kj = int(labels[:, i].max()) + 1, int(labels[:, j].max()) + 1
        pool = np.bincount(labels[:, i].astype(np.int64) * kj + labels[:, j], minlength=ki * kj)
        sub = np.bincount(labels[selected, i].astype(np.int64) * kj + labels[selected, j], minlength=ki * kj)
        a = sub.reshape(ki, kj).sum(1)
        b = sub.reshape(ki, kj).sum(0)
        cells = np.flatnonzero(pool)
        ci, cj = cells // kj, cells % kj
        nn = sub[cells].astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            contrib = np.where(nn > 0, nn / max(n, 1) * np.log(nn * n / (a[ci] * b[cj])), 0.0)
        frames.append(pl.DataFrame({
            "selection_id": selection_id, "pair_index": np.full(cells.size, p, np.int32),
            "clustering_a": columns[i], "clustering_b": columns[j],
            "feature_space_a": feature_spaces[i], "feature_space_b": feature_spaces[j],
            "cluster_a": ci.astype(np.int32), "cluster_b": cj.astype(np.int32),
            "pool_count": pool[cells].astype(np.int64), "selected_count": sub[cells].astype(np.int64),
            "mi_contribution": contrib, "pair_mi": np.full(cells.size, contrib.sum()),
        }))
    return pl.concat(frames)
