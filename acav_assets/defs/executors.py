"""Execution engines for the asset jobs, chosen by configuration — the assets do not change.

``ACAV_EXECUTOR``:
- ``multiprocess`` (default): steps as processes on one machine; the ``gpu`` pool (dagster.yaml)
  keeps GPU steps to one per GPU.
- ``celery``: steps as Celery tasks on a pool of worker processes or machines (dagster-celery),
  broker and result backend at ``ACAV_CELERY_BROKER`` (e.g. ``redis://127.0.0.1:6379/0``). GPU
  steps go to the ``gpu`` queue, the rest to ``dagster``: start GPU workers with ``-q gpu``.
- ``k8s``: each step as a Kubernetes Job (dagster-k8s ``k8s_job_executor``); GPU steps request
  ``ACAV_K8S_GPUS`` GPUs (default 1). Image, namespace and env come from the run config / Helm
  values (``deploy/k8s/``).
- ``in_process``: everything in the run's process (debugging).
"""

import os

import dagster as dg

EXECUTORS = ("multiprocess", "celery", "k8s", "in_process")


def gpu_op_tags() -> dict:
    """Tags that route a GPU step: Celery queue ``gpu``; Kubernetes GPU request and limit."""
    gpus = os.environ.get("ACAV_K8S_GPUS", "1")
    return {
        "dagster-celery/queue": "gpu",
        "dagster-k8s/config": {"container_config": {"resources": {"requests": {"nvidia.com/gpu": gpus},
                                                                  "limits": {"nvidia.com/gpu": gpus}}}},
    }


def executor_from_env(name: str | None = None) -> dg.ExecutorDefinition:
    name = name or os.environ.get("ACAV_EXECUTOR", "multiprocess")
    if name == "multiprocess":
        return dg.multiprocess_executor
    if name == "in_process":
        return dg.in_process_executor
    if name == "celery":
        from dagster_celery import celery_executor

        broker = os.environ.get("ACAV_CELERY_BROKER", "redis://127.0.0.1:6379/0")
        return celery_executor.configured({"broker": broker, "backend": broker}, name="celery")
    if name == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor
    raise ValueError(f"ACAV_EXECUTOR must be one of {EXECUTORS}, got {name!r}")
