"""When the centroids are fitted: once when missing (``fit_when_missing``, after the first run that
leaves enough embedded clips to cluster), then by ``refit_schedule`` (daily, 03:00 UTC) once the
pool has grown ``ACAV_REFIT_GROWTH``-fold (default 2) since the fit: centroids fitted on a small
first batch are replaced once more data is in, and a pool that barely grew is not re-labelled (a
refit forces a full re-selection). The centroids are frozen by design and are not shown stale
when a batch arrives."""

import json
import os

import dagster as dg

from acav_assets.defs.platform.resources import WarehouseResource

__all__ = ["assign_job", "fit_when_missing", "refit_due", "refit_job", "refit_schedule"]

refit_job = dg.define_asset_job(
    "refit_centroids",
    selection=dg.AssetSelection.assets("cluster_centroids"),
    description="Refit the k-means centroids on a fresh sample of every batch.",
)
assign_job = dg.define_asset_job(
    "assign_batch",
    selection=dg.AssetSelection.assets("cluster_assignments"),
    description="Assign one batch's clips to the frozen centroids.",
)


def refit_due(wh, growth: float) -> tuple[bool, str]:
    """Whether the pool has grown ``growth``-fold since the current centroids were fitted (or
    there are none): a small first batch gets better centroids once more data is in, and a
    pool that barely grew keeps its centroids (a refit changes every label and forces a full
    re-selection)."""
    import polars as pl

    fitted = wh.scan("cluster_centroids").select("params").head(1).collect()
    if fitted.height == 0:
        return True, "no centroids yet"
    n_fit = int(json.loads(fitted["params"][0]).get("n_rows", 0))
    n_now = wh.scan("clips").select(pl.len()).collect().item()
    if n_now >= growth * max(1, n_fit):
        return True, f"the pool grew from {n_fit} to {n_now} clips since the fit (>= {growth:g}x)"
    return False, f"the pool grew from {n_fit} to {n_now} clips since the fit (< {growth:g}x): centroids kept"


@dg.schedule(
    job=refit_job,
    cron_schedule=os.environ.get("ACAV_REFIT_CRON", "0 3 * * *"),
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Daily check: refit the centroids on a fresh sample once the pool has grown "
    "ACAV_REFIT_GROWTH-fold (default 2) since the fit; re-assignment and full re-selection "
    "follow.",
)
def refit_schedule(context: dg.ScheduleEvaluationContext, warehouse: WarehouseResource):
    due, why = refit_due(warehouse.get(), float(os.environ.get("ACAV_REFIT_GROWTH", "2")))
    if not due:
        return dg.SkipReason(why)
    when = context.scheduled_execution_time
    seed = int(when.strftime("%Y%m%d"))  # a fresh sample per refit day, reproducible for that day
    context.log.info(f"refitting: {why}")
    return dg.RunRequest(
        run_key=f"refit:{when:%Y-%m-%d}", run_config={"ops": {"cluster_centroids": {"config": {"seed": seed}}}}
    )


_ACTIVE = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    request_job=refit_job,
    minimum_interval_seconds=int(os.environ.get("ACAV_SENSOR_INTERVAL_S", "30")),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Fits the centroids once, after the first successful run that leaves enough "
    "embedded clips to cluster; afterwards only the refit schedule refits them.",
)
def fit_when_missing(context: dg.RunStatusSensorContext, warehouse: WarehouseResource):
    from acav_assets.core.stages.centroids import too_few_to_cluster

    wh = warehouse.get()
    if wh.scan("cluster_centroids").head(1).collect().height:
        return dg.SkipReason("centroids exist: frozen until the refit schedule refits them")
    if waiting := too_few_to_cluster(wh):
        return dg.SkipReason(waiting)
    active = context.instance.get_runs(dg.RunsFilter(job_name=refit_job.name, statuses=_ACTIVE), limit=1)
    if active:
        return dg.SkipReason(f"a fit is already on its way (run {active[0].run_id})")
    return dg.RunRequest(run_key=f"fit:{context.dagster_run.run_id}")
