"""Tests of the batch-greedy MI selector against independent, brute-force computations."""

from __future__ import annotations

import itertools
import math
from collections import Counter

import numpy as np
import pytest

from acav_assets.core.generators.planted import planted_assignments, precision
from acav_assets.core.selection import (
    DEFAULT_PAIRING,
    mean_mutual_information,
    resolve_pairs,
    select_subset,
)


def brute_mi(x, y) -> float:
    """MI by its definition, Σ p(x,y) log p(x,y) / (p(x) p(y)), in plain Python."""
    n = len(x)
    if n == 0:
        return 0.0
    pxy = Counter(zip(x, y))
    px, py = Counter(x), Counter(y)
    return sum(c / n * math.log((c / n) / ((px[a] / n) * (py[b] / n))) for (a, b), c in pxy.items())


def brute_objective(labels, rows, pairs) -> float:
    rows = list(rows)
    return sum(brute_mi([labels[r, i] for r in rows], [labels[r, j] for r in rows]) for i, j in pairs) / len(pairs)


def random_labels(rng, n, ks):
    return np.stack([rng.integers(0, k, n) for k in ks], axis=1)


@pytest.mark.parametrize("seed", range(6))
def test_incremental_gains_equal_brute_force_differences(seed):
    rng = np.random.default_rng(seed)
    ks = rng.integers(2, 7, size=5)  # clusterings with different numbers of clusters
    labels = random_labels(rng, 80, ks)
    modalities = ["audio", "audio", "visual", "visual", "visual"]
    pairing = ["combination", "bipartite", [(0, 3), (4, 1), (2, 0)]][seed % 3]
    pairs = resolve_pairs(pairing, 5, modalities)
    initial = rng.choice(80, size=seed % 3 * 5, replace=False)
    sel = select_subset(
        labels, 30, pairing=pairing, modalities=modalities, batch_size=6, take=2, seed=seed, initial=initial
    )
    assert len(sel) == 30
    assert sel.initial_objective == pytest.approx(brute_objective(labels, initial, pairs), abs=1e-9)
    chosen = list(initial)
    before = brute_objective(labels, chosen, pairs)
    for t, idx in enumerate(sel.indices):
        chosen.append(idx)
        after = brute_objective(labels, chosen, pairs)
        assert sel.gains[t] == pytest.approx(after - before, abs=1e-9)
        assert sel.objectives[t] == pytest.approx(after, abs=1e-9)
        before = after
    assert sel.objective == pytest.approx(before, abs=1e-9)
    assert sel.pair_mi == pytest.approx(
        [brute_mi(labels[chosen, i].tolist(), labels[chosen, j].tolist()) for i, j in pairs], abs=1e-9
    )


def test_objective_equals_independent_mi_on_planted_data():
    pa = planted_assignments(3000, seed=3)
    for mode in ("combination", "bipartite", "diagonal"):
        sel = select_subset(pa.labels, 0.2, pairing=mode, modalities=pa.modalities, seed=1)
        pairs = resolve_pairs(mode, pa.labels.shape[1], pa.modalities)
        expected = brute_objective(pa.labels, sel.indices, pairs)
        assert sel.objective == pytest.approx(expected, abs=1e-9)
        assert mean_mutual_information(pa.labels, sel.indices, pairing=mode, modalities=pa.modalities) == pytest.approx(
            expected, abs=1e-9
        )
        # the running objective of the compiled loop agrees with the exact one at the end
        assert sel.objectives[-1] == pytest.approx(sel.objective, abs=1e-9)


@pytest.mark.parametrize("seed", range(5))
def test_exact_greedy_picks_a_best_clip_at_every_step(seed):
    rng = np.random.default_rng(100 + seed)
    labels = random_labels(rng, 25, [3, 4, 3, 5])
    pairs = resolve_pairs("combination", 4)
    sel = select_subset(labels, 12, pairing="combination", batch_size=None, take=1, seed=seed)
    chosen: list[int] = []
    for t, idx in enumerate(sel.indices):
        base = brute_objective(labels, chosen, pairs) if chosen else 0.0
        gains = {r: brute_objective(labels, chosen + [r], pairs) - base for r in range(25) if r not in chosen}
        best = max(gains.values())
        assert gains[int(idx)] == pytest.approx(best, abs=1e-9), f"step {t} chose a sub-optimal clip"
        # ties go to the lowest index, as a brute-force argmax over rows in order would
        assert int(idx) == min(r for r, g in gains.items() if g >= best - 1e-12)
        chosen.append(int(idx))


@pytest.mark.parametrize("seed", range(3))
def test_exact_greedy_matches_brute_force_greedy(seed):
    rng = np.random.default_rng(7 + seed)
    labels = random_labels(rng, 18, [4, 5, 6])
    pairs = resolve_pairs("combination", 3)
    chosen: list[int] = []
    for _ in range(12):  # brute-force greedy; equal gains (to rounding) go to the lowest index
        gains = {r: brute_objective(labels, chosen + [r], pairs) for r in range(18) if r not in chosen}
        best = max(gains.values())
        chosen.append(min(r for r, g in gains.items() if g >= best - 1e-12))
    sel = select_subset(labels, 12, pairing="combination", batch_size=None, take=1)
    assert sel.indices.tolist() == chosen


@pytest.mark.parametrize("batch_size,take", [(8, 4), (None, 1), (5, 5)])
def test_warm_start_equals_continuing_a_run(batch_size, take):
    pa = planted_assignments(400, seed=5)
    kw = dict(pairing="bipartite", modalities=pa.modalities, batch_size=batch_size, take=take, seed=11)
    full = select_subset(pa.labels, 60, **kw)
    prefix = full.indices[:20]  # a step boundary for every take above
    rest = select_subset(pa.labels, 40, initial=prefix, **kw)
    assert rest.indices.tolist() == full.indices[20:].tolist()
    assert rest.objective == pytest.approx(full.objective, abs=1e-12)
    assert rest.initial_objective == pytest.approx(full.objectives[19], abs=1e-9)
    assert not set(rest.indices.tolist()) & set(prefix.tolist())


def test_warm_start_with_candidates_keeps_old_selection_and_picks_only_new_clips():
    pa = planted_assignments(1000, seed=8)
    old, new = np.arange(600), np.arange(600, 1000)
    first = select_subset(pa.labels, 0.2, modalities=pa.modalities, candidates=old, seed=1)
    assert set(first.indices.tolist()) <= set(old.tolist())
    second = select_subset(pa.labels, 0.2, modalities=pa.modalities, candidates=new, initial=first.indices, seed=1)
    assert len(second) == 80  # 20% of the new batch
    assert set(second.indices.tolist()) <= set(new.tolist())
    assert second.initial_objective == pytest.approx(first.objective, abs=1e-9)
    assert second.n_initial == len(first) and second.pool_size == 400


def test_planted_correspondence_is_found():
    pa = planted_assignments(20_000, seed=2)
    sel = select_subset(pa.labels, 0.2, modalities=pa.modalities, seed=0)
    share = pa.matched.mean()
    got = precision(sel.indices, pa.matched)
    assert 0.45 < share < 0.55
    assert got >= 0.7, f"precision {got:.3f} is not far above the matched share {share:.3f}"
    rng = np.random.default_rng(0)
    random_obj = mean_mutual_information(
        pa.labels, rng.choice(20_000, len(sel), replace=False), modalities=pa.modalities
    )
    assert sel.objective > random_obj + 0.1


def test_default_pairing_beats_combination_on_planted_data():
    pa = planted_assignments(20_000, seed=4)
    default = select_subset(pa.labels, 0.2, modalities=pa.modalities, seed=0)
    comb = select_subset(pa.labels, 0.2, pairing="combination", seed=0)
    assert DEFAULT_PAIRING == "bipartite"
    assert precision(default.indices, pa.matched) > precision(comb.indices, pa.matched) + 0.05


def test_deterministic_per_seed_and_budget_share():
    pa = planted_assignments(2000, seed=1)
    a = select_subset(pa.labels, 0.25, modalities=pa.modalities, seed=3)
    b = select_subset(pa.labels, 0.25, modalities=pa.modalities, seed=3)
    c = select_subset(pa.labels, 0.25, modalities=pa.modalities, seed=4)
    assert len(a) == 500
    assert a.indices.tolist() == b.indices.tolist()
    assert a.indices.tolist() != c.indices.tolist()
    assert len(np.unique(a.indices)) == len(a)
    assert (np.diff(a.steps) >= 0).all() and a.steps[-1] == 124  # 500 clips, 4 per step
    assert len(a.step_objectives) == 125 and a.step_objectives[-1] == a.objectives[-1]


def test_whole_pool_budget_selects_every_clip_once():
    pa = planted_assignments(103, seed=1)
    sel = select_subset(pa.labels, 1.0, modalities=pa.modalities, batch_size=20, take=4)
    assert sorted(sel.indices.tolist()) == list(range(103))
    assert sel.objective == pytest.approx(mean_mutual_information(pa.labels, modalities=pa.modalities))


def test_sparse_label_ids_are_remapped():
    rng = np.random.default_rng(0)
    dense = random_labels(rng, 300, [5, 6, 7])
    sparse = dense.astype(np.int64) * 1_000_003 + 17  # hashed ids, same partition
    a = select_subset(dense, 50, pairing="combination", seed=2)
    b = select_subset(sparse, 50, pairing="combination", seed=2)
    assert a.indices.tolist() == b.indices.tolist()
    assert a.objective == pytest.approx(b.objective)


def test_progress_is_reported():
    pa = planted_assignments(1000, seed=1)
    seen = []
    select_subset(pa.labels, 100, modalities=pa.modalities, progress=lambda d, t: seen.append((d, t)))
    assert seen and seen[-1] == (100, 100)


def test_zero_budget_gives_empty_selection():
    pa = planted_assignments(50, seed=1)
    sel = select_subset(pa.labels, 0, modalities=pa.modalities)
    assert len(sel) == 0 and sel.objective == 0.0


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(budget=101), "larger than the pool"),
        (dict(budget=-1), "must not be negative"),
        (dict(budget=1.5), r"in \(0, 1\]"),
        (dict(budget=0.0), r"in \(0, 1\]"),
        (dict(budget="10"), "budget must be"),
        (dict(pairing="diagnal"), "unknown pairing"),
        (dict(pairing=[(0, 0)]), "with itself"),
        (dict(pairing=[(0, 9)]), "outside"),
        (dict(pairing=[(0, 1), (1, 0)]), "twice"),
        (dict(modalities=["audio", "visual"]), "2 labels for 4"),
        (dict(modalities=["audio", "sound", "visual", "visual"]), "'audio' or 'visual'"),
        (dict(modalities=None), "needs `modalities`"),
        (dict(pairing="diagonal", modalities=["audio", "visual", "visual", "visual"]), "as many audio"),
        (dict(take=5, batch_size=4), "cannot exceed"),
        (dict(take=0), "take must be"),
        (dict(batch_size=0), "batch_size must be"),
        (dict(seed=-1), "seed must be"),
        (dict(initial=[0, 0]), "duplicate"),
        (dict(initial=[100]), "outside"),
        (dict(candidates=[[1, 2]]), "1-D"),
        (dict(candidates=[0, 1], budget=3), "larger than the pool of 2"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, message):
    labels = np.random.default_rng(0).integers(0, 4, (100, 4))
    args = dict(budget=10, modalities=["audio", "audio", "visual", "visual"], pairing="bipartite")
    args.update(kwargs)
    budget = args.pop("budget")
    with pytest.raises(ValueError, match=message):
        select_subset(labels, budget, **args)


@pytest.mark.parametrize(
    "labels,message",
    [
        (np.array([[0, 1], [-1, 2]]), "negative"),
        (np.zeros((3, 2), dtype=float), "integer"),
        (np.zeros(5, dtype=int), "2-D"),
        (np.zeros((0, 3), dtype=int), "no clips"),
        (np.zeros((4, 1), dtype=int), "no pair"),
    ],
)
def test_bad_assignments_raise_clear_errors(labels, message):
    with pytest.raises(ValueError, match=message):
        select_subset(labels, 1, pairing="combination")


def test_combination_pairs_count():
    assert len(resolve_pairs("combination", 10)) == 45
    assert len(resolve_pairs("bipartite", 10, ["audio"] * 5 + ["visual"] * 5)) == 25
    assert resolve_pairs("diagonal", 4, ["audio", "visual", "audio", "visual"]) == [(0, 1), (2, 3)]
    assert list(itertools.chain(*resolve_pairs("combination", 3))) == [0, 1, 0, 2, 1, 2]


@pytest.mark.parametrize("seed", range(3))
def test_refinement_raises_the_objective_and_keeps_the_contract(seed):
    rng = np.random.default_rng(seed)
    labels = random_labels(rng, 300, [4, 5, 4, 6])
    modalities = ["audio", "audio", "visual", "visual"]
    pairs = resolve_pairs("bipartite", 4, modalities)
    initial = rng.choice(300, 10, replace=False)
    plain = select_subset(labels, 60, modalities=modalities, seed=seed, initial=initial)
    refined = select_subset(
        labels, 60, modalities=modalities, seed=seed, initial=initial, refine=40, refine_fraction=0.05
    )
    assert refined.refine_rounds >= 1 and refined.refine_swaps >= 1
    assert refined.objective > plain.objective
    assert len(refined) == 60 and len(np.unique(refined.indices)) == 60
    assert not set(refined.indices.tolist()) & set(initial.tolist())  # warm start never swapped out
    assert (np.diff(refined.steps) >= 0).all()
    # gains and objectives are those of the final order, and the objective is exact
    chosen = list(initial)
    before = brute_objective(labels, chosen, pairs)
    for t, idx in enumerate(refined.indices):
        chosen.append(idx)
        after = brute_objective(labels, chosen, pairs)
        assert refined.gains[t] == pytest.approx(after - before, abs=1e-9)
        before = after
    assert refined.objective == pytest.approx(before, abs=1e-9)


def test_refinement_repairs_early_greedy_picks_on_small_pools():
    plain, refined = [], []
    for seed in range(4):
        pa = planted_assignments(400, k=8, n_classes=8, noise=(0.3, 0.1), seed=seed)
        a = select_subset(pa.labels, 0.2, modalities=pa.modalities, seed=seed)
        b = select_subset(pa.labels, 0.2, modalities=pa.modalities, seed=seed, refine=100)
        plain.append(precision(a.indices, pa.matched))
        refined.append(precision(b.indices, pa.matched))
    assert np.mean(refined) > np.mean(plain) + 0.05, (plain, refined)
