"""Bit operations on perceptual hashes, shared by the fingerprints (``core/media``) and their
on-disk index (``core/warehouse``) so that neither layer imports the other."""

from __future__ import annotations

import numpy as np

__all__ = ["popcount64"]


def popcount64(x: np.ndarray) -> np.ndarray:
    """Number of set bits of each uint64."""
    x = np.ascontiguousarray(x, dtype=np.uint64)
    return np.unpackbits(x.view(np.uint8).reshape(*x.shape, 8), axis=-1).sum(axis=-1)
