"""Lineage: explanations, report, run records and time travel, on a real curated warehouse."""

from __future__ import annotations

import struct

import dagster as dg
import numpy as np
import polars as pl
import pytest

from acav_assets.cli import main as acav_main
from acav_assets.core.generators.demo import write_demo_videos
from acav_assets.core.selection import marginal_effects, mean_mutual_information, resolve_pairs
from acav_assets.core.stages.report import explain_clip, latest_run, run_pair_weights, subset_as_of, write_report
from acav_assets.core.warehouse.tables import Warehouse
from acav_assets.defs.definitions import ASSETS
from acav_assets.defs.runner import curate_landing, resources_for

pytestmark = pytest.mark.slow  # end to end through Dagster (a quick loop: -m 'not slow')


@pytest.fixture(scope="module")
def reselected(tmp_path_factory):
    base = tmp_path_factory.mktemp("lineage")
    landing = base / "landing"
    write_demo_videos(landing / "batch_x", 24, seed=41)
    instance = dg.DagsterInstance.ephemeral()
    wh_root = str(base / "warehouse")
    curate_landing(
        str(landing),
        wh_root,
        instance=instance,
        log_level="WARNING",
        run_config={"ops": {"curated_subset": {"config": {"budget": 0.25}}}},
    )
    wh = Warehouse(wh_root)
    first = wh.read("curated_subset").sort("rank")
    first_version = wh.version("curated_subset")
    dg.materialize(
        ASSETS,
        selection=["curated_subset", "selection_lineage"],
        instance=instance,
        resources=resources_for(str(landing), wh_root),
        run_config={"ops": {"curated_subset": {"config": {"budget": 0.5}}}},
    )
    return base, wh, first, first_version


def _labels(wh, run):
    ids = run["clustering_ids"]
    wide = (
        wh.read("cluster_assignments")
        .filter(pl.col("clustering_id").is_in(ids))
        .pivot(on="clustering_id", index="clip_id", values="cluster")
        .sort("clip_id")
    )
    return wide["clip_id"].to_list(), wide.select(ids).to_numpy()


def test_runs_are_recorded_with_parameters_and_inputs(reselected):
    _, wh, first, _ = reselected
    runs = wh.read("selection_runs").sort("created_at")
    assert runs.height == 2
    assert [r["size"] for r in runs.iter_rows(named=True)] == [6, 12]
    run = latest_run(wh)
    assert run["batches"] == ["batch_x"] and len(run["clustering_ids"]) == 10
    assert '"budget": 0.5' in run["params"]
    cents = set(wh.read("cluster_centroids")["clustering_id"].unique().to_list())
    assert set(run["clustering_ids"]) == cents  # the centroid versions the run used


def test_explain_selected_and_unselected_clips(reselected):
    _, wh, _, _ = reselected
    run = latest_run(wh)
    subset = wh.read("curated_subset").sort("rank")
    clip_ids, labels = _labels(wh, run)
    index = {c: i for i, c in enumerate(clip_ids)}
    modal = [fs.split("/")[0] for fs in run["feature_spaces"]]
    pairs = resolve_pairs("bipartite", 10, modal)
    weights = run_pair_weights(run)  # explain speaks of the objective the selection maximised
    assert weights is not None and weights.size == len(pairs) and weights.sum() > 0
    rows = [index[c] for c in subset["clip_id"]]
    objective = mean_mutual_information(labels, rows, pairing=pairs, pair_weights=weights)

    chosen = subset.row(3, named=True)
    facts = explain_clip(wh, chosen["clip_id"])
    assert facts["selected"] and facts["rank"] == 4 and facts["step"] == chosen["step"]
    assert facts["gain_when_chosen"] == pytest.approx(chosen["gain"])
    without = mean_mutual_information(
        labels, [r for r in rows if r != index[chosen["clip_id"]]], pairing=pairs, pair_weights=weights
    )
    assert facts["loss_if_removed_now"] == pytest.approx(objective - without, abs=1e-9)
    assert (
        facts["clusters"]["visual/pixels/colour"]
        == chosen["clusters"][run["feature_spaces"].index("visual/pixels/colour")]
    )
    assert facts["cells"] and facts["cells"][0]["selected_in_cell"] >= 1

    other = next(c for c in clip_ids if c not in set(subset["clip_id"]))
    facts = explain_clip(wh, other)
    assert not facts["selected"]
    with_it = mean_mutual_information(labels, rows + [index[other]], pairing=pairs, pair_weights=weights)
    assert facts["gain_if_added_now"] == pytest.approx(with_it - objective, abs=1e-9)
    with pytest.raises(ValueError, match="no clip"):
        explain_clip(wh, "nope")


def test_as_of_returns_the_earlier_subset(reselected, capsys):
    base, wh, first, first_version = reselected
    old, _ = subset_as_of(wh, first_version)
    assert old["clip_id"].to_list() == first["clip_id"].to_list() and old.height == 6
    assert wh.read("curated_subset").height == 12
    assert (
        acav_main(
            [
                "subset",
                "--warehouse",
                str(base / "warehouse"),
                "--as-of",
                str(first_version),
                "--csv",
                str(base / "old.csv"),
            ]
        )
        == 0
    )
    assert pl.read_csv(base / "old.csv")["clip_id"].to_list() == first["clip_id"].to_list()
    with pytest.raises(ValueError, match="versions 0"):
        subset_as_of(wh, 999)
    assert acav_main(["subset", "--warehouse", str(base / "warehouse"), "--as-of", "yesterday"]) == 2
    assert "ISO time" in capsys.readouterr().err


def test_report_and_explain_commands(reselected, capsys):
    base, wh, _, _ = reselected
    paths = write_report(wh, base / "report")
    png = open(paths["heatmap"], "rb").read()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", png[16:24])
    assert w >= 64 and h >= 64
    text = open(paths["report"]).read()
    assert "Clustering pairs (what the objective averages, by weight)" in text and "batch_x" in text
    assert "Pair weighting: ami" in text and "| pool score | weight |" in text
    clip = wh.read("curated_subset").sort("rank")["clip_id"][0]
    assert acav_main(["explain", clip, "--warehouse", str(base / "warehouse")]) == 0
    assert "SELECTED at rank 1" in capsys.readouterr().out


def test_marginal_effects_match_brute_force():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, (120, 4))
    subset = rng.choice(120, 30, replace=False)
    others = np.setdiff1d(np.arange(120), subset)[:10]
    pairs = [(0, 2), (1, 3), (0, 3)]
    obj, loss, gain = marginal_effects(labels, subset, others, pairing=pairs)
    assert obj == pytest.approx(mean_mutual_information(labels, subset, pairing=pairs))
    for i, r in enumerate(subset[:5]):
        assert loss[i] == pytest.approx(obj - mean_mutual_information(labels, subset[subset != r], pairing=pairs))
    for j, r in enumerate(others):
        assert gain[j] == pytest.approx(mean_mutual_information(labels, np.r_[subset, r], pairing=pairs) - obj)
