"""The agreement refinement in the platform: recorded per clip and per run, a warm start keeps
the earlier subset whole, and ``--refinement none`` is the MI selection as before (and says so)."""

from __future__ import annotations

import json

import polars as pl
import pytest

from acav_assets.cli import main as acav_main
from acav_assets.core.generators.demo import write_demo_videos
from acav_assets.core.warehouse.tables import Warehouse

pytestmark = pytest.mark.slow  # end to end through Dagster (a quick loop: -m 'not slow')


@pytest.fixture(scope="module")
def curated(tmp_path_factory):
    base = tmp_path_factory.mktemp("refinement")
    landing, wh_root = base / "landing", base / "wh"
    write_demo_videos(landing / "a", 110, seed=31, duration_s=(5, 7), size=(96, 64))
    assert acav_main(["curate", str(landing), "--warehouse", str(wh_root), "--budget", "0.5"]) == 0
    return landing, wh_root, Warehouse(str(wh_root))


def _run(wh: Warehouse) -> dict:
    return wh.read("selection_runs").sort("created_at").row(-1, named=True)


def test_a_full_selection_records_its_refinement_per_clip_and_per_run(curated, capsys):
    landing, wh_root, wh = curated
    subset = wh.read("curated_subset")
    record = json.loads(_run(wh)["refinement"])
    assert record["rule"] == "agreement" and record["note"] == ""
    assert record["pairs"] and all(
        p["audio"].startswith("audio/") and p["visual"].startswith("visual/") for p in record["pairs"]
    )
    run = _run(wh)
    flagged = wh.read("clip_sync")["out_of_sync"].fill_null(False).sum()  # left out by sync_filter exclude
    assert run["pool_size"] == 110 - flagged and subset.height == round(0.5 * run["pool_size"])
    assert subset["agreement"].null_count() == 0  # every clip scored
    assert set(subset["chosen_by"].unique()) <= {"mi", "agreement"}
    assert (subset["chosen_by"] == "agreement").sum() == record["swaps"]
    entered = subset.filter(pl.col("chosen_by") == "agreement")
    if entered.height:  # a clip exchanged in comes after the kept ones, one step later
        assert entered["rank"].min() > subset.filter(pl.col("chosen_by") == "mi")["rank"].max()
    clip = subset.sort("rank")["clip_id"][0]
    assert acav_main(["explain", clip, "--warehouse", str(wh_root)]) == 0
    out = capsys.readouterr().out
    assert "refinement: agreement" in out and "sound-picture agreement" in out


def test_a_warm_start_keeps_the_earlier_subset_and_scores_only_what_it_adds(curated):
    landing, wh_root, wh = curated
    before = wh.read("curated_subset").sort("rank")
    write_demo_videos(landing / "b", 60, seed=32, duration_s=(5, 7), size=(96, 64))
    assert acav_main(["curate", str(landing), "--warehouse", str(wh_root)]) == 0
    now = wh.read("curated_subset").sort("rank")
    assert json.loads(_run(wh)["params"])["mode"] == "incremental"
    kept = now.head(before.height)
    for column in ("clip_id", "rank", "agreement", "chosen_by"):
        assert kept[column].to_list() == before[column].to_list(), column
    added = now.slice(before.height)
    flagged = wh.read("clip_sync").filter(pl.col("batch") == "b")["out_of_sync"].fill_null(False).sum()
    assert added.height == round(0.5 * (60 - flagged)) and set(added["batch"].unique()) == {"b"}
    # the pool of a warm start is the kept subset and the new clips (about 55 + 60, above the 100 it needs)
    record = json.loads(_run(wh)["refinement"])
    assert record["rule"] == "agreement" and record["note"] == "", record
    assert added["agreement"].null_count() == 0


def test_refinement_none_is_the_mi_selection_and_the_run_says_it_changed(curated, capsys):
    landing, wh_root, wh = curated
    assert acav_main(["curate", str(landing), "--warehouse", str(wh_root), "--refinement", "none"]) == 0
    out = capsys.readouterr().out
    assert "refinement" in out  # the setting given, and the full re-selection it causes, are said
    subset = wh.read("curated_subset")
    assert json.loads(_run(wh)["refinement"]) == {"rule": "none"}
    assert subset["agreement"].null_count() == subset.height
    assert set(subset["chosen_by"].unique()) == {"mi"}
