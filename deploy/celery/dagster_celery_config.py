"""Celery worker settings for dagster-celery (put this folder on PYTHONPATH of every worker):

    PYTHONPATH=deploy/celery ACAV_CELERY_BROKER=redis://:<password>@host:6379/0 \
        celery -A dagster_celery.app worker -Q dagster,gpu     # a GPU machine
        celery -A dagster_celery.app worker -Q dagster         # a CPU-only machine

The broker must ask for a password (Redis ``requirepass``) unless it is on the worker's own
machine: a worker refuses to start on an open broker elsewhere (``celery_broker``).
"""

from acav_assets.defs.platform.executors import celery_broker

broker_url = celery_broker()
result_backend = broker_url
task_default_queue = "dagster"
worker_prefetch_multiplier = 1
