"""Automation: curation keeps up by itself.

- ``landing_sensor`` watches the landing area (a local folder or an ``s3://``/``gs://`` prefix).
  A batch folder is picked up once it is complete:
  it contains a ``_READY`` file (write it last), or nothing in it has changed for
  ``ACAV_QUIET_PERIOD_S`` seconds (default 300; 0 disables the quiet-period rule). Each new
  batch becomes a dynamic partition and gets one ``ingest_batch`` run (probe → clips →
  embeddings). The cursor lists the batches already requested, and each request carries a run
  key, so a restarted daemon neither repeats nor misses a batch. A batch already ingested on
  this instance with the files it holds now (``acav curate`` / ``acav demo`` against the same
  ``DAGSTER_HOME``: its ``videos`` materialization records the landing fingerprint) is taken as
  done without a run, so opening the UI after the demo starts nothing. A requested batch stays
  in the cursor's ``pending`` list until its embeddings are materialized: when its ingest run
  failed (after the steps' own retries) it is requested again, up to ``ACAV_INGEST_RUN_ATTEMPTS``
  runs (default 2), then named in the sensor's log and skip reason (and by the
  ``subset_covers_every_batch`` check) until its files change, which requests it afresh.
- ``fit_when_missing`` (a run status sensor) fits ``cluster_centroids`` once, after the first
  successful run that leaves enough embedded clips to cluster; then only the schedule refits.
  The centroids are frozen by design and are not shown stale when a batch arrives.
- Declarative automation (conditions on the assets, evaluated by ``acav_automation``):
  ``cluster_assignments`` runs for a batch when its embeddings or the centroids change;
  ``curated_subset`` updates after new assignments, with a warm start: the previous subset is
  kept and the new batches' share is chosen given it. Chosen over a second sensor because the
  conditions follow the asset graph (a refit re-assigns every batch, then re-selects fully)
  and the UI shows why each run was requested.
- ``refit_schedule`` (daily, 03:00 UTC) refits the centroids on a fresh sample once the pool has
  grown ``ACAV_REFIT_GROWTH``-fold (default 2) since the fit, and skips (saying why) otherwise:
  centroids fitted on a small first batch are replaced once more data is in, and a pool that
  barely grew is not re-labelled (a refit forces a full re-selection). Every batch's
  assignments and the subset then show as stale in the UI until automation re-assigns them
  and re-selects fully.
- ``maintenance_schedule`` (weekly) runs ``maintenance_job``: compaction and vacuum of every
  table with ``ACAV_VACUUM_RETAIN_HOURS`` (default 168) of time travel kept; skipped while a
  run is in progress.
"""

import json
import os

import dagster as dg
from pydantic import Field

from acav_assets.core.media.landing import READY_MARKER, batch_is_complete
from acav_assets.defs.assets import (
    batches,
    clip_embeddings,
    clips,
    cluster_assignments,
    cluster_centroids,
    videos,
)
from acav_assets.defs.resources import LandingResource, WarehouseResource
from acav_assets.defs.versions import latest_materialization

__all__ = [
    "CURATION_JOBS",
    "READY_MARKER",
    "assign_job",
    "automation_sensor",
    "batch_is_complete",
    "fit_when_missing",
    "ingest_job",
    "landing_sensor",
    "maintenance_job",
    "maintenance_schedule",
    "refit_job",
    "refit_schedule",
    "select_job",
]


ingest_job = dg.define_asset_job(
    "ingest_batch",
    selection=dg.AssetSelection.assets(videos, clips, clip_embeddings, cluster_assignments),
    description="Probe, cut, embed and assign one landing batch (requested by "
    "landing_sensor): one run per batch. Before the first fit its "
    "assignments wait; automation assigns it once the centroids exist.",
)
refit_job = dg.define_asset_job(
    "refit_centroids",
    selection=dg.AssetSelection.assets(cluster_centroids),
    description="Refit the k-means centroids on a fresh sample of every batch.",
)
assign_job = dg.define_asset_job(
    "assign_batch",
    selection=dg.AssetSelection.assets(cluster_assignments),
    description="Assign one batch's clips to the frozen centroids.",
)
select_job = dg.define_asset_job(
    "select_subset",
    selection=dg.AssetSelection.assets("curated_subset", "selection_lineage"),
    description="Select the curated subset (and its lineage) over every assigned batch.",
)
#: The jobs ``acav curate`` launches, by the assets each materializes (the daemon's ingest and
#: refit runs are the same jobs).
CURATION_JOBS = [ingest_job, refit_job, assign_job, select_job]


#: Runs of ``ingest_batch`` the sensor requests for one batch whose earlier run failed (after
#: its steps' own retries): a lost worker or an out-of-memory kill may pass on a second run. Then
#: the batch stays reported as failed until its files change (a fix landed), which requests it again.
INGEST_RUN_ATTEMPTS = int(os.environ.get("ACAV_INGEST_RUN_ATTEMPTS", "2"))


@dg.sensor(
    job=ingest_job,
    minimum_interval_seconds=int(os.environ.get("ACAV_SENSOR_INTERVAL_S", "30")),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Adds each complete landing folder as a batch partition and ingests it; a batch whose "
    "ingest run failed is requested again (bounded), then reported until its files change.",
)
def landing_sensor(context: dg.SensorEvaluationContext, landing: LandingResource) -> dg.SensorResult:
    quiet = float(os.environ.get("ACAV_QUIET_PERIOD_S", "300"))
    state = json.loads(context.cursor) if context.cursor else {}
    done = set(state.get("done", []))
    # requested, not yet seen ingested: {batch: {"fp": fingerprint when requested, "attempts": n}}
    pending: dict[str, dict] = state.get("pending", {})
    area = landing.get()
    try:
        found, rejected = area.batches()
    except ValueError as exc:
        return dg.SensorResult(skip_reason=str(exc))
    for name, why in rejected.items():
        context.log.warning(f"ignoring landing folder {name!r}: {why}")
    new, waiting = [], []
    already = []
    prints = {}  # batch -> its landing fingerprint now (listed once per evaluation)
    for b in found:
        if b in done:
            continue
        complete, why = area.is_complete(b, quiet)
        if complete:
            prints[b] = area.fingerprint(b)
            if _ingested_as_is(context.instance, b, prints[b]):
                already.append(b)
                continue
        (new if complete else waiting).append((b, why))
    if already:
        context.log.info(f"already ingested with the files they hold now, not requested: {', '.join(already)}")
        done |= set(already)
    for b, why in waiting:
        context.log.info(f"batch {b} not complete yet: {why}")
    requests = [(b, f"ingest:{b}") for b, _ in new]
    for b, _ in new:
        pending[b] = {"fp": prints[b], "attempts": 1}
    failed = []
    for b in sorted(set(pending) - {b for b, _ in new}):
        outcome = _ingest_outcome(context.instance, b)
        if outcome == "ingested" or b not in found:
            pending.pop(b)  # done, or its folder was removed
        elif outcome == "failed":
            entry, fp = pending[b], area.fingerprint(b)
            if fp != entry["fp"]:  # files changed since the failed run: a fix landed
                pending[b] = {"fp": fp, "attempts": 1}
                requests.append((b, f"ingest:{b}:{fp[:16]}"))
            elif entry["attempts"] < INGEST_RUN_ATTEMPTS:
                entry["attempts"] += 1
                requests.append((b, f"ingest:{b}:{fp[:16]}:attempt{entry['attempts']}"))
            else:
                failed.append(b)
    if failed:
        context.log.warning(
            f"ingest failed {INGEST_RUN_ATTEMPTS} time(s), waiting for the files to change or a "
            f"manual run: {', '.join(failed)}"
        )
    cursor = json.dumps({"done": sorted(done | {b for b, _ in new}), "pending": dict(sorted(pending.items()))})
    if not requests:
        why = f"no new complete batch ({len(waiting)} waiting)"
        return dg.SensorResult(
            skip_reason=why + (f"; failed ingest: {', '.join(failed)}" if failed else ""), cursor=cursor
        )
    keys = [b for b, _ in new]
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=key, partition_key=b, tags={"acav/batch": b}) for b, key in requests],
        dynamic_partitions_requests=[batches.build_add_request(keys)] if keys else [],
        cursor=cursor,
    )


def _ingest_outcome(instance: dg.DagsterInstance, batch: str) -> str:
    """'ingested' (its embeddings are materialized), 'failed' (its latest ingest run failed) or
    'waiting' (queued, running, or no run yet)."""
    if latest_materialization(instance, "clip_embeddings", batch) is not None:
        return "ingested"
    runs = instance.get_runs(filters=dg.RunsFilter(tags={"acav/batch": batch}), limit=1)
    if runs and runs[0].status in (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED):
        return "failed"
    return "waiting"


def _ingested_as_is(instance: dg.DagsterInstance, batch: str, fingerprint: str) -> bool:
    """Whether the batch's embeddings are materialized on ``instance`` and its latest ``videos``
    materialization recorded ``fingerprint``, the landing fingerprint the batch has now."""
    if not instance.has_dynamic_partition(batches.name, batch):
        return False
    emb = latest_materialization(instance, "clip_embeddings", batch)
    vids = latest_materialization(instance, "videos", batch)
    if emb is None or vids is None:
        return False
    recorded = vids.metadata.get("landing_fingerprint")
    return recorded is not None and getattr(recorded, "value", recorded) == fingerprint


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


class MaintenanceConfig(dg.Config):
    retain_hours: float = Field(
        default=float(os.environ.get("ACAV_VACUUM_RETAIN_HOURS", "168")),
        description="vacuum keeps the files any table version of the last N hours needs "
        "(time travel reaches that far back)",
    )


@dg.op(description="Compact every Delta table, then vacuum files no version within the retention needs.")
def maintain_tables(context: dg.OpExecutionContext, config: MaintenanceConfig, warehouse: WarehouseResource) -> None:
    from acav_assets.core.warehouse.maintenance import maintain

    report = maintain(warehouse.get(), retain_hours=config.retain_hours)
    for r in report.tables:
        context.log.info(f"{r.table}: {r.files_before} -> {r.files_after} files, {r.files_removed} removed")
    index = {} if report.index_retired is None else {"index_retired_videos_dropped": report.index_retired}
    context.add_output_metadata(
        {"tables": len(report.tables), "files_removed": sum(r.files_removed for r in report.tables), **index}
    )


@dg.job(description="Compact and vacuum the warehouse tables (acav maintain, on a schedule).")
def maintenance_job():
    maintain_tables()


@dg.schedule(
    job=maintenance_job,
    cron_schedule=os.environ.get("ACAV_MAINTENANCE_CRON", "0 4 * * 0"),
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Weekly (Sunday 04:00 UTC): compact and vacuum the tables, keeping "
    "ACAV_VACUUM_RETAIN_HOURS (default 168) of time travel. Skipped while a curation run "
    "is in progress (a concurrent writer would make the compaction fail).",
)
def maintenance_schedule(context: dg.ScheduleEvaluationContext):
    busy = context.instance.get_runs(
        filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING]), limit=1
    )
    if busy:
        return dg.SkipReason(f"run {busy[0].run_id} is in progress: maintenance waits for next week")
    return dg.RunRequest(run_key=f"maintain:{context.scheduled_execution_time:%Y-%m-%d}")


automation_sensor = dg.AutomationConditionSensorDefinition(
    "acav_automation",
    target=dg.AssetSelection.all(),
    minimum_interval_seconds=int(os.environ.get("ACAV_AUTOMATION_INTERVAL_S", "30")),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Evaluates the assets' automation conditions (assign new batches, update the subset).",
)
