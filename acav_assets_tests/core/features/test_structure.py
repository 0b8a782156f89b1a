"""visual/structure: generic picture statistics, and the invariances they promise."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from acav_assets.core.features.base import ClipBatch
from acav_assets.core.features.structure import StructureStats


def _picture(seed: int, size: int = 112) -> np.ndarray:
    """A picture with structure at several scales (oriented stripes, blobs), not a class of ours."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    img = np.zeros((size, size, 3))
    for _ in range(6):
        f, a, ph = rng.uniform(2, 20), rng.uniform(0, np.pi), rng.uniform(0, 2 * np.pi)
        img += rng.uniform(0.2, 1.0, 3) * np.sin(2 * np.pi * f * (xx * np.cos(a) + yy * np.sin(a)) + ph)[..., None]
    img = (img - img.min()) / (img.max() - img.min())
    return (img * 255).astype(np.uint8)


def _batch(*pictures: np.ndarray) -> ClipBatch:
    frames = torch.from_numpy(np.stack([np.repeat(p[None], 4, 0) for p in pictures]))
    return ClipBatch([str(i) for i in range(len(pictures))], frames, [torch.zeros(1600)] * len(pictures), 16_000)


@pytest.fixture(scope="module")
def ex():
    return StructureStats(n_frames=2)


def test_declared_spaces_and_shapes(ex):
    out = ex.extract(_batch(_picture(0), _picture(1)))
    assert {k: v.shape[1] for k, v in out.items()} == {fs.name: fs.dim for fs in ex.feature_spaces()}
    assert all(np.isfinite(v).all() for v in out.values())
    assert np.allclose(out["visual/structure/texture"][:, :10].sum(1), 1, atol=1e-5)


def test_invariances(ex):
    """A shifted copy keeps every space; a tinted copy keeps gradients and texture and moves
    colour; another picture differs."""
    big = _picture(0, size=150)
    a, shifted = big[:112, :112], big[17:129, 29:141]  # the camera moved: the same content, elsewhere
    other = _picture(7)
    tint = np.clip(a * np.array([1.25, 0.9, 0.7]), 0, 255).astype(np.uint8)
    out = ex.extract(_batch(a, shifted, tint, other))

    def d(space, i, j):
        v = out[f"visual/structure/{space}"]
        return float(np.linalg.norm(v[i] - v[j]))

    for space in ("gradients", "spectrum", "texture", "colour"):
        assert d(space, 0, 1) < 0.25 * d(space, 0, 3), space
    for space in ("gradients", "texture"):
        assert d(space, 0, 2) < 0.5 * d(space, 0, 3), space
    assert d("colour", 0, 2) > 3 * d("colour", 0, 1)
