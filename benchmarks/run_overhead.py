"""Where the time of a launched ingest run goes, and what the executor changes.

    .venv/bin/python benchmarks/run_overhead.py [--videos 20] [--repeats 2]

A daemon-launched run is a fresh process (`dagster api execute_run`: Python, Dagster, torch and
the code location imported) that hands each step to the job's executor. With the multiprocess
executor every step is one more fresh process paying the same imports; with the in-process
executor the steps run in the run's process. Measured here, on a batch of tiny generated
videos, with a persistent Dagster instance and a reconstructable job (what the daemon runs):

- the import cost a fresh process pays (`python -c "import acav_assets.defs"`), and a bare
  interpreter for comparison;
- the `ingest_batch` job (videos -> clips -> clip_embeddings) executed with each executor,
  through `dg.execute_job` (the same plan execution as a launched run, minus the launcher's own
  process start, which both executors pay once).

Prints the times and the ratio in-process / multiprocess (goal: well under 1).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg

from acav_assets.core.generators.demo import write_demo_videos


def _timed_process(code: str) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return time.perf_counter() - t


def _one_run(executor: str, n_videos: int, seed: int, tmp: Path) -> float:
    """Execute ``ingest_batch`` once for a new batch with ``executor``; seconds."""
    batch = f"b{seed}_{executor}"
    landing = tmp / "landing"
    write_demo_videos(landing / batch, n_videos, seed=seed)
    os.environ.update(ACAV_LANDING=str(landing), ACAV_EXECUTOR=executor, ACAV_WAREHOUSE=str(tmp / f"wh_{executor}"))
    home = tmp / f"home_{executor}"
    home.mkdir(exist_ok=True)
    instance = dg.DagsterInstance.from_config(str(home))
    instance.add_dynamic_partitions("batches", [batch])
    from acav_assets.defs.runner import ingest_job_from_env

    t = time.perf_counter()
    result = dg.execute_job(
        dg.reconstructable(ingest_job_from_env), instance=instance, tags={"dagster/partition": batch}
    )
    seconds = time.perf_counter() - t
    if not result.success:
        raise RuntimeError(f"ingest run failed with {executor}")
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--videos", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--one", default="", help=argparse.SUPPRESS)  # internal: time one run, print seconds
    ap.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--tmp", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ.setdefault("ACAV_PROFILE", "weightfree")
    if args.one:
        print(_one_run(args.one, args.videos, args.seed, Path(args.tmp)))
        return
    bare = statistics.median(_timed_process("pass") for _ in range(3))
    imports = statistics.median(_timed_process("import acav_assets.defs") for _ in range(3))
    print(
        f"# run overhead: {args.videos} tiny videos per batch, profile {os.environ['ACAV_PROFILE']}, "
        f"{os.cpu_count()} cores\n"
    )
    print(
        f"fresh process: bare python {bare:.2f} s, `import acav_assets.defs` {imports:.2f} s "
        f"(paid once per launched run, and once more per step with the multiprocess executor)\n"
    )
    times: dict[str, list[float]] = {"multiprocess": [], "in_process": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for executor in times:  # each in a fresh process: Dagster caches a reconstructed job
                out = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--one",
                        executor,
                        "--videos",
                        str(args.videos),
                        "--seed",
                        str(r),
                        "--tmp",
                        tmp,
                    ],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                times[executor].append(float(out.stdout.strip().splitlines()[-1]))
    print("| executor | ingest run s (median) | per run |")
    print("|---|---|---|")
    for executor, ts in times.items():
        print(f"| {executor} | {statistics.median(ts):.1f} | {', '.join(f'{t:.1f}' for t in ts)} |")
    ratio = statistics.median(times["in_process"]) / statistics.median(times["multiprocess"])
    print(f"\nratio in_process / multiprocess: {ratio:.2f}")


if __name__ == "__main__":
    main()
