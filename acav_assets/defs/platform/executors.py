"""Execution engines for the asset jobs, chosen by configuration — the assets do not change.

``ACAV_EXECUTOR``:
- ``in_process`` (default): a run's steps run in the run's own process. Every job here is a
  chain (videos -> clips -> clip_embeddings; one step for the others), so a run loses no
  parallelism, and it saves one fresh process per step (`benchmarks/run_overhead.py`: an
  ingest run of 20 tiny videos 2.4 s instead of 20.2 s; importing the code location costs
  about 3.5 s per process). Runs still go side by side (one process each), and the ``gpu`` pool
  (dagster.yaml) still keeps GPU steps to one per GPU: the in-process executor claims
  concurrency-pool slots like the multiprocess one.
- ``multiprocess``: steps as processes on one machine (isolation of each step).
- ``celery``: steps as Celery tasks on a pool of worker processes or machines (dagster-celery),
  broker and result backend at ``ACAV_CELERY_BROKER`` (``redis://:<password>@host:6379/0``; a
  broker off this machine without a password is refused, see :func:`celery_broker`). GPU steps
  go to the ``gpu`` queue, the rest to ``dagster``: start GPU workers with ``-q gpu``.
- ``k8s``: each step as a Kubernetes Job (dagster-k8s ``k8s_job_executor``); GPU steps request
  ``ACAV_K8S_GPUS`` GPUs (default 1). Image, namespace and env come from the run config / Helm
  values (``deploy/k8s/``).
"""

import os

import dagster as dg

EXECUTORS = ("in_process", "multiprocess", "celery", "k8s")


def gpu_op_tags() -> dict:
    """Tags that route a GPU step: Celery queue ``gpu``; Kubernetes GPU request and limit."""
    gpus = os.environ.get("ACAV_K8S_GPUS", "1")
    return {
        "dagster-celery/queue": "gpu",
        "dagster-k8s/config": {
            "container_config": {
                "resources": {"requests": {"nvidia.com/gpu": gpus}, "limits": {"nvidia.com/gpu": gpus}}
            }
        },
    }


_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def celery_broker() -> str:
    """``ACAV_CELERY_BROKER`` (default: a Redis on this machine), refused when it points off this
    machine without a password: whoever reaches an open Redis can queue tasks that run as the
    workers."""
    from urllib.parse import urlsplit

    url = os.environ.get("ACAV_CELERY_BROKER", "").strip() or "redis://127.0.0.1:6379/0"
    parts = urlsplit(url)
    if parts.hostname not in _LOOPBACK and not parts.password:
        raise ValueError(
            f"ACAV_CELERY_BROKER {parts.scheme}://{parts.hostname}:{parts.port or ''} has no password: "
            f"give one (redis://:<password>@{parts.hostname}:{parts.port or 6379}/0; Redis: requirepass)"
        )
    return url


def executor_from_env(name: str | None = None) -> dg.ExecutorDefinition:
    name = name or os.environ.get("ACAV_EXECUTOR", "in_process")
    if name == "multiprocess":
        return dg.multiprocess_executor
    if name == "in_process":
        return dg.in_process_executor
    if name == "celery":
        from dagster_celery import celery_executor

        broker = celery_broker()
        return celery_executor.configured({"broker": broker, "backend": broker}, name="celery")
    if name == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor
    raise ValueError(f"ACAV_EXECUTOR must be one of {EXECUTORS}, got {name!r}")
