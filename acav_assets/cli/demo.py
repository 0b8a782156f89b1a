"""``acav demo`` (the demo corpus, curated end to end, then the command that opens the UI on it)
and ``acav demo-data`` (generated videos with a planted correspondence, one folder per batch)."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
import zlib
from pathlib import Path

from acav_assets.cli import curate

__all__ = ["add_parsers", "run_demo", "run_demo_data", "ui_command"]


def add_parsers(sub) -> None:
    from acav_assets.core.selection import DEFAULT_PAIRING, PAIRINGS

    demo = sub.add_parser("demo", help="generate the demo corpus, curate it end to end, print a summary")
    demo.add_argument("--dir", default="demo", help="where the demo's landing area, warehouse and Dagster home go")
    demo.add_argument("--videos", type=int, default=200)
    demo.add_argument(
        "--budget",
        type=float,
        default=0.5,
        help="share to select; the demo plants 50%% matching clips, so 0.5 asks for exactly those "
        "(precision = recall, the paper's correspondence-retrieval protocol)",
    )
    demo.add_argument("--pairing", choices=PAIRINGS, default=DEFAULT_PAIRING)
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=run_demo)

    data = sub.add_parser("demo-data", help="write generated videos with a planted audio-visual correspondence")
    data.add_argument("dir")
    data.add_argument("--videos", type=int, default=200)
    data.add_argument("--batches", type=int, default=2)
    data.add_argument("--matched", type=float, default=0.5, help="share of videos whose sound matches")
    data.add_argument("--seed", type=int, default=0)
    data.add_argument("--bad", action="store_true", help="also write a batch of bad inputs")
    data.add_argument(
        "--batch",
        default=None,
        help="write one batch of this name (with its _READY marker) "
        "into a landing area; an existing batch is never overwritten",
    )
    data.set_defaults(func=run_demo_data)


def run_demo_data(args: argparse.Namespace) -> int:
    from acav_assets.core.generators.bad_inputs import write_bad_inputs
    from acav_assets.core.generators.demo import write_demo_videos
    from acav_assets.core.media.landing import READY_MARKER
    from acav_assets.core.warehouse.tables import validate_batch_key

    out = Path(args.dir)
    batch = getattr(args, "batch", None)
    n_batches = 1 if batch else args.batches
    if n_batches < 1 or args.videos < n_batches:
        raise ValueError("need at least one video per batch")
    if batch:
        try:
            validate_batch_key(batch)
        except ValueError as exc:
            raise ValueError(f"--batch: {exc}") from None
    names = [batch] if batch else [f"batch_{i + 1:03d}" for i in range(n_batches)]
    for name in names + (["batch_bad_inputs"] if args.bad else []):  # before anything is written
        if (out / name).exists():
            raise ValueError(f"{out / name} exists: demo-data never overwrites a batch (name another with --batch)")
    per = [args.videos // n_batches + (i < args.videos % n_batches) for i in range(n_batches)]
    t = time.perf_counter()
    for i, (name, n) in enumerate(zip(names, per)):
        folder = out / name
        # a named batch draws its own videos (the seed of batch_001 would write batch_001's again:
        # every video an exact copy of one already landed)
        seed = zlib.crc32(f"{args.seed}/{name}".encode()) if batch else args.seed * 1000 + i
        vids = write_demo_videos(folder, n, matched_fraction=args.matched, seed=seed)
        (folder / READY_MARKER).write_text("")  # written last: the landing sensor takes the batch at once
        print(f"{folder}: {len(vids)} videos, {sum(v.matched for v in vids)} with matching sound")
    if args.bad:
        expected = write_bad_inputs(out / "batch_bad_inputs", seed=args.seed)
        (out / "batch_bad_inputs" / READY_MARKER).write_text("")
        print(
            f"{out / 'batch_bad_inputs'}: {len(expected)} bad or unusual inputs (expected statuses in bad_inputs.json)"
        )
    print(f"wrote {sum(per)} videos in {time.perf_counter() - t:.1f} s")
    return 0


def ui_command(
    home: Path, landing: Path, warehouse: Path, *, profile: str, port: int = 3000
) -> tuple[dict[str, str], list[str]]:
    """The environment and command that open the Dagster UI (webserver and daemon) on a
    curation's runs and tables: ``dg dev`` on this project (its ``[tool.dg]`` settings), from
    any directory; ``dagster dev -m acav_assets.defs`` when the package is installed without
    its project folder."""
    env = {
        "DAGSTER_HOME": str(home),
        "ACAV_LANDING": str(landing),
        "ACAV_WAREHOUSE": str(warehouse),
        "ACAV_PROFILE": profile,
    }
    bindir, project = Path(sys.executable).parent, Path(__file__).resolve().parents[2]
    if (project / "pyproject.toml").is_file() and (bindir / "dg").is_file():
        return env, [str(bindir / "dg"), "dev", "--target-path", str(project), "-h", "127.0.0.1", "-p", str(port)]
    return env, [str(bindir / "dagster"), "dev", "-m", "acav_assets.defs", "-h", "127.0.0.1", "-p", str(port)]


def run_demo(args: argparse.Namespace) -> int:
    base = Path(args.dir).resolve()
    landing, warehouse, home = base / "landing", base / "warehouse", base / "dagster_home"
    if not landing.is_dir() or not any(landing.iterdir()):
        print(f"generating {args.videos} demo videos in 2 batches under {landing}")
        run_demo_data(
            argparse.Namespace(dir=str(landing), videos=args.videos, batches=2, matched=0.5, seed=args.seed, bad=False)
        )
    else:
        print(f"using the demo videos already in {landing}")
    print(f"\ncurating {landing} into {warehouse}")
    rc = curate.run(
        argparse.Namespace(
            landing=str(landing),
            warehouse=str(warehouse),
            budget=args.budget,
            pairing=args.pairing,
            seed=args.seed,
            refine=50,
            batch_size=20,
            k=0,
            max_clips=1,
            profile="weightfree",
            device="auto",
            extractor_options="{}",
            batches=None,
            dagster_home=str(home),
            full=False,
        )
    )
    env, argv = ui_command(home, landing, warehouse, profile="weightfree")
    print(f"""
Open the Dagster UI on this demo, from any directory (then browse http://127.0.0.1:3000):

  {" ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())} {shlex.join(argv)}

You will see the asset graph (videos -> clips -> clip_embeddings and clip_sync -> cluster_centroids ->
cluster_assignments -> curated_subset -> selection_lineage, and curated_clips, the export,
materialized on request), one partition per batch folder, the runs this command made, each
table's schema, row counts and preview, the status counts of the videos (near-duplicates
included), the objective and per-batch split of the subset, and the asset checks' results.

Training data from the subset (WebDataset shards of the exact clips + a manifest):

  .venv/bin/acav export --warehouse {warehouse} --landing {landing} --out {warehouse.parent / "export"}""")
    return rc
