"""Pooling a clip's frame-level embeddings over time, so that short events are not averaged away.

A 10 s clip whose event lasts 0.3 s has it in one of ten 0.96 s audio patches: the plain mean
gives the background nine tenths of the vote, and the clip lands in the background's cluster.
Each pooling here turns ``(P, D)`` per-patch values and the patches' loudness (dB) into one
``(D,)`` vector:

- ``mean``: every patch alike (what the reference does);
- ``loudness``: weights ``exp((dB - loudest dB) / LOUDNESS_SOFTNESS_DB)``: the patches where
  something sounds carry the clip; a steady sound keeps nearly equal weights (a plain mean);
- ``top3``: the mean of the three loudest patches;
- ``max``: the largest value of each dimension over the patches (multiple-instance pooling).

Which one the platform uses (:data:`DEFAULT_POOLING`) is chosen by ``benchmarks/pooling.py`` (docs/quality.md).
"""

from __future__ import annotations

import numpy as np

__all__ = ["DEFAULT_POOLING", "POOLINGS", "LOUDNESS_SOFTNESS_DB", "patch_loudness_db", "pool_over_time"]

POOLINGS = ("mean", "loudness", "top3", "max")
DEFAULT_POOLING = (
    "loudness"  # YAMNet's (the extractor option ``pooling``): chosen by benchmarks/pooling.py (docs/quality.md)
)
LOUDNESS_SOFTNESS_DB = 2.0  # a patch this much quieter than the loudest weighs 1/e as much
_FLOOR_DB = -100.0  # digital silence


def patch_loudness_db(wave: np.ndarray, n_patches: int, patch_len: int) -> np.ndarray:
    """Mean power (dB) of each of the ``n_patches`` consecutive ``patch_len``-sample patches of
    ``wave`` (the last one padded with silence)."""
    x = np.zeros(n_patches * patch_len, np.float64)
    w = np.asarray(wave, np.float64)[: x.size]
    x[: w.size] = w
    power = (x.reshape(n_patches, patch_len) ** 2).mean(axis=1)
    return np.maximum(10 * np.log10(power + 1e-30), _FLOOR_DB)


def pool_over_time(values: np.ndarray, loudness_db: np.ndarray, how: str) -> np.ndarray:
    """One vector from the ``(P, D)`` per-patch ``values``, pooled by ``how`` (one of
    :data:`POOLINGS`) with the patches' ``loudness_db`` ``(P,)``."""
    v = np.asarray(values, np.float32)
    if v.ndim != 2 or v.shape[0] != len(loudness_db):
        raise ValueError(f"expected (P, D) values and P loudness values, got {v.shape} and {len(loudness_db)}")
    if how == "mean" or v.shape[0] == 1:
        return v.mean(axis=0)
    db = np.asarray(loudness_db, np.float64)
    if how == "loudness":
        w = np.exp((db - db.max()) / LOUDNESS_SOFTNESS_DB)
        return (w[:, None] * v).sum(axis=0).astype(np.float32) / np.float32(w.sum())
    if how == "top3":
        return v[np.argsort(-db, kind="stable")[:3]].mean(axis=0)
    if how == "max":
        return v.max(axis=0)
    raise ValueError(f"unknown pooling {how!r}: expected one of {POOLINGS}")
