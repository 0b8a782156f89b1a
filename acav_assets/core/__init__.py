"""The curation method without Dagster, one folder per domain: ``media``, ``features``,
``clustering``, ``selection``, ``stages`` (the per-table steps over the warehouse), ``warehouse``,
``generators`` and ``evaluation``."""
