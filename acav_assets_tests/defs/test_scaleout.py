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


# --- the warehouse on object storage (a local S3-compatible server on loopback) -------------

@pytest.fixture(scope="module")
def s3():
    import socket

    import boto3
    from moto.server import ThreadedMotoServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="test",
                 region_name="us-east-1").create_bucket(Bucket="acav-warehouse")
    # conditional puts make concurrent Delta commits safe on S3-compatible stores
    yield {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true", "aws_conditional_put": "etag"}
    server.stop()


def test_warehouse_tables_on_s3(s3):
    from acav_assets.core.tables import Warehouse

    wh = Warehouse("s3://acav-warehouse/unit", s3)
    row = {"video_id": "v", "path": "b/x.mp4", "start_s": 0.0, "end_s": 10.0}
    wh.write_batch("clips", "b1", [{**row, "batch": "b1", "clip_id": "c1"}])
    wh.write_batch("clips", "b2", [{**row, "batch": "b2", "clip_id": "c2"}])
    wh.write_batch("clips", "b1", [{**row, "batch": "b1", "clip_id": "c3"}])  # replaces b1 only
    assert sorted(wh.read("clips")["clip_id"].to_list()) == ["c2", "c3"]
    assert sorted(wh.read("clips", version=1)["clip_id"].to_list()) == ["c1", "c2"]  # time travel


_S3_WRITER = """
import json, sys
from acav_assets.core.tables import Warehouse
opts, batch = json.loads(sys.argv[1]), sys.argv[2]
wh = Warehouse("s3://acav-warehouse/concurrent", opts)
wh.write_batch("clips", batch, [{"batch": batch, "clip_id": f"{batch}-{i}", "video_id": "v", "path": "p",
                                 "start_s": 0.0, "end_s": 1.0} for i in range(50)])
"""


def test_concurrent_batch_writes_on_s3_lose_nothing(s3, tmp_path):
    import json
    import subprocess
    import sys

    from acav_assets.core.tables import Warehouse

    script = tmp_path / "w.py"
    script.write_text(_S3_WRITER)
    procs = [subprocess.Popen([sys.executable, str(script), json.dumps(s3), f"b{i}"], stderr=subprocess.PIPE, text=True)
             for i in range(6)]
    errors = [p.communicate()[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(errors)
    df = Warehouse("s3://acav-warehouse/concurrent", s3).read("clips")
    assert dict(df.group_by("batch").len().iter_rows()) == {f"b{i}": 50 for i in range(6)}


def test_pipeline_end_to_end_with_the_warehouse_on_s3(s3, tmp_path):
    from acav_assets.core.synth import write_demo_videos
    from acav_assets.core.tables import Warehouse
    from acav_assets.defs.runner import curate_landing, resources_for

    landing = tmp_path / "landing"
    write_demo_videos(landing / "a", 8, seed=1)
    write_demo_videos(landing / "b", 8, seed=2)
    root = "s3://acav-warehouse/pipeline"
    report = curate_landing(str(landing), root, instance=dg.DagsterInstance.ephemeral(), log_level="ERROR",
                            resources=resources_for(str(landing), root, storage_options=s3),
                            run_config={"ops": {"curated_subset": {"config": {"budget": 0.5}}}})
    assert all(report.checks.values()) and len(report.checks) == 6, report.checks
    wh = Warehouse(root, s3)
    assert wh.read("clip_embeddings").height == 16 * 10
    assert wh.read("curated_subset").height == 8


# --- Celery: a Redis broker on loopback and two worker processes ------------------------------

def _redis_bin():
    import shutil
    return shutil.which("redis-server")


@pytest.mark.skipif(_redis_bin() is None, reason="redis-server is not installed")
def test_batches_run_on_celery_workers(tmp_path, monkeypatch):
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    from acav_assets.core.synth import write_demo_videos
    from acav_assets.core.tables import Warehouse
    from acav_assets.defs.runner import ingest_job_from_env

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    redis = subprocess.Popen([_redis_bin(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                             stdout=subprocess.DEVNULL, start_new_session=True)
    landing, warehouse, home = tmp_path / "landing", tmp_path / "wh", tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    batches = ["c1", "c2", "c3"]
    for i, b in enumerate(batches):
        write_demo_videos(landing / b, 3, seed=70 + i, duration_s=(4.0, 6.0), workers=1)
    env = {"DAGSTER_HOME": str(home), "ACAV_LANDING": str(landing), "ACAV_WAREHOUSE": str(warehouse),
           "ACAV_EXECUTOR": "celery", "ACAV_CELERY_BROKER": f"redis://127.0.0.1:{port}/0"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    wenv = {**os.environ, **env, "PYTHONPATH": str(REPO / "deploy" / "celery"), "OMP_NUM_THREADS": "1"}
    workers = [subprocess.Popen([sys.executable, "-m", "celery", "-A", "dagster_celery.app", "worker", "--pool", "solo",
                                 "-Q", "dagster,gpu", "-n", f"w{i}@%h", "--loglevel", "WARNING"],
                                env=wenv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True) for i in range(2)]
    try:
        instance = dg.DagsterInstance.get()
        instance.add_dynamic_partitions("batches", batches)
        step_pids = set()
        for b in batches:
            result = dg.execute_job(dg.reconstructable(ingest_job_from_env), instance=instance,
                                    tags={"dagster/partition": b})
            assert result.success, b
            for ev in instance.all_logs(result.run_id):
                if ev.dagster_event and ev.dagster_event.event_type_value == "STEP_START":
                    step_pids.add(ev.dagster_event.pid)
        assert step_pids and step_pids <= {w.pid for w in workers}  # every step ran in a worker
        assert os.getpid() not in step_pids
        wh = Warehouse(str(warehouse))
        for table, per_batch in (("videos", 3), ("clips", 3), ("clip_embeddings", 30)):
            counts = dict(wh.read(table).group_by("batch").len().iter_rows())
            assert counts == {b: per_batch for b in batches}, (table, counts)
    finally:
        for p in [*workers, redis]:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in [*workers, redis]:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        time.sleep(0.1)
