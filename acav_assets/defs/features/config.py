"""Run config of the clustering step, derived from the core's k-means settings (declared there)."""

import dagster as dg
from pydantic import Field

from acav_assets.core.clustering import KMeansConfig
from acav_assets.defs.platform.settings import config_class, config_fields, core_kwargs

__all__ = ["ClusteringConfig"]

_KMEANS = ("niter", "seed", "max_sample", "normalize", "whiten")


class _ClusteringSettings(dg.Config):
    def kmeans_config(self) -> KMeansConfig:
        return KMeansConfig(k=max(2, self.max_k), **core_kwargs(self, KMeansConfig, _KMEANS))

    def check(self) -> None:
        if self.k != 0 and self.k < 2:
            raise ValueError(f"k must be 0 (automatic) or at least 2, got {self.k}")
        if self.max_k < 2:
            raise ValueError(f"max_k must be at least 2, got {self.max_k}")
        if self.nredo < 0:
            raise ValueError(f"nredo must be >= 0 (0 = automatic), got {self.nredo}")
        self.kmeans_config()


ClusteringConfig = config_class(
    "ClusteringConfig",
    _ClusteringSettings,
    "k-means per feature space: how many clusters, and how they are fitted.",
    {
        "k": (int, Field(default=0, description="clusters per feature space; 0 = about sqrt(n/3), at most max_k")),
        "max_k": (int, Field(default=32, description="upper bound of the automatic k (reference: 32)")),
        "nredo": (
            int,
            Field(default=0, description="k-means runs, best kept; 0 = 10 for small fits, 3 medium, 1 large"),
        ),
    },
    config_fields(KMeansConfig, _KMEANS),
)
