"""The Dagster code location (loaded by ``workspace.yaml`` and ``dagster dev``)."""

from acav_assets.defs.definitions import defs

__all__ = ["defs"]
