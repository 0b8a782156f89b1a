"""Maintenance: the warehouse's tables compacted and vacuumed on a schedule."""

from acav_assets.defs.maintenance.jobs import MaintenanceConfig, maintain_tables, maintenance_job, maintenance_schedule

JOBS = [maintenance_job]
SCHEDULES = [maintenance_schedule]

__all__ = ["JOBS", "MaintenanceConfig", "SCHEDULES", "maintain_tables", "maintenance_job", "maintenance_schedule"]
