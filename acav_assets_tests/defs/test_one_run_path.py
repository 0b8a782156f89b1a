"""One data-version story for every door: work automation did on an instance is fresh for
``acav curate`` on it, and work ``acav curate`` did is fresh for automation — the jobs and
sensors evaluated for real against the instance the CLI records in. Before: the CLI tagged
its own data versions and daemon runs got Dagster's, so ``acav curate`` after the daemon redid
every batch and re-selected."""

from __future__ import annotations

import dagster as dg
import pytest
from dagster._core.definitions.data_version import StaleStatus
from dagster._utils.test.data_versions import get_stale_status_resolver

from acav_assets.cli import main as acav_main
from acav_assets.core.generators.demo import write_demo_videos
from acav_assets.core.media.landing import READY_MARKER
from acav_assets.core.warehouse.tables import Warehouse
from acav_assets.defs import defs
from acav_assets.defs.definitions import ASSETS, CHECKS
from acav_assets.defs.features import cluster_assignments, fit_when_missing, refit_job
from acav_assets.defs.ingest import ingest_job, landing_sensor
from acav_assets.defs.platform.resources import LandingResource, WarehouseResource
from acav_assets.defs.runner import resources_for

pytestmark = pytest.mark.slow  # end to end through Dagster (a quick loop: -m 'not slow')

QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
KEYS = ["videos", "clips", "clip_embeddings", "cluster_centroids", "cluster_assignments", "curated_subset"]


@pytest.fixture
def area(tmp_path, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    landing, wh = tmp_path / "landing", tmp_path / "wh"
    write_demo_videos(landing / "a", 10, seed=31, duration_s=(5, 8), size=(96, 64))
    write_demo_videos(landing / "b", 8, seed=32, duration_s=(5, 8), size=(96, 64))
    for b in ("a", "b"):
        (landing / b / READY_MARKER).write_text("")  # complete: the sensor takes them at once
    home = wh / "_dagster"  # where `acav curate --warehouse wh` records its runs
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return landing, wh, dg.DagsterInstance.from_config(str(home))


def _stale(instance) -> dict[str, str]:
    r = get_stale_status_resolver(instance, ASSETS)
    parts = instance.get_dynamic_partitions("batches")
    out = {}
    for k in KEYS:
        key = dg.AssetKey(k)
        statuses = (
            {r.get_status(key, p) for p in parts}
            if k not in ("cluster_centroids", "curated_subset")
            else {r.get_status(key)}
        )
        out[k] = "fresh" if statuses == {StaleStatus.FRESH} else str(sorted(s.value for s in statuses))
    return out


def test_work_automation_did_is_fresh_for_acav_curate(area):
    landing, wh, instance = area
    res = resources_for(str(landing), str(wh))
    jobs = dg.Definitions(assets=ASSETS, asset_checks=CHECKS, jobs=[ingest_job, refit_job], resources=res)
    ctx = dg.build_sensor_context(
        instance=instance,
        resources={"landing": LandingResource(root=str(landing)), "warehouse": WarehouseResource(root=str(wh))},
    )
    sensor = landing_sensor(ctx)  # what the daemon does: the sensor adds the batches and requests their ingest
    instance.add_dynamic_partitions(
        "batches", [k for r in sensor.dynamic_partitions_requests for k in r.partition_keys]
    )
    ingested = [
        jobs.resolve_job_def(ingest_job.name).execute_in_process(
            partition_key=r.partition_key, instance=instance, run_config=QUIET
        )
        for r in sensor.run_requests
    ]
    assert sorted(r.partition_key for r in sensor.run_requests) == ["a", "b"]
    fit = fit_when_missing(
        dg.build_run_status_sensor_context(
            sensor_name=fit_when_missing.name,
            dagster_instance=instance,
            dagster_run=instance.get_run_by_id(ingested[-1].run_id),
            dagster_event=ingested[-1].get_run_success_event(),
            resources={"warehouse": res["warehouse"]},
        )
    )
    assert isinstance(fit, dg.RunRequest)
    jobs.resolve_job_def(refit_job.name).execute_in_process(instance=instance, run_config=QUIET)
    for b in ("a", "b"):  # what the automation conditions request next, with Dagster's default run config
        dg.materialize(
            [*ASSETS, *CHECKS],
            selection=[cluster_assignments],
            partition_key=b,
            instance=instance,
            resources=res,
            run_config=QUIET,
        )
    dg.materialize(
        [*ASSETS, *CHECKS],
        selection=["curated_subset", "selection_lineage"],
        instance=instance,
        resources=res,
        run_config=QUIET,
    )
    assert _stale(instance) == dict.fromkeys(KEYS, "fresh")
    runs = len(instance.get_runs())

    assert acav_main(["curate", str(landing), "--warehouse", str(wh)]) == 0
    assert len(instance.get_runs()) == runs  # nothing redone: every step was up to date

    # a batch that lands once the centroids exist, the only work: one run from its files to the
    # subset (ingest_and_select), and automation has nothing left to do
    write_demo_videos(landing / "c", 6, seed=33, duration_s=(5, 8), size=(96, 64))
    (landing / "c" / READY_MARKER).write_text("")
    before = Warehouse(str(wh)).read("curated_subset")
    resources = {"landing": LandingResource(root=str(landing)), "warehouse": WarehouseResource(root=str(wh))}
    sensor = landing_sensor(dg.build_sensor_context(instance=instance, cursor=None, resources=resources))
    assert [(r.partition_key, r.job_name) for r in sensor.run_requests] == [("c", "ingest_and_select")]
    instance.add_dynamic_partitions("batches", ["c"])
    cursor = dg.evaluate_automation_conditions(defs=defs, instance=instance).cursor  # the tick before
    result = defs.resolve_job_def("ingest_and_select").execute_in_process(
        partition_key="c", instance=instance, run_config=QUIET, resources=res
    )
    assert {e.asset_key.path[-1] for e in result.get_asset_materialization_events()} == {
        "videos",
        "clips",
        "clip_embeddings",
        "clip_sync",
        "cluster_assignments",
        "curated_subset",
        "selection_lineage",
    }
    after = Warehouse(str(wh)).read("curated_subset").sort("rank")
    assert after.head(before.height)["clip_id"].to_list() == before.sort("rank")["clip_id"].to_list()  # warm start
    assert "c" in set(after["batch"])
    requested = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
    assert requested.total_requested == 0, requested  # nothing left: the run selected
    assert _stale(instance) == dict.fromkeys(KEYS, "fresh")
    # while that run's kind of work is under way, a batch that lands is ingested alone and
    # automation selects it
    write_demo_videos(landing / "d", 6, seed=34, duration_s=(5, 8), size=(96, 64))
    (landing / "d" / READY_MARKER).write_text("")
    busy = instance.create_run_for_job(
        defs.resolve_job_def("select_subset"), run_config=QUIET, status=dg.DagsterRunStatus.STARTED
    )
    sensor = landing_sensor(dg.build_sensor_context(instance=instance, cursor=sensor.cursor, resources=resources))
    assert [(r.partition_key, r.job_name) for r in sensor.run_requests] == [("d", "ingest_batch")]
    instance.report_run_canceled(busy)


def test_work_acav_curate_did_is_fresh_for_automation(area):
    landing, wh, instance = area
    assert acav_main(["curate", str(landing), "--warehouse", str(wh)]) == 0
    runs = len(instance.get_runs())
    res = resources_for(str(landing), str(wh))
    assert _stale(instance) == dict.fromkeys(KEYS, "fresh")  # what the UI shows: nothing Unsynced
    ctx = dg.build_sensor_context(
        instance=instance,
        resources={"landing": LandingResource(root=str(landing)), "warehouse": WarehouseResource(root=str(wh))},
    )
    assert not landing_sensor(ctx).run_requests  # already ingested with the files they hold
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    assert result.total_requested == 0
    last = instance.get_runs(limit=1)[0]
    success = next(e.dagster_event for e in instance.all_logs(last.run_id, of_type=dg.DagsterEventType.RUN_SUCCESS))
    skip = fit_when_missing(
        dg.build_run_status_sensor_context(
            sensor_name=fit_when_missing.name,
            dagster_instance=instance,
            dagster_run=last,
            dagster_event=success,
            resources={"warehouse": res["warehouse"]},
        )
    )
    assert isinstance(skip, dg.SkipReason)
    # and back: the CLI again runs nothing
    assert acav_main(["curate", str(landing), "--warehouse", str(wh)]) == 0
    assert len(instance.get_runs()) == runs
