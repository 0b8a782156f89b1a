"""Baseline for ``benchmarks/selection.py``: the cost model of the official ACAV100M selector.

Written for this project from the paper and the behaviour of the reference code (its batch
greedy over torch tensors), not copied from it. What makes it the baseline is its cost:

- every step reshuffles the *whole* remaining pool (``randperm``) and takes its first B clips;
- every candidate gets P full ``C × C`` contingency tables (one-hot outer products added to
  the current tables), and its MI is summed over all ``C²`` cells of every pair;
- the best ``take`` are added, the other candidates go back to the pool.

Tables start at float64 machine epsilon in every cell, as the reference's do, so log(0) never
occurs. The objective it optimises is the same mean plug-in MI over pairs.
"""

from __future__ import annotations

import numpy as np
import torch


def reference_batch_greedy(
    labels: np.ndarray, pairs, budget: int, *, batch_size: int = 20, take: int = 4, seed: int = 0
) -> np.ndarray:
    """Select ``budget`` row indices of ``labels`` (n × m) the reference way; returns them in order."""
    gen = torch.Generator().manual_seed(seed)
    lab = torch.from_numpy(labels.astype(np.int64))
    n = lab.shape[0]
    c = int(lab.max()) + 1  # the reference needs one k for all clusterings
    pair_idx = torch.tensor(pairs, dtype=torch.long)  # P × 2
    p = pair_idx.shape[0]
    eps = float(np.finfo(np.float64).eps)
    table = torch.full((p, c, c), eps, dtype=torch.float64)
    pool = torch.arange(n)
    chosen: list[int] = []
    with torch.no_grad():
        while len(chosen) < budget:
            pool = pool[torch.randperm(pool.shape[0], generator=gen)]  # full reshuffle
            batch = pool[:batch_size]
            onehot = torch.nn.functional.one_hot(lab[batch], c).to(torch.float64)  # W × m × C
            left = onehot[:, pair_idx[:, 0]]  # W × P × C
            right = onehot[:, pair_idx[:, 1]]
            cand = table.unsqueeze(0) + torch.einsum("wpa,wpb->wpab", left, right)  # W × P × C × C
            a = cand.sum(3, keepdim=True)
            b = cand.sum(2, keepdim=True)
            nn = cand.sum((2, 3), keepdim=True)
            mi = (cand / nn * (cand.log() + nn.log() - a.log() - b.log())).sum((2, 3))  # W × P
            score = mi.mean(1)
            k = min(take, batch.shape[0], budget - len(chosen))
            top = torch.topk(score, k).indices
            picked = batch[top]
            table += torch.einsum("wpa,wpb->pab", left[top], right[top])
            chosen.extend(int(x) for x in picked)
            keep = torch.ones(pool.shape[0], dtype=torch.bool)
            keep[top] = False
            pool = pool[keep]
    return np.asarray(chosen, dtype=np.int64)
