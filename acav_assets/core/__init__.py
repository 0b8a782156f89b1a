"""The curation method without Dagster: media, features, clustering, selection, tables."""
