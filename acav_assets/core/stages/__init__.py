"""The curation stages over the warehouse, one module per table that a stage writes. The Dagster
assets call these; so can tests and scripts."""
