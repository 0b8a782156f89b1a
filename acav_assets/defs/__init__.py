"""The Dagster code location (loaded by ``workspace.yaml``, ``dg dev`` and ``dagster dev``)."""

from acav_assets.defs.definitions import defs

__all__ = ["defs"]
