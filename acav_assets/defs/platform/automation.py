"""Declarative automation: the assets' automation conditions, evaluated by ``acav_automation``.
``cluster_assignments`` runs for a batch when its embeddings or the centroids change;
``curated_subset`` updates after new assignments, with a warm start. Chosen over a second sensor
because the conditions follow the asset graph (a refit re-assigns every batch, then re-selects
fully) and the UI shows why each run was requested."""

import os

import dagster as dg

__all__ = ["automation_sensor"]

automation_sensor = dg.AutomationConditionSensorDefinition(
    "acav_automation",
    target=dg.AssetSelection.all(),
    minimum_interval_seconds=int(os.environ.get("ACAV_AUTOMATION_INTERVAL_S", "30")),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Evaluates the assets' automation conditions (assign new batches, update the subset).",
)
