"""Label-free pair weighting and the weighted objective."""

from __future__ import annotations

import numpy as np
import pytest

from acav_assets.core.generators.planted import planted_assignments, precision
from acav_assets.core.selection import (
    marginal_effects,
    mean_mutual_information,
    mutual_information,
    pair_weights,
    resolve_pairs,
    select_subset,
)
from acav_assets.core.selection.weighting import space_summary


def _with_noise_spaces(n: int, seed: int, noisy: int):
    """Planted labels whose first ``noisy`` layers of each modality describe a nuisance unrelated
    to the class (their own 32 random clusters), like a layer that encodes position or codec."""
    pa = planted_assignments(n, seed=seed)
    labels = pa.labels.copy()
    rng = np.random.default_rng(1000 + seed)
    for c in list(range(noisy)) + list(range(5, 5 + noisy)):
        labels[:, c] = rng.integers(0, 32, n)
    return pa, labels


def test_weights_drop_exactly_the_pairs_without_correspondence():
    pa, labels = _with_noise_spaces(20_000, seed=0, noisy=3)
    pairs = resolve_pairs("bipartite", 10, pa.modalities)
    w = pair_weights(labels, pairs)
    informative = {(a, v) for a in (3, 4) for v in (8, 9)}
    assert {pairs[p] for p in np.flatnonzero(w.weights)} == informative
    assert set(np.unique(w.weights)) == {0.0, 1.0} and not w.note
    noise = [p for p, pr in enumerate(pairs) if pr not in informative]
    assert np.abs(w.scores[noise]).max() < 0.002 < w.scores[w.weights > 0].min()
    assert (w.z[w.weights > 0] > 10).all()
    records = w.to_records(pairs, [f"s{i}" for i in range(10)])
    assert records[0]["a"] == "s0" and {"score", "z", "weight"} <= set(records[0])


@pytest.mark.parametrize("seed", [0, 1])
def test_weighting_beats_the_plain_mean_when_some_spaces_carry_nothing(seed):
    pa, labels = _with_noise_spaces(20_000, seed=seed, noisy=4)
    pairs = resolve_pairs("bipartite", 10, pa.modalities)
    w = pair_weights(labels, pairs)
    plain = select_subset(labels, 0.5, modalities=pa.modalities, seed=seed, refine=10)
    weighted = select_subset(labels, 0.5, modalities=pa.modalities, seed=seed, refine=10, pair_weights=w.weights)
    assert precision(weighted.indices, pa.matched) > precision(plain.indices, pa.matched) + 0.04


def test_weighting_loses_nothing_when_every_space_is_informative():
    pa = planted_assignments(20_000, seed=3)
    pairs = resolve_pairs("bipartite", 10, pa.modalities)
    w = pair_weights(pa.labels, pairs)
    assert w.weights.sum() >= 15  # most pairs kept
    plain = select_subset(pa.labels, 0.5, modalities=pa.modalities, seed=3, refine=10)
    weighted = select_subset(pa.labels, 0.5, modalities=pa.modalities, seed=3, refine=10, pair_weights=w.weights)
    assert precision(weighted.indices, pa.matched) >= precision(plain.indices, pa.matched) - 0.02


def test_no_correspondence_anywhere_falls_back_to_the_plain_mean():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 8, (4_000, 4))
    pairs = resolve_pairs("bipartite", 4, ["audio", "audio", "visual", "visual"])
    w = pair_weights(labels, pairs)
    assert (w.weights == 1).all() and "plain mean" in w.note
    assert (pair_weights(labels, pairs, rule="plain").weights == 1).all()
    with pytest.raises(ValueError, match="unknown pair weighting"):
        pair_weights(labels, pairs, rule="magic")


def test_weighted_objective_is_the_weighted_mean_of_pair_mi_and_matches_the_selector():
    pa = planted_assignments(3_000, seed=7)
    labels = pa.labels
    pairs = resolve_pairs("bipartite", 10, pa.modalities)
    rng = np.random.default_rng(0)
    weights = rng.random(len(pairs))
    weights[[0, 5, 11]] = 0.0
    sel = select_subset(labels, 300, modalities=pa.modalities, seed=1, pair_weights=weights, refine=5)
    rows = labels[sel.indices]

    def pair_mi(i, j):
        t = np.zeros((labels[:, i].max() + 1, labels[:, j].max() + 1))
        np.add.at(t, (rows[:, i], rows[:, j]), 1)
        return mutual_information(t)

    brute = sum(w * pair_mi(i, j) for w, (i, j) in zip(weights, pairs)) / weights.sum()
    assert sel.objective == pytest.approx(brute, rel=1e-9)
    assert mean_mutual_information(
        labels, sel.indices, modalities=pa.modalities, pair_weights=weights
    ) == pytest.approx(brute, rel=1e-9)
    assert sel.objectives[-1] == pytest.approx(brute, rel=1e-6)  # the kernel's running value agrees
    assert np.allclose(sel.pair_weights, weights)
    assert sel.pair_mi[0] == pytest.approx(pair_mi(*pairs[0]))  # reported for dropped pairs too
    # marginal effects speak of the same weighted objective
    objective, loss, gain = marginal_effects(
        labels, sel.indices[:50], [int(sel.indices[60])], modalities=pa.modalities, pair_weights=weights
    )
    rest = mean_mutual_information(labels, sel.indices[1:50], modalities=pa.modalities, pair_weights=weights)
    assert loss[0] == pytest.approx(objective - rest, abs=1e-9)


def test_unit_weights_reproduce_the_reference_plain_mean_exactly():
    pa = planted_assignments(5_000, seed=2)
    plain = select_subset(pa.labels, 0.2, modalities=pa.modalities, seed=4)
    ones = select_subset(pa.labels, 0.2, modalities=pa.modalities, seed=4, pair_weights=np.ones(25))
    assert np.array_equal(plain.indices, ones.indices) and plain.objective == pytest.approx(ones.objective)


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.ones(3), "3 weights for 25 pairs"),
        (-np.ones(25), "non-negative"),
        (np.zeros(25), "all zero"),
        (np.full(25, np.nan), "finite"),
    ],
)
def test_bad_pair_weights_are_refused_clearly(bad, match):
    pa = planted_assignments(500, seed=0)
    with pytest.raises(ValueError, match=match):
        select_subset(pa.labels, 10, modalities=pa.modalities, pair_weights=bad)


def test_space_summary_shares_the_weight_between_the_spaces_of_counted_pairs():
    records = [
        {"a": "audio/x", "b": "visual/p", "score": 0.5, "weight": 1.0},
        {"a": "audio/x", "b": "visual/q", "score": 0.01, "weight": 0.0},
        {"a": "audio/y", "b": "visual/p", "score": 0.4, "weight": 1.0},
    ]
    rows = {r["feature_space"]: r for r in space_summary(records)}
    assert rows["visual/p"]["weight_share"] == pytest.approx(0.5) and rows["audio/x"]["weight_share"] == 0.25
    assert rows["visual/q"]["weight_share"] == 0 and rows["visual/q"]["best_score"] == 0.01
    assert space_summary(records)[0]["feature_space"] == "visual/p"


def test_within_modality_pairs_do_not_raise_the_bar_for_cross_modal_pairs():
    """With ``combination`` pairing, layers of one modality share much more information than audio
    and picture do; the keep bar is set per kind of pair, so cross-modal pairs still count."""
    pa = planted_assignments(5_000, seed=0)
    pairs = resolve_pairs("combination", 10, pa.modalities)
    cross = [p for p, (i, j) in enumerate(pairs) if pa.modalities[i] != pa.modalities[j]]
    blind = pair_weights(pa.labels, pairs)  # one bar for all: the cross-modal pairs fall under it
    assert blind.weights[cross].sum() == 0
    w = pair_weights(pa.labels, pairs, modalities=pa.modalities)
    assert w.weights[cross].sum() >= 10
    plain = select_subset(pa.labels, 0.2, pairing=pairs, seed=0)
    weighted = select_subset(pa.labels, 0.2, pairing=pairs, seed=0, pair_weights=w.weights)
    assert precision(weighted.indices, pa.matched) >= precision(plain.indices, pa.matched) - 0.03


def test_a_pool_too_small_to_judge_keeps_every_pair():
    pa = planted_assignments(60, seed=0)
    pairs = resolve_pairs("bipartite", 10, pa.modalities)
    w = pair_weights(pa.labels, pairs)
    assert (w.weights == 1).all() and "too small" in w.note and np.isnan(w.scores).all()
    assert w.to_records(pairs, [str(i) for i in range(10)])[0]["score"] is None
