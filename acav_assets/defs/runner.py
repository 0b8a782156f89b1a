"""Run the whole curation in-process through Dagster, with the code location's own assets.

``acav curate`` and the tests use this; it is the same definitions the UI materializes, run with
``dg.materialize`` against a Dagster instance (ephemeral, or the one at ``$DAGSTER_HOME``).
Order: per batch ``videos → clips → clip_embeddings``; then ``cluster_centroids``; per batch
``cluster_assignments``; then ``curated_subset`` + ``selection_lineage``. Asset checks run
with the assets they check.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from acav_assets.core.media.landing import Landing
from acav_assets.defs.assets import (
    ASSETS,
    clip_embeddings,
    clips,
    cluster_assignments,
    cluster_centroids,
    curated_subset,
    videos,
)
from acav_assets.defs.checks import CHECKS
from acav_assets.defs.resources import ComputeResource, ExtractorResource, LandingResource, WarehouseResource


@dataclass
class CurateReport:
    batches: list[str]
    rejected: dict[str, str]
    runs: list[str] = field(default_factory=list)
    checks: dict[str, bool] = field(default_factory=dict)
    check_severity: dict[str, str] = field(default_factory=dict)  # "ERROR" | "WARN", for each check
    materializations: dict[str, dict[str, Any]] = field(default_factory=dict)  # asset -> metadata of its last run

    def failed_checks(self) -> list[str]:
        """Checks that failed with ERROR severity: what makes a curation fail."""
        return [k for k, ok in self.checks.items() if not ok and self.check_severity.get(k, "ERROR") == "ERROR"]

    def warned_checks(self) -> list[str]:
        """Checks that did not pass but only warn (e.g. a pool too small to judge)."""
        return [k for k, ok in self.checks.items() if not ok and self.check_severity.get(k, "ERROR") != "ERROR"]


def resources_for(landing_root: str, warehouse_root: str, *, profile: str = "weightfree", device: str = "auto",
                  extractor_options: str = "{}", storage_options: dict | None = None,
                  landing_storage_options: dict | None = None, landing_cache: str = "") -> dict:
    """Resources for one landing area and warehouse: ``storage_options`` are the warehouse's
    (delta-rs), ``landing_storage_options`` the landing area's (fsspec)."""
    return {
        "warehouse": WarehouseResource(root=warehouse_root, storage_options=storage_options or {}),
        "landing": LandingResource(root=landing_root, storage_options=landing_storage_options or {},
                                   cache_dir=landing_cache),
        "compute": ComputeResource(device=device),
        "extractors": ExtractorResource(profile=profile, options_json=extractor_options),
    }


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
) -> CurateReport:
    """Materialize every asset for every batch folder (or ``batches``). ``run_config`` is the
    Dagster run config (``{"ops": {"curated_subset": {"config": {"budget": 0.3}}}}``); each run
    gets the part for its ops. Raises ``dg.DagsterExecutionStepExecutionError``-derived errors
    through ``materialize`` when a step fails."""
    resources = resources or resources_for(landing_root, warehouse_root)
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
    ops = (run_config or {}).get("ops", {})
    everything = [*ASSETS, *CHECKS]

    def run(selection, partition=None, label=""):
        names = {k.path[-1] for a in selection for k in a.keys}
        cfg = {"ops": {k: v for k, v in ops.items() if k in names},
               "loggers": {"console": {"config": {"log_level": log_level}}}}
        log(f"materializing {label}")
        result = dg.materialize(everything, selection=dg.AssetSelection.assets(*selection), partition_key=partition,
                                instance=instance, resources=resources, run_config=cfg)
        report.runs.append(result.run_id)
        for ev in result.get_asset_check_evaluations():
            name = f"{ev.asset_key.to_user_string()}:{ev.check_name}" + (f"[{partition}]" if partition else "")
            report.checks[name] = ev.passed
            report.check_severity[name] = ev.severity.value
        for ev in result.get_asset_materialization_events():
            mat = ev.step_materialization_data.materialization
            report.materializations.setdefault(mat.asset_key.to_user_string(), {})[partition or ""] = {
                k: getattr(v, "value", v) for k, v in mat.metadata.items()}
        return result

    for b in todo:
        run([videos, clips, clip_embeddings], b, f"batch {b}: videos, clips, clip_embeddings")
    run([cluster_centroids], None, "cluster_centroids")
    for b in todo:
        run([cluster_assignments], b, f"batch {b}: cluster_assignments")
    run([curated_subset], None, "curated_subset, selection_lineage")
    return report


def ingest_job_from_env() -> dg.JobDefinition:
    """The ``ingest_batch`` job with the executor and resources of the current environment
    (``ACAV_EXECUTOR``, ``ACAV_LANDING``, ``ACAV_WAREHOUSE``, ...). A reconstructable target:
    ``dg.reconstructable(ingest_job_from_env)`` lets Celery or Kubernetes workers rebuild it."""
    from acav_assets.defs.automation import ingest_job
    from acav_assets.defs.executors import executor_from_env
    from acav_assets.defs.resources import default_resources

    defs = dg.Definitions(assets=ASSETS, asset_checks=CHECKS, resources=default_resources(),
                          executor=executor_from_env(), jobs=[ingest_job])
    return defs.resolve_job_def("ingest_batch")
