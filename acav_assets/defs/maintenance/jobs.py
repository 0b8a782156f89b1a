"""Maintenance: ``maintenance_schedule`` (weekly) runs ``maintenance_job``: compaction and vacuum
of every table with ``ACAV_VACUUM_RETAIN_HOURS`` (default 168) of time travel kept; skipped while
a run is in progress."""

import os

import dagster as dg
from pydantic import Field

from acav_assets.defs.platform.resources import WarehouseResource

__all__ = ["MaintenanceConfig", "maintain_tables", "maintenance_job", "maintenance_schedule"]


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
