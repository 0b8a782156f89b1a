"""The label-free refinement's clip scores: learnt on a selection, never on the truth."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from acav_assets.core.selection import agreement
from acav_assets.core.selection.agreement import cross_fitted_scores


def _pool(n=300, seed=0):
    """Pictures of 6 classes; the sound of a matched clip is a noisy linear image of its
    picture's class, a mismatched clip's sound that of another class."""
    rng = np.random.default_rng(seed)
    cls = rng.integers(0, 6, n)
    matched = rng.random(n) < 0.5
    sound_cls = np.where(matched, cls, (cls + rng.integers(1, 6, n)) % 6)
    centres_v, centres_a = rng.normal(size=(6, 20)), rng.normal(size=(6, 12))
    visual = centres_v[cls] + 0.6 * rng.normal(size=(n, 20))
    audio = centres_a[sound_cls] + 0.6 * rng.normal(size=(n, 12))
    return audio.astype(np.float32), visual.astype(np.float32), matched


def test_a_rough_selection_teaches_scores_that_rank_matched_clips_first():
    audio, visual, matched = _pool()
    rng = np.random.default_rng(1)
    # a selection as MI gives it: mostly matched clips (75% precision), half of the pool
    selected = np.zeros(len(matched), bool)
    selected[rng.choice(np.flatnonzero(matched), 110, replace=False)] = True
    selected[rng.choice(np.flatnonzero(~matched), 37, replace=False)] = True
    scores = cross_fitted_scores(audio, visual, selected, seed=0)
    top = np.argsort(-scores)[: int(matched.sum())]
    assert matched[top].mean() >= matched[selected].mean() + 0.15  # far better than the selection it learnt from (0.75)
    assert np.array_equal(scores, cross_fitted_scores(audio, visual, selected, seed=0))  # deterministic per seed


def test_the_refinement_reads_no_labels():
    """Its only inputs are features and the selection (no truth, no class can be passed in)."""
    params = set(inspect.signature(cross_fitted_scores).parameters) | set(
        inspect.signature(agreement.agreement_scores).parameters
    )
    assert not params & {"matched", "labels", "truth", "classes", "y"}
    with pytest.raises(ValueError, match="at least 10 selected clips"):
        cross_fitted_scores(*_pool(20)[:2], np.ones(20, bool) & (np.arange(20) < 6))
