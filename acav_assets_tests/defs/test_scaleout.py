"""Scale-out configuration: the engines are chosen by configuration, GPU steps are routed, and the
Kubernetes deployment renders and validates (no cluster needed)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import dagster as dg
import pytest
import yaml

from acav_assets.defs.definitions import ASSETS
from acav_assets.defs.features import clip_embeddings
from acav_assets.defs.platform.executors import EXECUTORS, executor_from_env
from acav_assets_tests.conftest import free_port, stop_processes

REPO = Path(__file__).resolve().parents[2]


def test_executor_is_chosen_by_configuration(monkeypatch):
    assert executor_from_env("multiprocess") is dg.multiprocess_executor
    monkeypatch.delenv("ACAV_EXECUTOR", raising=False)
    assert executor_from_env() is dg.in_process_executor  # the default: every job is a chain
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
    from acav_assets.defs.features import cluster_assignments
    from acav_assets.defs.ingest import videos

    for a in (videos, clip_embeddings, cluster_assignments):  # transient failures retried, bounded
        assert a.op.retry_policy is not None and a.op.retry_policy.max_retries == 2


def test_k8s_step_job_renders_with_a_gpu_request():
    from dagster_k8s.job import DagsterK8sJobConfig, construct_dagster_k8s_job, get_user_defined_k8s_config

    user_config = get_user_defined_k8s_config(clip_embeddings.op.tags)
    job = construct_dagster_k8s_job(
        DagsterK8sJobConfig(
            job_image="acav_assets:latest",
            dagster_home="/opt/dagster/home",
            image_pull_policy="IfNotPresent",
            instance_config_map="dagster-instance",
        ),
        args=["dagster", "api", "execute_step"],
        job_name="acav-clip-embeddings-step",
        user_defined_k8s_config=user_config,
    )
    container = job.spec.template.spec.containers[0]
    assert container.image == "acav_assets:latest"
    assert container.resources.limits == {"nvidia.com/gpu": "1"}
    assert container.resources.requests == {"nvidia.com/gpu": "1"}


def test_k8s_run_config_and_helm_values_validate(monkeypatch):
    from dagster_k8s import k8s_job_executor

    from acav_assets.defs.platform.resources import default_resources

    defs = dg.Definitions(
        assets=ASSETS,
        resources=default_resources(),
        executor=k8s_job_executor,
        jobs=[dg.define_asset_job("k8s_check", selection=[clip_embeddings])],
    )
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
    # the deployment's environment gives resources on object storage
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with dg.build_resources(default_resources()) as res:  # resolved as a run resolves them (EnvVar)
        assert res.landing.get().remote and res.landing.root.startswith("s3://")
        assert dict(res.warehouse.get().storage_options) == {"aws_conditional_put": "etag"}  # read when used
    monkeypatch.setenv("ACAV_LANDING_STORAGE_OPTIONS", "[1]")
    with pytest.raises(ValueError, match="ACAV_LANDING_STORAGE_OPTIONS must be a JSON object"):
        default_resources()
    assert values["runLauncher"]["type"] == "K8sRunLauncher"


# --- the warehouse on object storage (a local S3-compatible server on loopback) -------------


@pytest.fixture(scope="module")
def s3():
    import boto3
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
    )
    client.create_bucket(Bucket="acav-warehouse")
    client.create_bucket(Bucket="acav-landing")
    # conditional puts make concurrent Delta commits safe on S3-compatible stores
    yield {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
        "aws_conditional_put": "etag",
    }
    server.stop()


def test_warehouse_tables_on_s3(s3):
    from acav_assets.core.warehouse.tables import Warehouse

    wh = Warehouse("s3://acav-warehouse/unit", s3)
    row = {"video_id": "v", "path": "b/x.mp4", "start_s": 0.0, "end_s": 10.0}
    wh.write_batch("clips", "b1", [{**row, "batch": "b1", "clip_id": "c1"}])
    wh.write_batch("clips", "b2", [{**row, "batch": "b2", "clip_id": "c2"}])
    wh.write_batch("clips", "b1", [{**row, "batch": "b1", "clip_id": "c3"}])  # replaces b1 only
    assert sorted(wh.read("clips")["clip_id"].to_list()) == ["c2", "c3"]
    assert sorted(wh.read("clips", version=1)["clip_id"].to_list()) == ["c1", "c2"]  # time travel


_S3_WRITER = """
import json, sys
from acav_assets.core.warehouse.tables import Warehouse
opts, batch = json.loads(sys.argv[1]), sys.argv[2]
wh = Warehouse("s3://acav-warehouse/concurrent", opts)
wh.write_batch("clips", batch, [{"batch": batch, "clip_id": f"{batch}-{i}", "video_id": "v", "path": "p",
                                 "start_s": 0.0, "end_s": 1.0} for i in range(50)])
"""


@pytest.mark.slow
def test_concurrent_batch_writes_on_s3_lose_nothing(s3, tmp_path):
    import json
    import subprocess
    import sys

    from acav_assets.core.warehouse.tables import Warehouse

    script = tmp_path / "w.py"
    script.write_text(_S3_WRITER)
    procs = [
        subprocess.Popen([sys.executable, str(script), json.dumps(s3), f"b{i}"], stderr=subprocess.PIPE, text=True)
        for i in range(6)
    ]
    errors = [p.communicate()[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(errors)
    df = Warehouse("s3://acav-warehouse/concurrent", s3).read("clips")
    assert dict(df.group_by("batch").len().iter_rows()) == {f"b{i}": 50 for i in range(6)}


# --- the landing area on object storage ----------------------------------------------------


def _fsspec_options(s3: dict) -> dict:
    """s3fs options for the same server (fsspec names them differently from delta-rs)."""
    return {
        "key": s3["AWS_ACCESS_KEY_ID"],
        "secret": s3["AWS_SECRET_ACCESS_KEY"],
        "endpoint_url": s3["AWS_ENDPOINT_URL"],
        "client_kwargs": {"region_name": s3["AWS_REGION"]},
    }


def _upload(s3: dict, folder: Path, prefix: str) -> list[str]:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=s3["AWS_ENDPOINT_URL"],
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    )
    keys = []
    for f in sorted(folder.rglob("*")):
        if f.is_file() and not f.is_symlink():
            key = f"{prefix}/{f.relative_to(folder).as_posix()}"
            client.upload_file(str(f), "acav-landing", key)
            keys.append(key)
    return keys


def test_landing_area_on_s3_lists_checks_completeness_and_stages(s3, tmp_path):
    import boto3

    from acav_assets.core.generators.demo import write_demo_videos
    from acav_assets.core.media.landing import READY_MARKER, Landing

    local = tmp_path / "src"
    write_demo_videos(local / "b1", 3, seed=5, duration_s=(4, 5), workers=1)
    write_demo_videos(local / "b2", 2, seed=6, duration_s=(4, 5), workers=1)
    (local / "bad name").mkdir()
    (local / "bad name" / "x.mp4").write_bytes(b"x")
    (local / "b1" / READY_MARKER).touch()
    _upload(s3, local, "unit")
    area = Landing("s3://acav-landing/unit", _fsspec_options(s3), cache_dir=tmp_path / "cache")

    ok, rejected = area.batches()
    assert ok == ["b1", "b2"] and list(rejected) == ["bad name"]
    assert area.is_complete("b1", 3600) == (True, f"{READY_MARKER} present")
    complete, why = area.is_complete("b2", 3600)  # just uploaded: modification times from the store
    assert not complete and why.startswith("changed")
    assert area.is_complete("b2", 3600, now=time.time() + 7200)[0]
    assert area.is_complete("b2", 0) == (False, f"waiting for {READY_MARKER}")

    rep = area.stage("b1")
    staged = sorted(p.name for p in (rep.local_root / "b1").iterdir())
    assert staged == sorted(p.name for p in (local / "b1").glob("*.mp4"))  # media only, same names
    assert rep.copied == 3 and rep.bytes_copied == sum(p.stat().st_size for p in (local / "b1").glob("*.mp4"))
    for name in staged:
        assert (rep.local_root / "b1" / name).read_bytes() == (local / "b1" / name).read_bytes()
    assert area.stage("b1").kept == 3  # cached copies are reused
    # what a copy killed midway leaves: a truncated cached file is copied again, a temporary
    # part file is never taken for a video
    from acav_assets.core.media.probe import list_media_files

    cached = rep.local_root / "b1" / staged[2]
    cached.write_bytes(cached.read_bytes()[:100])
    (rep.local_root / "b1" / f".{staged[2]}.part-999").write_bytes(b"partial")
    again = area.stage("b1")
    assert (again.copied, again.kept) == (1, 2) and cached.read_bytes() == (local / "b1" / staged[2]).read_bytes()
    assert sorted(os.path.basename(p) for p in list_media_files(rep.local_root / "b1")) == staged
    # a file deleted on the remote disappears from the stage; a replaced one is copied again
    client = boto3.client(
        "s3",
        endpoint_url=s3["AWS_ENDPOINT_URL"],
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    )
    client.delete_object(Bucket="acav-landing", Key=f"unit/b1/{staged[0]}")
    client.put_object(Bucket="acav-landing", Key=f"unit/b1/{staged[1]}", Body=b"not a video any more")
    rep = area.stage("b1")
    assert (rep.copied, rep.kept, rep.removed) == (1, 1, 1)
    assert (rep.local_root / "b1" / staged[1]).read_bytes() == b"not a video any more"
    with pytest.raises(ValueError, match="does not exist"):
        area.stage("b9")
    area.release("b1")
    assert not (rep.local_root / "b1").exists()
    # one file of a released batch, fetched again for a near-duplicate comparison; nothing but a
    # batch's media file is fetched
    fetched = area.fetch(f"b2/{sorted(p.name for p in (local / 'b2').glob('*.mp4'))[0]}", tmp_path / "fetched")
    assert fetched is not None and fetched.read_bytes() == sorted((local / "b2").glob("*.mp4"))[0].read_bytes()
    for wrong in ("b1/gone.mp4", "../unit/b2/x.mp4", "b2/../b1/x.mp4", "b2", "bad name/x.mp4", f"b1/{READY_MARKER}"):
        assert area.fetch(wrong, tmp_path / "fetched") is None, wrong
    assert Landing(str(local)).fetch("b1/x.mp4", tmp_path / "fetched") is None  # a local root: read in place
    with pytest.raises(ValueError, match="does not exist"):
        Landing("s3://acav-landing/nothing-here", _fsspec_options(s3)).batches()


def test_landing_sensor_watches_an_s3_prefix(s3, tmp_path, monkeypatch):
    from acav_assets.core.generators.demo import write_demo_videos
    from acav_assets.core.media.landing import READY_MARKER
    from acav_assets.defs.ingest import landing_sensor
    from acav_assets.defs.platform.resources import LandingResource, WarehouseResource

    monkeypatch.setenv("ACAV_QUIET_PERIOD_S", "3600")
    local = tmp_path / "src"
    write_demo_videos(local / "ready", 1, seed=7, duration_s=(4, 5), workers=1)
    (local / "ready" / READY_MARKER).touch()
    write_demo_videos(local / "uploading", 1, seed=8, duration_s=(4, 5), workers=1)
    _upload(s3, local, "sensor")
    # as deployed: credentials and endpoint from the environment only (deploy/k8s/values.yaml)
    for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(k, s3[k])
    monkeypatch.setenv("AWS_DEFAULT_REGION", s3["AWS_REGION"])
    resource = LandingResource(root="s3://acav-landing/sensor")
    instance = dg.DagsterInstance.ephemeral()
    result = landing_sensor(
        dg.build_sensor_context(
            instance=instance,
            resources={"landing": resource, "warehouse": WarehouseResource(root=str(tmp_path / "wh"))},
        )
    )
    assert [r.partition_key for r in result.run_requests] == ["ready"]
    (local / "uploading" / READY_MARKER).touch()
    _upload(s3, local, "sensor")
    result = landing_sensor(
        dg.build_sensor_context(
            instance=instance,
            cursor=result.cursor,
            resources={"landing": resource, "warehouse": WarehouseResource(root=str(tmp_path / "wh"))},
        )
    )
    assert [r.partition_key for r in result.run_requests] == ["uploading"]


@pytest.mark.slow
def test_pipeline_end_to_end_with_landing_and_warehouse_on_s3(s3, tmp_path):
    """Both on the S3 server: the sensor's batches are staged, probed, embedded, clustered and
    selected; bad input on the remote gets its status; the staged copies are dropped after. A
    re-encoded copy in the second batch of a video of the first is found, its original's picture
    read from the remote (the first batch's staged copy was released)."""
    import polars as pl

    from acav_assets.core.export.cut import CutConfig, cut_clip
    from acav_assets.core.generators.demo import write_demo_videos
    from acav_assets.core.media.probe import probe_file
    from acav_assets.core.warehouse.tables import Warehouse
    from acav_assets.defs.runner import curate_landing, resources_for

    local = tmp_path / "src"
    write_demo_videos(local / "a", 8, seed=1)
    write_demo_videos(local / "b", 8, seed=2)
    (local / "b" / "corrupt.mp4").write_bytes(b"\x00" * 1000)
    original = sorted((local / "a").glob("*.mp4"))[0]
    duration = probe_file(original).duration_s  # a re-encode, trimmed by 1 s at each end
    (local / "b" / "reupload.mp4").write_bytes(cut_clip(original, 1.0, duration - 1.0, CutConfig(crf=35)).mp4)
    _upload(s3, local, "pipeline")
    landing, root, cache = "s3://acav-landing/pipeline", "s3://acav-warehouse/pipeline", tmp_path / "cache"
    report = curate_landing(
        landing,
        root,
        instance=dg.DagsterInstance.ephemeral(),
        log_level="ERROR",
        resources=resources_for(
            landing, root, storage_options=s3, landing_cache=str(cache), landing_storage_options=_fsspec_options(s3)
        ),
        run_config={"ops": {"curated_subset": {"config": {"budget": 0.5}}}},
    )
    assert report.batches == ["a", "b"]
    assert len(report.checks) == 11 and not report.failed_checks(), report.checks
    wh = Warehouse(root, s3)
    vids = wh.read("videos")
    assert vids.height == 18
    assert vids.filter(pl.col("status") != "ok").sort("path").select("path", "status").rows() == [
        ("b/corrupt.mp4", "corrupt"),
        ("b/reupload.mp4", "near_duplicate"),
    ]
    assert vids.filter(pl.col("path") == "b/reupload.mp4")["duplicate_of"].to_list() == [f"a/{original.name}"]
    assert wh.read("clip_embeddings").height == 16 * 10
    subset = wh.read("curated_subset")
    assert subset.height == 8 and all(p.split("/")[0] in ("a", "b") for p in subset["path"])  # landing-relative
    meta = report.materializations["videos"]
    assert meta["a"]["staged_files_copied"] == 8 and meta["b"]["staged_files_copied"] == 10
    assert "on demand" in str(meta["b"]["near_duplicate_pairs"])
    assert not any(p.is_file() for p in cache.rglob("*"))  # released after the embeddings


@pytest.mark.slow
def test_acav_curate_twice_on_an_object_store_warehouse_runs_nothing_the_second_time(s3, tmp_path, monkeypatch, capsys):
    """Without a Dagster home, an S3 warehouse's data versions go to this machine's cache, so
    the same command again finds everything up to date (it re-ran every step before)."""
    from acav_assets.cli import main as acav_main
    from acav_assets.core.generators.demo import write_demo_videos

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("ACAV_WAREHOUSE_STORAGE_OPTIONS", json.dumps(s3))
    write_demo_videos(tmp_path / "landing" / "a", 12, seed=4)
    argv = ["curate", str(tmp_path / "landing"), "--warehouse", "s3://acav-warehouse/cli", "--budget", "0.5"]
    assert acav_main(argv) == 0
    out = capsys.readouterr().out
    assert "through 4 Dagster runs" in out, out
    homes = list((tmp_path / "home" / ".cache" / "acav_assets" / "dagster").iterdir())
    assert len(homes) == 1 and f"runs recorded in DAGSTER_HOME={homes[0]}" in out, out
    assert acav_main(argv) == 0
    out = capsys.readouterr().out
    assert "through 0 Dagster runs" in out and "curated_subset (up to date, not re-run): 6 of 12 clips" in out, out


# --- Celery: a Redis broker on loopback and two worker processes ------------------------------


def _redis_bin():
    import shutil

    return shutil.which("redis-server")


@pytest.mark.services
@pytest.mark.slow
@pytest.mark.skipif(_redis_bin() is None, reason="redis-server is not installed")
def test_batches_run_on_celery_workers(tmp_path, monkeypatch):
    import subprocess
    import sys

    from acav_assets.core.generators.demo import write_demo_videos
    from acav_assets.core.warehouse.tables import Warehouse
    from acav_assets.defs.runner import ingest_job_from_env

    port = free_port()
    password = "celery-test-secret"  # as deployed: the broker asks for a password
    redis = subprocess.Popen(
        [
            _redis_bin(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--requirepass",
            password,
        ],
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    landing, warehouse, home = tmp_path / "landing", tmp_path / "wh", tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    batches = ["c1", "c2", "c3"]
    for i, b in enumerate(batches):
        write_demo_videos(landing / b, 3, seed=70 + i, duration_s=(4.0, 6.0), workers=1)
    env = {
        "DAGSTER_HOME": str(home),
        "ACAV_LANDING": str(landing),
        "ACAV_WAREHOUSE": str(warehouse),
        "ACAV_EXECUTOR": "celery",
        "ACAV_CELERY_BROKER": f"redis://:{password}@127.0.0.1:{port}/0",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    wenv = {**os.environ, **env, "PYTHONPATH": str(REPO / "deploy" / "celery"), "OMP_NUM_THREADS": "1"}
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "dagster_celery.app",
                "worker",
                "--pool",
                "solo",
                "-Q",
                "dagster,gpu",
                "-n",
                f"w{i}@%h",
                "--loglevel",
                "WARNING",
            ],
            env=wenv,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for i in range(2)
    ]
    try:
        instance = dg.DagsterInstance.get()
        instance.add_dynamic_partitions("batches", batches)
        step_pids = set()
        for b in batches:
            result = dg.execute_job(
                dg.reconstructable(ingest_job_from_env), instance=instance, tags={"dagster/partition": b}
            )
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
        stop_processes(*workers, redis, timeout=20)
        time.sleep(0.1)


def test_storage_secrets_stay_out_of_resource_config(monkeypatch):
    """Keys in ACAV_*_STORAGE_OPTIONS are read when the resource is used, never baked into the
    resource config that the UI shows."""
    from acav_assets.defs.platform.resources import default_resources

    monkeypatch.setenv("ACAV_WAREHOUSE_STORAGE_OPTIONS", '{"aws_secret_access_key": "s3cr3t-w"}')
    monkeypatch.setenv("ACAV_LANDING_STORAGE_OPTIONS", '{"secret": "s3cr3t-l"}')
    res = default_resources()
    shown = json.dumps({k: res[k].model_dump() for k in ("warehouse", "landing")}, default=str)
    assert "s3cr3t" not in shown and "ACAV_WAREHOUSE_STORAGE_OPTIONS" in shown
    assert res["warehouse"].get().storage_options["aws_secret_access_key"] == "s3cr3t-w"
    assert res["landing"].get().storage_options["secret"] == "s3cr3t-l"
