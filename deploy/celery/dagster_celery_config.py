"""Celery worker settings for dagster-celery (put this folder on PYTHONPATH of every worker):

    PYTHONPATH=deploy/celery ACAV_CELERY_BROKER=redis://host:6379/0 \
        celery -A dagster_celery.app worker -Q dagster,gpu     # a GPU machine
        celery -A dagster_celery.app worker -Q dagster         # a CPU-only machine
"""

import os

broker_url = os.environ.get("ACAV_CELERY_BROKER", "redis://127.0.0.1:6379/0")
result_backend = broker_url
task_default_queue = "dagster"
worker_prefetch_multiplier = 1
