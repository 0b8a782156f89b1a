"""From a batch landing to an updated subset: the daemon against ``acav curate``.

    .venv/bin/python benchmarks/daemon_latency.py [--videos 20] [--interval 30]

One landing area and warehouse, one Dagster instance. First ``acav curate`` curates a first
batch (centroids fitted, a subset selected). Then, each with a fresh batch of ``--videos``
generated videos written with its ``_READY`` marker:

- **in-process**: the ``acav curate`` command on the landing area (a fresh process, as a user
  runs it: the new batch is ingested, assigned and selected in it; the rest is up to date),
  timed from the command's start to its end;
- **daemon**: ``dg dev`` (webserver and daemon, what ``acav demo`` prints) already running on the
  same instance with ``ACAV_SENSOR_INTERVAL_S`` and ``ACAV_AUTOMATION_INTERVAL_S`` set to
  ``--interval``; timed from writing the batch's ``_READY`` to the subset's materialization that
  includes the batch (``selection_runs`` lists it), through the landing sensor's run: the batch
  is the only work, so ``ingest_and_select`` takes it from its files to the subset in one run.

Prints both times, the daemon's runs (queued to finished), and the ratio daemon / in-process
(goal <= 1.5). The daemon's share that is waiting for a tick is up to one sensor interval plus
one automation interval: the intervals are settings.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _selected_batches(wh_root: Path) -> set[str]:
    from acav_assets.core.warehouse.tables import Warehouse

    try:
        runs = Warehouse(str(wh_root)).read("selection_runs")
    except Exception:  # not written yet
        return set()
    return {b for bs in runs["batches"].to_list() for b in bs}


def _write_batch(landing: Path, name: str, n: int, seed: int) -> None:
    from acav_assets.core.generators.demo import write_demo_videos
    from acav_assets.core.media.landing import READY_MARKER

    write_demo_videos(landing / name, n, seed=seed)  # the demo's videos
    (landing / name / READY_MARKER).write_text("")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=int, default=20)
    ap.add_argument("--interval", type=int, default=30, help="sensor and automation interval, seconds")
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--profile", default=None, help="extractor profile (default: the platform's default)")
    args = ap.parse_args()

    import dagster as dg

    from acav_assets.cli import main as acav_main
    from acav_assets.cli import ui_command
    from acav_assets.defs.platform.resources import default_profile

    profile = args.profile or default_profile()  # before the tests' helpers set the tests' profile
    from acav_assets_tests.conftest import free_port, stop_processes

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        landing, wh, home = base / "landing", base / "wh", base / "home"
        curate = ["curate", str(landing), "--warehouse", str(wh), "--dagster-home", str(home), "--profile", profile]
        _write_batch(landing, "batch_001", args.videos, seed=1)
        assert acav_main(curate) == 0

        _write_batch(landing, "batch_002", args.videos, seed=2)
        t = time.perf_counter()  # the command as a user runs it: a fresh process
        subprocess.run(
            [str(Path(sys.executable).parent / "acav"), *curate],
            check=True,
            capture_output=True,
            env={k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"},
        )
        in_process = time.perf_counter() - t
        os.environ.pop("DAGSTER_HOME", None)  # acav_main exported it for this process

        port = free_port()
        env, argv = ui_command(home, landing, wh, profile=profile, port=port)
        env.update(
            ACAV_SENSOR_INTERVAL_S=str(args.interval),
            ACAV_AUTOMATION_INTERVAL_S=str(args.interval),
            ACAV_QUIET_PERIOD_S="0",
        )
        log = base / "dg_dev.log"
        with log.open("w") as out:
            proc = subprocess.Popen(
                argv, cwd=base, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            deadline = time.monotonic() + 180  # the daemon is up once the sensor has ticked once
            while "Sensor landing_sensor skipped" not in log.read_text():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"dg dev did not come up:\n{log.read_text()[-3000:]}")
                time.sleep(1)
            _write_batch(landing, "batch_003", args.videos, seed=3)
            t = time.perf_counter()
            while "batch_003" not in _selected_batches(wh):
                if proc.poll() is not None or time.perf_counter() - t > args.timeout:
                    raise SystemExit(f"batch_003 not selected after {args.timeout:g} s:\n{log.read_text()[-3000:]}")
                time.sleep(0.5)
            daemon = time.perf_counter() - t
        finally:
            stop_processes(proc, timeout=30)
        instance = dg.DagsterInstance.from_config(str(home))
        records = instance.get_run_records(dg.RunsFilter(created_after=None), limit=10)
        runs = []
        for r in sorted(records, key=lambda r: r.create_timestamp.timestamp()):
            if r.start_time and r.end_time and r.create_timestamp.timestamp() >= time.time() - daemon - 60:
                runs.append(
                    (
                        r.dagster_run.job_name,
                        r.dagster_run.tags.get("dagster/partition", ""),
                        round(r.end_time - r.create_timestamp.timestamp(), 1),
                    )
                )

    print(f"a batch of {args.videos} videos, profile {profile}, from landing to an updated subset:")
    print(f"  acav curate (in-process): {in_process:.1f} s")
    print(f"  daemon (dg dev, sensor and automation every {args.interval} s): {daemon:.1f} s")
    print("  daemon runs (job, partition, seconds from queued to finished): " + json.dumps(runs))
    print(f"  ratio daemon / in-process: {daemon / in_process:.2f} (goal <= 1.5)")


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
