"""The deployment, for real but without Docker: PostgreSQL on loopback as Dagster's storage (the
same deploy/dagster.yaml the compose file uses), the Dagster daemon and webserver, a batch dropped
in the landing area, and the sensor + automation producing an updated curated_subset."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from acav_assets.core.generators.demo import write_demo_videos
from acav_assets.core.media.landing import READY_MARKER
from acav_assets.core.warehouse.tables import Warehouse
from acav_assets_tests.conftest import free_port, stop_processes

pytestmark = pytest.mark.slow  # end to end through Dagster (a quick loop: -m 'not slow')

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    cands = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return cands[-1] if cands else None


class Postgres:
    """A throwaway PostgreSQL server on a loopback port (run as the `postgres` user when root)."""

    def __init__(self):
        # its own folder: pytest's temporary tree is private to root
        self.dir = Path(tempfile.mkdtemp(prefix="acav-pg-"))
        self.port = free_port()
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user:
            shutil.chown(self.dir, self.user)

    def _run(self, *args):
        subprocess.run(list(args), check=True, user=self.user, capture_output=True, cwd=self.dir)

    def start(self):
        self._run(_pg_bin("initdb"), "-D", str(self.dir / "data"), "-U", "dagster", "--auth=trust", "-E", "UTF8")
        self._run(
            _pg_bin("pg_ctl"),
            "-D",
            str(self.dir / "data"),
            "-l",
            str(self.dir / "log"),
            "-w",
            "start",
            "-o",
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1",
        )

    def stop(self):
        subprocess.run(
            [_pg_bin("pg_ctl"), "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop"],
            user=self.user,
            capture_output=True,
            cwd=self.dir,
        )
        shutil.rmtree(self.dir, ignore_errors=True)


def _start(args, env, log):
    return subprocess.Popen(args, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _stop_leftovers(marker: str, grace_s: float = 40) -> None:
    """Wait for processes tied to ``marker`` (their heartbeat ends them), then kill stragglers."""
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode != 0:
            return
        time.sleep(1)
    subprocess.run(["pkill", "-KILL", "-f", marker], capture_output=True)
    time.sleep(1)


def _wait_for(predicate, timeout, what, logs, procs=()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if any(p.poll() is not None for p in procs):
            break
        time.sleep(2)
    tail = "".join(Path(p).read_text()[-3000:] for p in logs)
    raise AssertionError(f"timed out waiting for {what}\n{tail}")


@pytest.mark.services
@pytest.mark.skipif(_pg_bin("initdb") is None, reason="PostgreSQL server binaries are not installed")
def test_sensor_and_automation_curate_a_dropped_batch_with_postgres(tmp_path):
    pg = Postgres()
    pg.start()
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
    landing, warehouse = tmp_path / "landing", tmp_path / "warehouse"
    landing.mkdir()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "ACAV_LANDING": str(landing),
        "ACAV_WAREHOUSE": str(warehouse),
        "DAGSTER_POSTGRES_USER": "dagster",
        "DAGSTER_POSTGRES_PASSWORD": "",
        "DAGSTER_POSTGRES_DB": "postgres",
        "DAGSTER_POSTGRES_HOST": "127.0.0.1",
        "DAGSTER_POSTGRES_PORT": str(pg.port),
        "ACAV_SENSOR_INTERVAL_S": "2",
        "ACAV_AUTOMATION_INTERVAL_S": "3",
        "ACAV_QUIET_PERIOD_S": "0",
    }
    port = free_port()
    logs = [tmp_path / "daemon.log", tmp_path / "webserver.log"]
    procs = []
    try:
        with open(logs[0], "w") as dlog, open(logs[1], "w") as wlog:
            procs.append(_start([str(BIN / "dagster-daemon"), "run", "-w", str(REPO / "workspace.yaml")], env, dlog))
            procs.append(
                _start(
                    [
                        str(BIN / "dagster-webserver"),
                        "-w",
                        str(REPO / "workspace.yaml"),
                        "-h",
                        "127.0.0.1",
                        "-p",
                        str(port),
                    ],
                    env,
                    wlog,
                )
            )

            def webserver_up():
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2).read()
                    return True
                except OSError:
                    return False

            _wait_for(webserver_up, 120, "the webserver", logs, procs)

            write_demo_videos(landing / "batch_001", 6, seed=5, duration_s=(5.0, 7.0))
            (landing / "batch_001" / READY_MARKER).touch()
            wh = Warehouse(str(warehouse))

            def subset_has(batches):
                def check():
                    try:
                        sub = wh.read("curated_subset")
                    except Exception:  # noqa: BLE001 - the table may be mid-creation
                        return False
                    return sub.height > 0 and set(batches) <= set(sub["batch"].to_list())

                return check

            _wait_for(subset_has(["batch_001"]), 400, "curated_subset from batch_001", logs, procs)
            first = wh.read("curated_subset").sort("rank")

            write_demo_videos(landing / "batch_002", 10, seed=6, duration_s=(5.0, 7.0))
            (landing / "batch_002" / READY_MARKER).touch()
            _wait_for(subset_has(["batch_001", "batch_002"]), 400, "curated_subset updated with batch_002", logs, procs)
            now = wh.read("curated_subset").sort("rank")
            assert set(first["clip_id"]) <= set(now["clip_id"])  # the warm start kept every earlier clip
            assert now.head(first.height)["clip_id"].to_list() == first["clip_id"].to_list()
            runs = wh.read("selection_runs").sort("created_at")
            assert '"mode": "incremental"' in runs.row(-1, named=True)["params"]

            # the runs are in Postgres, visible to the webserver
            query = {"query": "{ runsOrError { ... on Runs { results { jobName status } } } }"}
            req = urllib.request.Request(
                f"http://127.0.0.1:{port}/graphql",
                data=json.dumps(query).encode(),
                headers={"Content-Type": "application/json"},
            )
            ingests = ("ingest_batch", "ingest_and_select")
            results = []

            def runs_finished():
                # the subset is written before its run's last steps end: wait for the run records
                found = json.loads(urllib.request.urlopen(req, timeout=10).read())["data"]["runsOrError"]["results"]
                results[:] = found
                return sum(r["jobName"] in ingests and r["status"] == "SUCCESS" for r in found) >= 2

            _wait_for(runs_finished, 120, "both ingest runs to succeed", logs, procs)
            # the first batch's run waits for the first fit; the second, the only work, selects in its own run
            assert {r["jobName"] for r in results} >= {"ingest_batch", "ingest_and_select"}
            assert sum(r["jobName"] in ingests and r["status"] == "SUCCESS" for r in results) == 2
            assert not [r for r in results if r["status"] == "FAILURE"], results
    finally:
        for p in procs:
            stop_processes(p)
        _stop_leftovers(str(home))  # code servers the daemon/webserver started in their own sessions
        pg.stop()
    out = subprocess.run(["pgrep", "-f", str(home)], capture_output=True, text=True)
    assert out.stdout.strip() == "", "processes were left running"


def test_compose_file_is_valid():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "user_code", "webserver", "proxy", "daemon"}
    assert "ports" not in services["webserver"]  # the UI only through the authenticating proxy
    assert services["proxy"]["ports"] == ["${ACAV_UI_BIND:-127.0.0.1}:8080:8080"]  # loopback by default
    assert services["proxy"]["environment"]["ACAV_UI_UPSTREAM"] == "webserver:3000"
    assert "./deploy/nginx/htpasswd:/etc/nginx/htpasswd:ro" in services["proxy"]["volumes"]
    for name in ("user_code", "webserver", "daemon"):  # not root
        assert services[name]["user"] == "${ACAV_UID:-10001}:0"
    dockerfile = (REPO / "Dockerfile").read_text().splitlines()
    assert "USER 10001" in dockerfile and 'ENTRYPOINT ["acav-entrypoint"]' in dockerfile
    gpu = services["user_code"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["capabilities"] == ["gpu"]
    text = (REPO / "docker-compose.yml").read_text()
    assert "PASSWORD: ${DAGSTER_POSTGRES_PASSWORD:?" in text  # no password committed
    instance = yaml.safe_load((REPO / "deploy" / "dagster.yaml").read_text())
    assert instance["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert instance["concurrency"]["pools"]["default_limit"] == 1
    assert instance["concurrency"]["runs"]["max_concurrent_runs"] >= 1
    assert instance["storage"]["postgres"]["postgres_db"]["password"] == {"env": "DAGSTER_POSTGRES_PASSWORD"}
    docker = shutil.which("docker")
    has_compose = docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    if has_compose:
        env = {**os.environ, "DAGSTER_POSTGRES_USER": "u", "DAGSTER_POSTGRES_PASSWORD": "p"}
        subprocess.run([docker, "compose", "-f", str(REPO / "docker-compose.yml"), "config", "-q"], check=True, env=env)


@pytest.mark.parametrize("required", ["1", ""])
def test_ci_fails_when_redis_cannot_be_found(tmp_path, required):
    """With redis-server missing (PATH without it) the Celery test skips; under CI's
    ACAV_REQUIRE_SERVICES=1 that skip makes the test run fail."""
    env = {**os.environ, "PATH": str(tmp_path), "ACAV_REQUIRE_SERVICES": required}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "acav_assets_tests/defs/test_scaleout.py",
            "-k",
            "celery",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert "redis-server is not installed" in run.stdout, run.stdout[-2000:]
    assert (run.returncode != 0) == (required == "1"), run.stdout[-2000:]


def _entrypoint(env: dict) -> subprocess.CompletedProcess:
    clean = {"PATH": os.environ["PATH"], **env}
    return subprocess.run(
        ["sh", str(REPO / "deploy" / "entrypoint.sh"), "echo", "started"], env=clean, capture_output=True, text=True
    )


def test_the_image_refuses_to_start_with_the_example_password():
    example = dict(
        line.split("=", 1)
        for line in (REPO / "deploy" / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    for env in (
        {"DAGSTER_POSTGRES_USER": "dagster", "DAGSTER_POSTGRES_PASSWORD": example["DAGSTER_POSTGRES_PASSWORD"]},
        {"DAGSTER_POSTGRES_USER": "dagster", "DAGSTER_POSTGRES_PASSWORD": ""},
        {"DAGSTER_POSTGRES_USER": "dagster", "DAGSTER_POSTGRES_PASSWORD": "short1"},
        {"DAGSTER_PG_PASSWORD": "test"},
    ):  # the Helm chart's variable, its old default
        res = _entrypoint(env)
        assert res.returncode == 2 and res.stdout == "", (env, res)
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("acav: refusing to start"), res.stderr
    strong = _entrypoint({"DAGSTER_POSTGRES_USER": "dagster", "DAGSTER_POSTGRES_PASSWORD": "k3v9-Q2x-77pLmw"})
    assert strong.returncode == 0 and strong.stdout.strip() == "started", strong
    assert _entrypoint({}).stdout.strip() == "started"  # no database configured here: nothing to check


def test_helm_values_take_the_database_password_from_a_secret():
    values = yaml.safe_load((REPO / "deploy" / "k8s" / "values.yaml").read_text())
    assert values["generatePostgresqlPasswordSecret"] is False
    secret = values["global"]["postgresqlSecretName"]
    assert values["postgresql"]["existingSecret"] == secret
    assert "postgresqlPassword" not in json.dumps(values)  # no password in the values
    assert values["dagsterWebserver"]["service"]["type"] == "ClusterIP"


def test_a_celery_broker_off_the_machine_needs_a_password(monkeypatch):
    from acav_assets.defs.platform.executors import celery_broker

    monkeypatch.setenv("ACAV_CELERY_BROKER", "redis://10.0.0.5:6379/0")
    with pytest.raises(ValueError, match="has no password"):
        celery_broker()
    monkeypatch.setenv("ACAV_CELERY_BROKER", "redis://:s3cret-pass@10.0.0.5:6379/0")
    assert celery_broker().endswith("@10.0.0.5:6379/0")
    monkeypatch.delenv("ACAV_CELERY_BROKER")
    assert celery_broker() == "redis://127.0.0.1:6379/0"  # unset: a broker on this machine


@pytest.mark.services
@pytest.mark.skipif(
    shutil.which("nginx") is None and not os.path.exists("/usr/sbin/nginx"), reason="nginx is not installed"
)
def test_the_ui_is_behind_a_password(tmp_path):
    """deploy/nginx/default.conf.template run by a real nginx in front of a local server: no
    password or a wrong one gets 401, the right one the upstream's page."""
    import base64
    import http.server
    import threading
    import urllib.error

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"dagster ui"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    port = free_port()
    hashed = subprocess.run(
        ["openssl", "passwd", "-apr1", "right-pass"], capture_output=True, text=True, check=True
    ).stdout.strip()
    (tmp_path / "htpasswd").write_text(f"admin:{hashed}\n")
    site = (REPO / "deploy" / "nginx" / "default.conf.template").read_text()
    site = (
        site.replace("${ACAV_UI_UPSTREAM}", f"127.0.0.1:{upstream.server_port}")
        .replace("listen 8080;", f"listen 127.0.0.1:{port};")
        .replace("/etc/nginx/htpasswd", str(tmp_path / "htpasswd"))
    )
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(
        ""
        # as root, nginx's workers would run as nobody, who cannot enter pytest's private tmp folder
        + ("user root;\n" if os.geteuid() == 0 else "")
        + f"pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log; events {{}}\n"
        f"http {{ access_log off; client_body_temp_path {tmp_path}/body; proxy_temp_path {tmp_path}/proxy;\n"
        f"fastcgi_temp_path {tmp_path}/fcgi; uwsgi_temp_path {tmp_path}/uwsgi; scgi_temp_path {tmp_path}/scgi;\n"
        f"include {tmp_path}/site.conf; }}\n"
    )
    nginx = subprocess.Popen(
        [
            shutil.which("nginx") or "/usr/sbin/nginx",
            "-p",
            str(tmp_path),
            "-c",
            str(tmp_path / "nginx.conf"),
            "-g",
            "daemon off;",
        ],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )

    def get(auth: str | None):
        req = urllib.request.Request(f"http://127.0.0.1:{port}/")
        if auth:
            req.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, b""

    try:
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                status = get(None)[0]
                break
            except OSError:
                assert nginx.poll() is None, nginx.stderr.read()
                time.sleep(0.1)
        assert status == 401
        assert get("admin:wrong-pass")[0] == 401
        assert get("admin:right-pass") == (200, b"dagster ui")
    finally:
        stop_processes(nginx, timeout=10)
        upstream.shutdown()
