"""A small version of the correspondence-retrieval benchmark: MI selection must beat random."""

from __future__ import annotations

import numpy as np


from acav_assets.core.evaluation.correspondence import contrastive_scores, pca_cosine_scores, run_planted, run_videos


def test_mi_selection_beats_random_on_planted_assignments():
    rows = {r.method: r for r in run_planted(n=3000, seeds=2, log=lambda m: None)}
    assert rows["random"].mean < 0.55
    assert rows["MI bipartite, + refinement"].mean > rows["random"].mean + 0.15
    assert rows["MI bipartite, reference greedy"].mean > rows["MI combination, reference greedy"].mean


def test_mi_selection_beats_random_end_to_end(tmp_path):
    rows = {r.method: r for r in run_videos(n_videos=80, seeds=1, ks=(0,), n_clean=40, log=lambda m: None,
                                            workdir=str(tmp_path))}
    mi = rows[next(m for m in rows if m.startswith("MI bipartite, k=auto") and "reference" not in m)]
    assert mi.mean > rows["random"].mean + 0.2, {k: v.mean for k, v in rows.items()}


def test_contrastive_baseline_learns_an_alignment():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(400, 4))
    a = np.c_[z @ rng.normal(size=(4, 12)), rng.normal(size=(400, 4))]
    v = np.c_[z @ rng.normal(size=(4, 10)), rng.normal(size=(400, 4))]
    shuffled = rng.permutation(200)
    a_test, v_test = a[200:], v[200:].copy()
    v_test[:100] = v_test[shuffled[:100] % 100 + 100]  # first half: picture from another clip
    scores = contrastive_scores(a[:200], v[:200], a_test, v_test, steps=200)
    top = np.argsort(-scores)[:100]
    assert (top >= 100).mean() > 0.9  # the aligned half ranks first
    pca = pca_cosine_scores(a[:200], v[:200], a_test, v_test)
    assert pca.shape == (200,) and np.isfinite(pca).all()
