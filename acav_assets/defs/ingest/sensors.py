"""The landing sensor: each complete landing folder becomes a batch partition and gets one
``ingest_batch`` run (probe, cut, embed, assign). A folder is complete with a ``_READY`` file
(write it last) or after ``ACAV_QUIET_PERIOD_S`` seconds without change (default 300; 0: only
``_READY``). The cursor lists the batches requested and each request carries a run key, so a
restarted daemon neither repeats nor misses a batch; when the batch is the only work (centroids
exist, no other ingest or selection under way) its run is ``ingest_and_select``, which also updates
the subset, so a batch goes from files to subset in one run; a batch already ingested with the files it
holds now (by ``acav curate`` on the same instance) is taken as done without a run; a batch whose
ingest run failed is requested again, up to ``ACAV_INGEST_RUN_ATTEMPTS`` runs, then reported
until its files change."""

import json
import os

import dagster as dg

from acav_assets.defs.platform.partitions import batches
from acav_assets.defs.platform.resources import LandingResource, WarehouseResource
from acav_assets.defs.platform.versions import latest_materialization

__all__ = ["INGEST_RUN_ATTEMPTS", "ingest_and_select_job", "ingest_job", "landing_sensor"]

ingest_job = dg.define_asset_job(
    "ingest_batch",
    selection=dg.AssetSelection.assets("videos", "clips", "clip_embeddings", "clip_sync", "cluster_assignments"),
    description="Probe, cut, embed and assign one landing batch (requested by "
    "landing_sensor): one run per batch. Before the first fit its "
    "assignments wait; automation assigns it once the centroids exist.",
)
ingest_and_select_job = dg.define_asset_job(
    "ingest_and_select",
    selection=dg.AssetSelection.assets(
        "videos", "clips", "clip_embeddings", "clip_sync", "cluster_assignments", "curated_subset", "selection_lineage"
    ),
    description="Probe, cut, embed and assign one landing batch, then update the subset (a warm start): "
    "one run from a batch's files to the subset, requested by landing_sensor when the batch is the only "
    "work (the centroids exist, no other ingest or selection is under way).",
)
#: The jobs whose runs make a selection wait for them (they write what it reads, or select;
#: ``__ASSET_JOB``: the runs declarative automation launches).
_SELECTION_INPUTS = (
    "ingest_batch",
    "ingest_and_select",
    "assign_batch",
    "refit_centroids",
    "select_subset",
    "__ASSET_JOB",
)
_ACTIVE = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


#: Runs of ``ingest_batch`` the sensor requests for one batch whose earlier run failed (after
#: its steps' own retries): a lost worker or an out-of-memory kill may pass on a second run. Then
#: the batch stays reported as failed until its files change (a fix landed), which requests it again.
INGEST_RUN_ATTEMPTS = int(os.environ.get("ACAV_INGEST_RUN_ATTEMPTS", "2"))


def _only_work(context: dg.SensorEvaluationContext, warehouse: WarehouseResource) -> str:
    """Why one new batch's run should not also select ("" when it should): the centroids must
    exist (else its assignments and the selection wait) and no other run may be writing what a
    selection reads or selecting (two selections at once would race for the subset)."""
    if warehouse.get().scan("cluster_centroids").head(1).collect().height == 0:
        return "no centroids yet"
    for job in _SELECTION_INPUTS:
        if context.instance.get_runs(dg.RunsFilter(job_name=job, statuses=_ACTIVE), limit=1):
            return f"a {job} run is under way"
    return ""


@dg.sensor(
    jobs=[ingest_job, ingest_and_select_job],
    minimum_interval_seconds=int(os.environ.get("ACAV_SENSOR_INTERVAL_S", "30")),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Adds each complete landing folder as a batch partition and ingests it (with the "
    "selection in the same run when it is the only work); a batch whose ingest run failed is requested "
    "again (bounded), then reported until its files change.",
)
def landing_sensor(
    context: dg.SensorEvaluationContext, landing: LandingResource, warehouse: WarehouseResource
) -> dg.SensorResult:
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
    job = ingest_job.name
    if len(requests) == 1:
        why = _only_work(context, warehouse)
        job = ingest_and_select_job.name if not why else job
        context.log.info(f"batch {requests[0][0]}: " + (f"{job} (selection left to automation: {why})" if why else job))
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(run_key=key, partition_key=b, tags={"acav/batch": b}, job_name=job) for b, key in requests
        ],
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
