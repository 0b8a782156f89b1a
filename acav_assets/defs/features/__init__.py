"""Features: every clip embedded (several layers of audio and visual networks), k-means per
feature space fitted on a sample and frozen, each batch's clips labelled with the centroids."""

from acav_assets.defs.features.assets import clip_embeddings, cluster_assignments, cluster_centroids
from acav_assets.defs.features.checks import assignments_complete, embeddings_finite_and_declared_dims
from acav_assets.defs.features.config import ClusteringConfig
from acav_assets.defs.features.fitting import assign_job, fit_when_missing, refit_due, refit_job, refit_schedule

ASSETS = [clip_embeddings, cluster_centroids, cluster_assignments]
CHECKS = [embeddings_finite_and_declared_dims, assignments_complete]
JOBS = [refit_job, assign_job]
SENSORS = [fit_when_missing]
SCHEDULES = [refit_schedule]

__all__ = [
    "ASSETS",
    "CHECKS",
    "ClusteringConfig",
    "JOBS",
    "SCHEDULES",
    "SENSORS",
    "assign_job",
    "clip_embeddings",
    "cluster_assignments",
    "cluster_centroids",
    "fit_when_missing",
    "refit_due",
    "refit_job",
    "refit_schedule",
]
