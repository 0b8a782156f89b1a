"""The warehouse holds its curation's settings: after ``acav curate --budget 0.5``, the run
automation launches for a new batch (Dagster's default run config: no settings given) continues
at budget 0.5 with a warm start, and a setting given explicitly re-selects and says so.
Before: automation ran at the code default 0.2 and re-selected from scratch ("selection
parameters changed (budget)")."""

from __future__ import annotations

import json

import dagster as dg
import pytest

from acav_assets.cli import main as acav_main
from acav_assets.core.generators.demo import write_demo_videos
from acav_assets.core.warehouse.tables import Warehouse
from acav_assets.defs.definitions import ASSETS
from acav_assets.defs.features import clip_embeddings, cluster_assignments
from acav_assets.defs.ingest import clips, videos
from acav_assets.defs.runner import resources_for

pytestmark = pytest.mark.slow  # end to end through Dagster (a quick loop: -m 'not slow')


@pytest.fixture
def held(tmp_path):
    landing = tmp_path / "landing"
    write_demo_videos(landing / "a", 16, seed=21, duration_s=(5, 8), size=(96, 64))
    wh_root = tmp_path / "wh"
    assert acav_main(["curate", str(landing), "--warehouse", str(wh_root), "--budget", "0.5"]) == 0
    wh = Warehouse(str(wh_root))
    first = wh.read("curated_subset").sort("rank")
    write_demo_videos(landing / "b", 10, seed=22, duration_s=(5, 8), size=(96, 64))
    instance = dg.DagsterInstance.from_config(str(wh_root / "_dagster"))  # the instance the CLI recorded in
    instance.add_dynamic_partitions("batches", ["b"])
    res = resources_for(str(landing), str(wh_root))
    quiet = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
    assert dg.materialize(
        ASSETS,
        selection=[videos, clips, clip_embeddings, cluster_assignments],
        partition_key="b",
        instance=instance,
        resources=res,
        run_config=quiet,
    ).success
    return landing, wh, instance, res, first, quiet


def _select(instance, res, run_config):
    result = dg.materialize(
        ASSETS,
        selection=["curated_subset", "selection_lineage"],
        instance=instance,
        resources=res,
        run_config=run_config,
    )
    assert result.success
    meta = result.asset_materializations_for_node("curated_subset")[0].metadata
    logs = [e.message for e in instance.all_logs(result.run_id) if e.message]
    return meta, logs


def test_a_run_that_gives_no_settings_continues_with_the_warehouses(held):
    landing, wh, instance, res, first, quiet = held
    meta, logs = _select(instance, res, quiet)  # what automation launches: no settings given
    assert meta["mode"].value == "incremental"
    now = wh.read("curated_subset").sort("rank")
    assert now.head(first.height)["clip_id"].to_list() == first["clip_id"].to_list()  # every earlier pick kept
    assert now.height == first.height + round(0.5 * 10)  # the new batch at the warehouse's budget, not 0.2
    # the catalog: the table's row count (not the clips this run added), where the table lives
    assert meta["dagster/row_count"].value == now.height and meta["added"].value == round(0.5 * 10)
    assert meta["dagster/table_name"].value == "curated_subset"
    assert meta["dagster/uri"].value == wh.uri("curated_subset")
    # one markdown summary, beside the few numbers worth plotting
    summary = meta["summary"].value
    assert "**incremental** selection" in summary and f"**{now.height}** of" in summary and "| b |" in summary
    assert not {"by_batch", "refine_swaps", "seed_kept", "correspondence_by_space"} & set(meta)
    run = wh.read("selection_runs").sort("created_at").row(-1, named=True)
    assert json.loads(run["params"])["budget"] == 0.5
    assert any("held by the warehouse: budget" in m for m in logs), logs


def test_a_setting_given_explicitly_re_selects_and_says_so(held):
    landing, wh, instance, res, first, quiet = held
    meta, logs = _select(instance, res, {**quiet, "ops": {"curated_subset": {"config": {"budget": 0.25}}}})
    assert meta["mode"].value == "full"
    assert any("selection parameters changed (budget)" in m for m in logs), logs
    assert wh.read("curated_subset").height == round(0.25 * 26)
    # and it is held from now on: the next run that gives nothing keeps 0.25
    meta, logs = _select(instance, res, quiet)
    assert meta["mode"].value == "unchanged"
    assert json.loads(wh.read("selection_runs").sort("created_at").row(-1, named=True)["params"])["budget"] == 0.25
