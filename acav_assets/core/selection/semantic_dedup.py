"""Clip-level semantic deduplication: clips whose embeddings are all but identical.

Near-duplicate *videos* are found from their media (:mod:`acav_assets.core.media.fingerprint`);
this step finds *clips* that the networks see as the same content (a re-upload the fingerprints
missed, a static title card, a looped segment), the peers' approach (SemDeDup; NeMo Curator):
clips are bucketed by k-means cluster, and pairs are compared by cosine within a bucket only.
Here the bucket is the clip's cluster in *every* clustering used (already computed for the
selection, so no extra k-means), and a pair is a duplicate when its cosine reaches the
threshold in *every* feature space given (same picture and same sound, at every layer asked).
Within a bucket the earliest row is kept (rows come in batch order, so the copy landed first
stays); each later duplicate names the kept row it repeats. Rows that may not be removed (a
warm start's previous subset) still count as kept copies.
"""

from __future__ import annotations

import numpy as np

__all__ = ["semantic_duplicates"]


def semantic_duplicates(
    vectors: list[np.ndarray], buckets: np.ndarray, threshold: float, *, removable: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Duplicate rows, the kept row each repeats, and their cosine (the lowest over the spaces).

    ``vectors``: one (n, d) float32 array per feature space, rows L2-normalised (a zero row
    matches nothing); ``buckets``: (n,) bucket of each row; ``removable``: (n,) bool, rows that
    may be marked (default all)."""
    import faiss

    if not 0 < threshold <= 1:
        raise ValueError(f"the cosine threshold must be in (0, 1], got {threshold}")
    n = buckets.shape[0]
    if any(v.shape[0] != n for v in vectors) or not vectors:
        raise ValueError("need one vector per row in every feature space")
    removable = np.ones(n, bool) if removable is None else np.asarray(removable, bool)
    order = np.argsort(buckets, kind="stable")
    starts = np.flatnonzero(np.r_[True, buckets[order][1:] != buckets[order][:-1]])
    ends = np.r_[starts[1:], n]
    dup, kept, cos = [], [], []
    for s, e in zip(starts, ends):
        rows = order[s:e]  # ascending: stable sort of row numbers
        if rows.size < 2 or not removable[rows].any():
            continue
        first = np.ascontiguousarray(vectors[0][rows], dtype=np.float32)
        index = faiss.IndexFlatIP(first.shape[1])
        index.add(first)
        # faiss keeps pairs strictly above the radius: a hair below the threshold
        lims, sims, nbrs = index.range_search(first, np.float32(threshold) - np.float32(1e-6))
        gone = np.zeros(rows.size, bool)
        for i in range(rows.size):
            if gone[i]:
                continue  # a removed row keeps nothing: its own duplicates are compared with kept rows
            for j, sim in zip(nbrs[lims[i] : lims[i + 1]], sims[lims[i] : lims[i + 1]]):
                if j <= i or gone[j] or not removable[rows[j]]:
                    continue
                low = min([float(sim)] + [float(v[rows[i]] @ v[rows[j]]) for v in vectors[1:]])
                if low >= threshold:
                    gone[j] = True
                    dup.append(rows[j]), kept.append(rows[i]), cos.append(low)
    if not dup:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    o = np.argsort(dup)
    return np.asarray(dup, np.int64)[o], np.asarray(kept, np.int64)[o], np.asarray(cos, np.float32)[o]
