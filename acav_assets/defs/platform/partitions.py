"""The batch partitions and the asset groups the UI shows."""

import warnings

import dagster as dg

__all__ = ["CURATION", "FEATURES", "INGEST", "batches"]

#: One partition per landing batch folder, added by ``landing_sensor`` or ``acav curate``.
batches = dg.DynamicPartitionsDefinition(name="batches")

#: Asset groups: what a batch's files are, what the clips look and sound like, what is selected.
INGEST, FEATURES, CURATION = "ingest", "features", "curation"

# partitioned checks are a preview in Dagster 1.13: chosen knowingly (per-batch verdicts), not
# repeated at every import of the code location
warnings.filterwarnings("ignore", message=".*partitions_def on an AssetCheckSpec.*")
