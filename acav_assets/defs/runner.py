"""Run the whole curation in-process through Dagster, with the code location's own assets.

``acav curate`` and the tests use this; it is the same definitions the UI materializes, run as
the code location's named jobs (``CURATION_JOBS``) in-process against a Dagster instance
(ephemeral, or the one at ``$DAGSTER_HOME``). Order: per batch ``ingest_batch`` without its
assignments (``videos → clips → clip_embeddings, clip_sync``); then ``refit_centroids`` when the centroids must be fitted; per
batch ``assign_batch``; then ``select_subset`` (``curated_subset`` + ``selection_lineage``).
Asset checks run with the assets they check.

Only what is stale runs. Every asset records a *data version* on its materialization, computed
by :mod:`acav_assets.defs.platform.versions` from what it was made of (for a batch: its files, the step
settings, the extractor profile, the code versions; for the assignments, the embeddings' version
and the clustering ids; for the subset, every batch's assignment version and the effective
selection settings), whoever launched it. This runner computes the version each step would
record now with the same functions; a step whose last materialization on this instance carries
it, and whose rows are in the warehouse, is skipped: work automation did is not redone here,
and the other way round. The centroids are fitted when there are none or the
feature spaces changed, and kept otherwise (a refit is ``full=True`` or the schedule). A
second run over an unchanged landing area runs nothing and rewrites no table.
"""

import json
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
import polars as pl
from dagster._core.errors import DagsterAssetCheckFailedError  # not re-exported by dagster 1.13

from acav_assets.core.stages.centroids import too_few_to_cluster
from acav_assets.core.stages.curation import held_settings
from acav_assets.defs.curation import SelectionConfig, select_job
from acav_assets.defs.definitions import ASSETS, CHECKS, CURATION_JOBS, PER_BATCH
from acav_assets.defs.features import ClusteringConfig, assign_job, refit_job
from acav_assets.defs.ingest import ClipsConfig, VideosConfig, ingest_job
from acav_assets.defs.platform import versions
from acav_assets.defs.platform.resources import ExtractorResource
from acav_assets.defs.platform.steps import profile_identity
from acav_assets.defs.run_config import check_settings, resources_for
from acav_assets.defs.sync import ClipSyncConfig, clip_sync


@dataclass
class CurateReport:
    batches: list[str]
    rejected: dict[str, str]
    runs: list[str] = field(default_factory=list)
    checks: dict[str, bool] = field(default_factory=dict)
    check_severity: dict[str, str] = field(default_factory=dict)  # "ERROR" | "WARN", for each check
    materializations: dict[str, dict[str, Any]] = field(default_factory=dict)  # asset -> metadata of its last run
    skipped: list[str] = field(default_factory=list)  # steps that were up to date ("batch_001: ingest", ...)
    blocked: dict[str, str] = field(default_factory=dict)  # batch -> why it was not assigned (a blocking check)
    waiting: str = ""  # why clustering and selection wait (too few clips so far): not an error

    def failed_checks(self) -> list[str]:
        """Checks that failed with ERROR severity: what makes a curation fail."""
        return [k for k, ok in self.checks.items() if not ok and self.check_severity.get(k, "ERROR") == "ERROR"]

    def warned_checks(self) -> list[str]:
        """Checks that did not pass but only warn (e.g. a pool too small to judge)."""
        return [k for k, ok in self.checks.items() if not ok and self.check_severity.get(k, "ERROR") != "ERROR"]


def curate_landing(
    landing_root: str,
    warehouse_root: str,
    *,
    instance: dg.DagsterInstance,
    batches: Sequence[str] | None = None,
    run_config: dict | None = None,
    resources: dict | None = None,
    log: Callable[[str], None] = lambda m: None,
    log_level: str = "INFO",
    full: bool = False,
    echo_warnings: bool = False,
) -> CurateReport:
    """Materialize every asset for every batch folder (or ``batches``). ``run_config`` is the
    Dagster run config (``{"ops": {"curated_subset": {"config": {"budget": 0.3}}}}``); each run
    gets the part for its ops. ``log_level``: the Dagster console logger's; ``echo_warnings``:
    the console stays quiet and the warnings the steps log come through ``log`` instead, one line
    each (no framework events, no stack traces). A step that fails raises: ``dg.Failure`` with a
    readable description for bad input or configuration, ``dg.DagsterExecutionStepExecutionError``
    for anything else."""
    resources = resources or resources_for(landing_root, warehouse_root)
    check_settings(run_config, resources)
    found, rejected = resources["landing"].get().batches()
    for name, why in rejected.items():
        log(f"skipping folder {name!r}: {why}")
    todo = list(batches) if batches is not None else found
    missing = sorted(set(todo) - set(found))
    if missing:
        raise ValueError(f"batch folder(s) not found under {landing_root}: {missing}")
    if not todo:
        raise ValueError(f"no batch folders under {landing_root}: put videos in <landing>/<batch>/")
    new = [b for b in todo if not instance.has_dynamic_partition("batches", b)]
    if new:
        instance.add_dynamic_partitions("batches", new)
    report = CurateReport(todo, rejected)
    batch_versions: dict[str, str] = {}
    ops = json.loads(json.dumps((run_config or {}).get("ops", {})))  # a copy: the mode may be set below
    wh = resources["warehouse"].get()
    landing = resources["landing"].get()
    ex = resources["extractors"]
    profile = profile_identity(ex)

    def settings(cls, op: str) -> dict:
        """The op's settings as its asset resolves them (defaults filled in)."""
        return cls(**((ops.get(op) or {}).get("config") or {})).model_dump()

    console_level = "CRITICAL" if echo_warnings else log_level  # echoed: the warnings come through `log`

    jobs = dg.Definitions(assets=ASSETS, asset_checks=CHECKS, jobs=CURATION_JOBS, resources=resources)

    def run(job, partition=None, label="", only=None):
        """One run of ``job`` (of its assets ``only``, when given)."""
        keys = [k for a in only for k in a.keys] if only else None
        names = {k.path[-1] for k in keys or jobs.resolve_job_def(job.name).asset_layer.executable_asset_keys}
        cfg = {
            "ops": {k: v for k, v in ops.items() if k in names},
            "loggers": {"console": {"config": {"log_level": console_level}}},
        }
        log(f"materializing {label}")
        tags = {}
        if echo_warnings:
            tags[CALL_TAG] = uuid.uuid4().hex  # finds the run again when materialize raises
        try:
            result = jobs.resolve_job_def(job.name).execute_in_process(
                run_config=cfg, instance=instance, partition_key=partition, tags=tags or None, asset_selection=keys
            )
        except DagsterAssetCheckFailedError as exc:  # a blocking check: the batch's data is invalid
            if partition is None:
                raise
            report.blocked[partition] = str(exc).strip().splitlines()[0]
            log(f"batch {partition} not assigned: {report.blocked[partition]} (see the check in the UI)")
            report.checks[f"clip_embeddings:embeddings_finite_and_declared_dims[{partition}]"] = False
            return None
        finally:
            if echo_warnings:
                _echo_warnings(instance, tags[CALL_TAG], log)
        report.runs.append(result.run_id)
        for ev in result.get_asset_check_evaluations():
            name = f"{ev.asset_key.to_user_string()}:{ev.check_name}" + (f"[{partition}]" if partition else "")
            report.checks[name] = ev.passed
            report.check_severity[name] = ev.severity.value
        for ev in result.get_asset_materialization_events():
            mat = ev.step_materialization_data.materialization
            report.materializations.setdefault(mat.asset_key.to_user_string(), {})[partition or ""] = {
                k: getattr(v, "value", v) for k, v in mat.metadata.items()
            }
        return result

    def up_to_date(recorded: str | None, version: str, table: str, partition: str | None = None) -> bool:
        """The last materialization carries ``version`` and its rows are in the warehouse."""
        if full or recorded != version:
            return False
        rows = wh.scan(table)
        if partition is not None:
            rows = rows.filter(pl.col("batch") == partition)
        return rows.select(pl.len()).collect().item() > 0

    changed: list[str] = []
    for b in todo:
        clips_v = versions.clips_version(
            versions.videos_version(
                landing.fingerprint(b), settings(VideosConfig, "videos"), landing.allowed_link_roots
            ),
            settings(ClipsConfig, "clips"),
        )
        v = versions.embeddings_version(clips_v, profile)
        sync_v = versions.sync_version(clips_v, settings(ClipSyncConfig, "clip_sync"))
        batch_versions[b] = v
        recorded = versions.recorded_version(instance, "clip_embeddings", b)
        if up_to_date(recorded, v, "clip_embeddings", b):
            if up_to_date(versions.recorded_version(instance, "clip_sync", b), sync_v, "clip_sync", b):
                report.skipped.append(f"{b}: videos, clips, clip_embeddings, clip_sync")
            else:  # embedded before the sync estimate existed, or its flag settings changed
                report.skipped.append(f"{b}: videos, clips, clip_embeddings")
                run(ingest_job, b, f"batch {b}: clip_sync", only=[clip_sync])
            continue
        if recorded is not None:
            changed.append(b)  # ingested before with other files or settings: its old rows may be in the subset
        # its assignments below, once it is known whether the centroids are refitted first
        run(ingest_job, b, f"batch {b}: videos, clips, clip_embeddings, clip_sync", only=PER_BATCH)

    spaces = sorted(fs.name for fs in profile_spaces(ex))
    fitted = wh.scan("cluster_centroids").select("feature_space").unique().collect()["feature_space"].to_list()
    # the embedding spaces' identity (profile, options such as weight files) and the fit settings:
    # centroids fitted on other embeddings must not label these ones
    fit_version = versions.fit_version(profile, settings(ClusteringConfig, "cluster_centroids"))
    recorded = versions.recorded_fit_version(instance)
    k = ((ops.get("cluster_centroids") or {}).get("config") or {}).get("k") or None
    if not fitted and (waiting := too_few_to_cluster(wh, k)):
        report.waiting = waiting  # the batches are ingested; clustering and selection wait for more data
        log(waiting)
        return report
    if full or not fitted or sorted(fitted) != spaces or (recorded is not None and recorded != fit_version):
        run(refit_job, None, "cluster_centroids")
    else:
        report.skipped.append("cluster_centroids (kept: new batches are assigned to the frozen centroids)")
    ids = sorted(wh.scan("cluster_centroids").select("clustering_id").unique().collect()["clustering_id"].to_list())
    for b in todo:
        if b in report.blocked or not _passed_blocking_check(instance, b):
            report.blocked.setdefault(b, "its embeddings failed the blocking check embeddings_finite_and_declared_dims")
            continue
        v = versions.assignments_version(batch_versions[b], ids)
        if up_to_date(versions.recorded_version(instance, "cluster_assignments", b), v, "cluster_assignments", b):
            report.skipped.append(f"{b}: cluster_assignments")
            continue
        run(assign_job, b, f"batch {b}: cluster_assignments")
    # the settings the selection will run with (given, else the warehouse's): a run that gives
    # none after one that gave them is up to date, as it is for the daemon; every batch's
    # assignments as recorded now (this run's or automation's)
    sel_cfg = SelectionConfig(**(ops.get("curated_subset", {}).get("config") or {}))
    v = versions.subset_version(
        versions.recorded_assignment_versions(instance),
        sel_cfg.version_settings(held_settings(wh)),
        versions.recorded_batch_versions(instance, "clip_sync"),
    )
    # a batch whose files changed was re-ingested: its earlier picks must go, even when its new
    # embeddings failed their check and left its old assignment version recorded
    if not changed and up_to_date(versions.recorded_version(instance, "curated_subset"), v, "curated_subset"):
        report.skipped.append("curated_subset, selection_lineage")
    else:
        cfg = ops.setdefault("curated_subset", {}).setdefault("config", {})
        if full:
            cfg["mode"] = "full"
        elif changed:  # a warm start would keep the changed batches' old picks: select afresh
            if cfg.get("mode", "auto") == "auto":
                log(f"batch(es) {', '.join(changed)} changed since they were selected from: full re-selection")
                cfg["mode"] = "full"
        run(select_job, None, "curated_subset, selection_lineage")
    return report


CALL_TAG = "acav/call"  # one runner call's run, when its warnings are echoed


def _echo_warnings(instance: dg.DagsterInstance, call: str, log: Callable[[str], None]) -> None:
    """The warnings (and errors) the steps of the run tagged ``call`` logged, through ``log``."""
    records = instance.get_run_records(dg.RunsFilter(tags={CALL_TAG: call}), limit=1)
    for entry in instance.all_logs(records[0].dagster_run.run_id) if records else ():
        if entry.level >= logging.WARNING and not entry.is_dagster_event:
            log(f"warning: {entry.step_key or 'run'}: {entry.user_message}")


def _passed_blocking_check(instance: dg.DagsterInstance, batch: str) -> bool:
    """False when the batch's latest embedding check failed (an up-to-date batch that is not
    re-ingested keeps the verdict of the run that ingested it)."""
    from dagster._core.event_api import PartitionKeyFilter
    from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

    key = dg.AssetCheckKey(dg.AssetKey("clip_embeddings"), "embeddings_finite_and_declared_dims")
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [key], partition_filter=PartitionKeyFilter(key=batch)
    ).get(key)
    return latest is None or latest.status != AssetCheckExecutionRecordStatus.FAILED


def profile_spaces(extractors: ExtractorResource) -> list:
    """The feature spaces the configured profile declares (the models are built on the CPU)."""
    from acav_assets.core.features.base import profile_feature_spaces

    return profile_feature_spaces(extractors.build("cpu"))


def ingest_job_from_env() -> dg.JobDefinition:
    """The ``ingest_batch`` job with the executor and resources of the current environment
    (``ACAV_EXECUTOR``, ``ACAV_LANDING``, ``ACAV_WAREHOUSE``, ...). A reconstructable target:
    ``dg.reconstructable(ingest_job_from_env)`` lets Celery or Kubernetes workers rebuild it."""
    from acav_assets.defs.platform.executors import executor_from_env
    from acav_assets.defs.platform.resources import default_resources

    defs = dg.Definitions(
        assets=ASSETS,
        asset_checks=CHECKS,
        resources=default_resources(),
        executor=executor_from_env(),
        jobs=[ingest_job],
    )
    return defs.resolve_job_def("ingest_batch")
