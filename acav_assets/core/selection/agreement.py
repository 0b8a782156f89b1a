"""Label-free refinement of a selection: how well each clip's sound fits its picture.

The MI selection chooses clips whose cluster cells agree across modalities; most of them truly
correspond. Taken as a pseudo-clean split, they teach a cross-modal map: ridge regression from
each modality's features (standardised on the split) to the other's. Every clip of the pool is
then scored by the cosine between its sound and the sound predicted from its picture (and the
same the other way round, averaged): a clip-level agreement, where MI only sees cells. A selected
clip is scored by a map learnt without it (cross-fitting over ``folds`` parts of the selection):
a map fits its own training pairs too well to judge them. Ridge, not a contrastive loss: the
selection's clips share classes, and InfoNCE would push apart the many pairs of one class that
do belong together (measured in ``acav_assets_tests/core/selection/test_agreement.py``: a 75%
selection refined to 96% by ridge, 70% by InfoNCE). No label is read anywhere. Deterministic.

:func:`agreement_scores` is the contrastive (linear InfoNCE) map; fed a labelled clean split, it
is the ``contrastive`` baseline of ``acav bench correspondence``.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["RIDGE_ALPHA", "agreement_scores", "cross_fitted_scores", "ridge_agreement", "standardise"]

RIDGE_ALPHA = 5.0  # ridge penalty per feature dimension (features standardised: unit variance each)


def standardise(x: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """``x`` with the per-dimension mean and standard deviation of ``ref`` taken out."""
    mu, sd = ref.mean(0), ref.std(0) + 1e-6
    return (x - mu) / sd


def agreement_scores(
    audio_train: np.ndarray,
    visual_train: np.ndarray,
    audio: np.ndarray,
    visual: np.ndarray,
    *,
    dim: int = 32,
    steps: int = 300,
    lr: float = 1e-2,
    temperature: float = 0.1,
    seed: int = 0,
) -> np.ndarray:
    """Per clip of ``audio``/``visual`` (``(N, Da)``, ``(N, Dv)``), the cosine of its sound's and
    its picture's projections, learnt on the corresponding rows ``audio_train``/``visual_train``
    (a selection, or a labelled clean split)."""
    g = torch.Generator().manual_seed(seed)
    at = torch.tensor(standardise(audio_train, audio_train), dtype=torch.float32)
    vt = torch.tensor(standardise(visual_train, visual_train), dtype=torch.float32)
    wa = torch.nn.Linear(at.shape[1], dim)
    wv = torch.nn.Linear(vt.shape[1], dim)
    with torch.no_grad():
        for w in (wa, wv):
            w.weight.copy_(torch.randn(w.weight.shape, generator=g) / w.weight.shape[1] ** 0.5)
            w.bias.zero_()
    opt = torch.optim.Adam([*wa.parameters(), *wv.parameters()], lr=lr)
    target = torch.arange(at.shape[0])
    for _ in range(steps):
        opt.zero_grad()
        za = torch.nn.functional.normalize(wa(at), dim=1)
        zv = torch.nn.functional.normalize(wv(vt), dim=1)
        logits = za @ zv.T / temperature
        loss = (
            torch.nn.functional.cross_entropy(logits, target) + torch.nn.functional.cross_entropy(logits.T, target)
        ) / 2
        loss.backward()
        opt.step()
    with torch.no_grad():
        za = torch.nn.functional.normalize(
            wa(torch.tensor(standardise(audio, audio_train), dtype=torch.float32)), dim=1
        )
        zv = torch.nn.functional.normalize(
            wv(torch.tensor(standardise(visual, visual_train), dtype=torch.float32)), dim=1
        )
        return (za * zv).sum(1).numpy()


def ridge_agreement(
    audio_train: np.ndarray,
    visual_train: np.ndarray,
    audio: np.ndarray,
    visual: np.ndarray,
    *,
    alpha: float = RIDGE_ALPHA,
) -> np.ndarray:
    """Per clip, the cosine between its sound and the sound that ridge regression (learnt on the
    corresponding training rows) predicts from its picture, averaged with the same the other way
    round. Solved in whichever of the primal or dual form is smaller."""

    def fit_predict(x_train, y_train, x):
        xs, ys = standardise(x_train, x_train), standardise(y_train, y_train)
        xq = standardise(x, x_train)
        lam = alpha * xs.shape[1]  # each standardised dimension has unit variance
        if xs.shape[1] <= xs.shape[0]:
            w = np.linalg.solve(xs.T @ xs + lam * np.eye(xs.shape[1]), xs.T @ ys)
            return xq @ w
        coef = np.linalg.solve(xs @ xs.T + lam * np.eye(xs.shape[0]), ys)
        return (xq @ xs.T) @ coef

    def cosine(p, y):
        return (p * y).sum(1) / (np.linalg.norm(p, axis=1) * np.linalg.norm(y, axis=1) + 1e-9)

    a = standardise(audio, audio_train)
    v = standardise(visual, visual_train)
    return 0.5 * (
        cosine(fit_predict(visual_train, audio_train, visual), a)
        + cosine(fit_predict(audio_train, visual_train, audio), v)
    )


def cross_fitted_scores(
    audio: np.ndarray,
    visual: np.ndarray,
    selected: np.ndarray,
    *,
    folds: int = 5,
    seed: int = 0,
    alpha: float = RIDGE_ALPHA,
) -> np.ndarray:
    """:func:`ridge_agreement` of every clip, learnt on the ``selected`` ones (bool ``(N,)``):
    each selected clip by the map learnt on the other folds of the selection, each other clip by
    the mean over the folds' maps."""
    chosen = np.flatnonzero(selected)
    if chosen.size < 2 * folds:
        raise ValueError(
            f"cross-fitting over {folds} folds needs at least {2 * folds} selected clips, got {chosen.size}"
        )
    audio, visual = np.asarray(audio, np.float64), np.asarray(visual, np.float64)
    part = np.random.default_rng(seed).permutation(chosen.size) % folds
    scores = np.zeros(len(selected))
    rest = ~np.asarray(selected, bool)
    for f in range(folds):
        train = chosen[part != f]
        s = ridge_agreement(audio[train], visual[train], audio, visual, alpha=alpha)
        scores[chosen[part == f]] = s[chosen[part == f]]
        scores[rest] += s[rest] / folds
    return scores
