"""Scale-out configuration: the engines are chosen by configuration, GPU steps are routed, and the
Kubernetes deployment renders and validates (no cluster needed)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
import yaml

from acav_assets.defs.assets import ASSETS, clip_embeddings
from acav_assets.defs.executors import EXECUTORS, executor_from_env

REPO = Path(__file__).resolve().parents[2]


def test_executor_is_chosen_by_configuration(monkeypatch):
    assert executor_from_env("multiprocess") is dg.multiprocess_executor
    assert executor_from_env("celery").name == "celery"
    assert executor_from_env("k8s").name == "k8s"
    monkeypatch.setenv("ACAV_EXECUTOR", "k8s")
    assert executor_from_env().name == "k8s"
    with pytest.raises(ValueError, match="must be one of"):
        executor_from_env("slurm")
    assert set(EXECUTORS) == {"multiprocess", "celery", "k8s", "in_process"}


def test_gpu_step_routing_tags():
    tags = clip_embeddings.op.tags
    assert tags["dagster-celery/queue"] == "gpu"
    assert clip_embeddings.op.pool == "gpu"


def test_k8s_step_job_renders_with_a_gpu_request():
    from dagster_k8s.job import DagsterK8sJobConfig, construct_dagster_k8s_job, get_user_defined_k8s_config

    user_config = get_user_defined_k8s_config(clip_embeddings.op.tags)
    job = construct_dagster_k8s_job(
        DagsterK8sJobConfig(job_image="acav_assets:latest", dagster_home="/opt/dagster/home",
                            image_pull_policy="IfNotPresent", instance_config_map="dagster-instance"),
        args=["dagster", "api", "execute_step"], job_name="acav-clip-embeddings-step",
        user_defined_k8s_config=user_config)
    container = job.spec.template.spec.containers[0]
    assert container.image == "acav_assets:latest"
    assert container.resources.limits == {"nvidia.com/gpu": "1"}
    assert container.resources.requests == {"nvidia.com/gpu": "1"}


def test_k8s_run_config_and_helm_values_validate():
    from dagster_k8s import k8s_job_executor

    from acav_assets.defs.resources import default_resources

    defs = dg.Definitions(assets=ASSETS, resources=default_resources(), executor=k8s_job_executor,
                          jobs=[dg.define_asset_job("k8s_check", selection=[clip_embeddings])])
    job = defs.resolve_job_def("k8s_check")
    run_config = yaml.safe_load((REPO / "deploy" / "k8s" / "run_config.yaml").read_text())
    assert dg.validate_run_config(job, run_config)["execution"]["k8s"]["job_image"] == "acav_assets:latest"
    with pytest.raises(dg.DagsterInvalidConfigError):
        dg.validate_run_config(job, {"execution": {"config": {"job_image": 3, "no_such_field": True}}})
    values = yaml.safe_load((REPO / "deploy" / "k8s" / "values.yaml").read_text())
    dep = values["dagster-user-deployments"]["deployments"][0]
    assert dep["dagsterApiGrpcArgs"] == ["-m", "acav_assets.defs"]
    env = {e["name"]: e["value"] for e in dep["env"]}
    assert env["ACAV_EXECUTOR"] == "k8s" and env["ACAV_WAREHOUSE"].startswith("s3://")
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
