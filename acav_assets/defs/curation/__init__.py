"""Curation: the subset of clips whose sound belongs to their picture, chosen over every batch,
and its lineage; the job that selects it and the checks that say whether it can be trusted."""

import dagster as dg

from acav_assets.defs.curation.assets import curated_subset
from acav_assets.defs.curation.checks import subset_beats_random, subset_covers_every_batch, subset_size_and_unique
from acav_assets.defs.curation.config import SelectionConfig

select_job = dg.define_asset_job(
    "select_subset",
    selection=dg.AssetSelection.assets("curated_subset", "selection_lineage"),
    description="Select the curated subset (and its lineage) over every assigned batch.",
)

ASSETS = [curated_subset]
CHECKS = [subset_size_and_unique, subset_beats_random, subset_covers_every_batch]
JOBS = [select_job]

__all__ = ["ASSETS", "CHECKS", "JOBS", "SelectionConfig", "curated_subset", "select_job"]
