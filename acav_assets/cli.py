"""The ``acav`` command: thin wrappers over ``acav_assets.core`` and the Dagster definitions.

acav demo [--dir demo]                      generate the demo corpus, curate it, summarise
acav demo-data DIR [--videos 200]           write generated videos (one folder per batch)
acav curate LANDING --warehouse DIR [...]   run every asset for every batch through Dagster
acav explain CLIP_ID --warehouse DIR        why a clip was selected, or not
acav report --warehouse DIR --out DIR       summary tables and a heatmap
acav subset --warehouse DIR [--as-of V|T]   the curated subset, now or earlier (Delta time travel)
acav bench correspondence [--videos 300] [--corpus demo,digits] [--profile weightfree]
                                            correspondence-retrieval benchmark (quality)
acav select-demo                            the selector alone on generated cluster labels
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np


def _cmd_demo_data(args: argparse.Namespace) -> int:
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
        vids = write_demo_videos(folder, n, matched_fraction=args.matched, seed=args.seed * 1000 + i)
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


def _ground_truth(landing: Path, batches: list[str]) -> dict[str, bool]:
    from acav_assets.core.generators.demo import read_ground_truth

    truth = {}
    for b in batches:
        f = landing / b / "ground_truth.csv"
        if f.is_file():
            truth.update({f"{b}/{name}": v.matched for name, v in read_ground_truth(f).items()})
    return truth


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
    bindir, project = Path(sys.executable).parent, Path(__file__).resolve().parents[1]
    if (project / "pyproject.toml").is_file() and (bindir / "dg").is_file():
        return env, [str(bindir / "dg"), "dev", "--target-path", str(project), "-h", "127.0.0.1", "-p", str(port)]
    return env, [str(bindir / "dagster"), "dev", "-m", "acav_assets.defs", "-h", "127.0.0.1", "-p", str(port)]


def _instance(dagster_home: str | None, default_home: Path | None = None):
    """The Dagster instance runs are recorded in: ``--dagster-home``, else ``$DAGSTER_HOME``, else
    ``default_home``, else an ephemeral one."""
    import dagster as dg

    def prepared(home: Path) -> Path:
        home.mkdir(parents=True, exist_ok=True)
        config = home / "dagster.yaml"
        if not config.exists():  # a new home: no telemetry (nothing leaves the machine)
            config.write_text("telemetry:\n  enabled: false\n")
        return home

    home = dagster_home or os.environ.get("DAGSTER_HOME")
    if not home and default_home is not None:  # not exported: the process environment stays as it was
        return dg.DagsterInstance.from_config(str(prepared(default_home))), str(default_home)
    if not home:
        return dg.DagsterInstance.ephemeral(), None
    prepared(Path(home))
    os.environ["DAGSTER_HOME"] = str(Path(home).resolve())
    return dg.DagsterInstance.get(), os.environ["DAGSTER_HOME"]


#: The run-config fields ``acav curate`` sets, by the option that sets them.
_CURATE_FLAGS = {
    ("curated_subset", "budget"): "--budget",
    ("curated_subset", "batch_size"): "--batch-size",
    ("curated_subset", "refine"): "--refine",
    ("curated_subset", "dedup_cosine"): "--dedup-cosine",
    ("curated_subset", "seed"): "--seed",
    ("curated_subset", "refinement"): "--refinement",
    ("cluster_centroids", "k"): "--k",
    ("cluster_centroids", "seed"): "--seed",
    ("clips", "max_clips"): "--max-clips",
}


#: What each resource's settings are called on the command line.
_RESOURCE_FLAGS = {
    "extractors": "--extractor-options",
    "compute": "--device",
    "warehouse": "--warehouse",
    "landing": "--allow-link-root",
}
#: The selection settings ``acav curate`` takes (unset: the warehouse's).
_SELECTION_OPTIONS = ("budget", "pairing", "seed", "refine", "batch_size", "dedup_cosine", "refinement")


def _check_curate_settings(run_config: dict, resources: dict) -> None:
    """Every option of ``acav curate`` validated before anything is created; the error names
    the option."""
    from acav_assets.core.features.profiles import profile_entries
    from acav_assets.defs.assets import SettingError
    from acav_assets.defs.runner import check_settings

    try:
        profile_entries(resources["extractors"].profile)
    except ValueError as exc:
        raise ValueError(f"--profile: {exc}") from None
    try:
        check_settings(run_config, resources)
    except SettingError as exc:
        flag = _CURATE_FLAGS.get((exc.op, exc.field)) or _RESOURCE_FLAGS.get(exc.op)
        raise ValueError(f"{flag}: {exc.problem}" if flag else str(exc)) from None


def _cmd_curate(args: argparse.Namespace) -> int:
    import polars as pl

    from acav_assets.core.media.landing import is_remote
    from acav_assets.core.warehouse.report import latest_run
    from acav_assets.core.warehouse.tables import Warehouse
    from acav_assets.defs.resources import json_from_env
    from acav_assets.defs.runner import curate_landing, resources_for

    remote = is_remote(args.landing)
    landing = Path(args.landing)
    if not remote and not landing.is_dir():
        raise ValueError(f"landing folder {landing} does not exist")
    landing_root = args.landing if remote else str(landing.resolve())
    # object-store options come from the environment, as in the Dagster deployment
    wh_opts = {k: str(v) for k, v in json_from_env("ACAV_WAREHOUSE_STORAGE_OPTIONS").items()}
    if (
        args.budget is not None
        and not 0 < args.budget <= 1
        and not (args.budget > 1 and float(args.budget).is_integer())
    ):
        raise ValueError(f"--budget must be a share in (0, 1] or a whole number of clips, got {args.budget}")
    if not args.warehouse.strip():
        raise ValueError("the warehouse root is empty: give a folder or an object-store URI")
    warehouse = str(Path(args.warehouse).resolve()) if "://" not in args.warehouse else args.warehouse
    # selection settings not given continue with the warehouse's (those its subset was made with)
    given = {k: getattr(args, k) for k in _SELECTION_OPTIONS if getattr(args, k, None) is not None}
    run_config = {
        "ops": {
            "curated_subset": {"config": given},
            "cluster_centroids": {"config": {"k": args.k, **({"seed": args.seed} if args.seed is not None else {})}},
            "clips": {"config": {"max_clips": args.max_clips}},
        }
    }
    from acav_assets.core.warehouse.local_state import check_free_space, check_writable_folder, local_state_dir

    resources = resources_for(
        landing_root,
        warehouse,
        profile=args.profile,
        device=args.device,
        extractor_options=args.extractor_options,
        storage_options=wh_opts,
        landing_storage_options=json_from_env("ACAV_LANDING_STORAGE_OPTIONS"),
        landing_cache=os.environ.get("ACAV_LANDING_CACHE", ""),
        allowed_link_roots=[str(Path(r).resolve()) for r in getattr(args, "allow_link_root", [])],
    )
    _check_curate_settings(run_config, resources)  # before anything is written
    if args.dagster_home:
        check_writable_folder(args.dagster_home, "--dagster-home")
        check_free_space(args.dagster_home, "--dagster-home")
    if "://" not in warehouse:
        check_free_space(warehouse, "--warehouse")
    # the data versions that let a re-run skip what is up to date: <warehouse>/_dagster, or for an
    # object-store warehouse a home in this machine's cache
    instance, home = _instance(args.dagster_home, local_state_dir(warehouse, "_dagster"))
    os.environ.setdefault("ACAV_PROGRESS", "1")  # progress bars on a terminal (steps run in this process)
    t = time.perf_counter()
    report = curate_landing(
        landing_root,
        warehouse,
        instance=instance,
        batches=args.batches,
        full=args.full,
        run_config=run_config,
        log=lambda m: print(f"  {m}", flush=True),
        echo_warnings=True,
        resources=resources,
    )
    elapsed = time.perf_counter() - t
    wh = Warehouse(warehouse, wh_opts or None)
    vids = wh.read("videos").filter(pl.col("batch").is_in(report.batches))
    print(f"\ncurated {len(report.batches)} batch(es) in {elapsed:.1f} s through {len(report.runs)} Dagster runs")
    if report.skipped:
        print(
            f"up to date, not re-run ({len(report.skipped)} steps; --full redoes everything): "
            + "; ".join(report.skipped)
        )
    print("\nvideos by status:")
    for (batch,), g in sorted(vids.group_by(["batch"]), key=lambda kv: kv[0]):
        counts = dict(g.group_by("status").len().sort("status").iter_rows())
        print(f"  {batch}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    if report.waiting:
        print(f"\nclustering and selection wait: {report.waiting}")
        return 0
    clusters = wh.read("cluster_centroids").group_by("feature_space").agg(pl.col("k").first()).sort("feature_space")
    print(
        f"\nclusterings: {clusters.height} feature spaces, k = "
        + ", ".join(sorted({str(k) for k in clusters["k"].to_list()}))
    )
    subset = wh.read("curated_subset").sort("rank")
    # The summary reads the selection run the subset came from: a re-run with nothing new ends
    # in an "unchanged" materialization that carries no pool size or objective of its own.
    meta = report.materializations.get("curated_subset", {}).get("", {})
    run = latest_run(wh)
    mode = meta.get("mode", "full") if meta else "up to date, not re-run"
    used = json.loads(run["params"])
    held = [k for k in _SELECTION_OPTIONS if k not in given]
    print(
        f"\ncurated_subset ({mode}): {subset.height} of {run['pool_size']} clips (budget {used['budget']:g}, pairing "
        f"{used.get('pairing')}), objective {run['objective']:.4f} nats"
        + (
            ""
            if given.keys() >= {"budget", "pairing"}
            else f"\n  settings not given here ({', '.join(held)}): the warehouse's, those its subset was made with"
        )
    )
    if json.loads(run["params"]).get("dedup_cosine"):
        print(
            f"  semantic dedup: {run.get('semantic_duplicates') or 0} clip(s) left out of the pool as copies "
            f"(table semantic_duplicates)"
        )
    by_batch = dict(subset.group_by("batch").len().sort("batch").iter_rows())
    print("  by batch: " + ", ".join(f"{k} {v}" for k, v in by_batch.items()))
    # the exit code follows ERROR-severity checks; a WARN (e.g. a pool too small to judge) is shown
    failed, warned = report.failed_checks(), report.warned_checks()
    print(
        (
            f"  asset checks: {sum(report.checks.values())}/{len(report.checks)} passed"
            if report.checks
            else "  asset checks: none ran (nothing was re-run)"
        )
        + (f"; FAILED: {', '.join(failed)}" if failed else "")
        + (f"; WARNED (not judged or not serious): {', '.join(warned)}" if warned else "")
    )
    for batch, why in sorted(report.blocked.items()):
        print(f"  batch {batch} NOT ASSIGNED (left out of the selection): {why}")
    truth = {} if remote else _ground_truth(landing, report.batches)
    if truth:
        chosen = [truth[p] for p in subset["path"].to_list() if p in truth]
        clips = wh.read("clips").filter(pl.col("batch").is_in(report.batches))
        pool = [truth[p] for p in clips["path"].to_list() if p in truth]
        print(
            f"  precision (ground truth): {np.mean(chosen):.3f} of the selected clips have matching sound "
            f"(pool: {np.mean(pool):.3f}, what a random subset gets)"
        )
    print(f"\ntables: {warehouse}/<table> (Delta Lake)")
    if home:
        print(f"runs recorded in DAGSTER_HOME={home}")
    return 0 if not failed and not report.blocked else 1


def _cmd_demo(args: argparse.Namespace) -> int:
    base = Path(args.dir).resolve()
    landing, warehouse, home = base / "landing", base / "warehouse", base / "dagster_home"
    if not landing.is_dir() or not any(landing.iterdir()):
        print(f"generating {args.videos} demo videos in 2 batches under {landing}")
        _cmd_demo_data(
            argparse.Namespace(dir=str(landing), videos=args.videos, batches=2, matched=0.5, seed=args.seed, bad=False)
        )
    else:
        print(f"using the demo videos already in {landing}")
    print(f"\ncurating {landing} into {warehouse}")
    rc = _cmd_curate(
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

You will see the asset graph (videos -> clips -> clip_embeddings -> cluster_centroids ->
cluster_assignments -> curated_subset -> selection_lineage, and curated_clips, the export,
materialized on request), one partition per batch folder, the runs this command made, each
table's schema, row counts and preview, the status counts of the videos (near-duplicates
included), the objective and per-batch split of the subset, and the asset checks' results.

Training data from the subset (WebDataset shards of the exact clips + a manifest):

  .venv/bin/acav export --warehouse {warehouse} --landing {landing} --out {warehouse.parent / "export"}""")
    return rc


def _existing_warehouse(root: str):
    from acav_assets.core.warehouse.tables import Warehouse

    if "://" not in root and not Path(root).is_dir():
        raise ValueError(f"warehouse {root} does not exist (run `acav curate ... --warehouse {root}` first)")
    return Warehouse(root)


def _cmd_explain(args: argparse.Namespace) -> int:
    from acav_assets.core.warehouse.report import explain_clip

    facts = explain_clip(_existing_warehouse(args.warehouse), args.clip_id)
    if args.json:
        print(json.dumps(facts, indent=1))
        return 0
    print(
        f"{facts['clip_id']}  ({facts['path']} [{facts['window'][0]:g}, {facts['window'][1]:g}) s, batch {facts['batch']})"
    )
    print(f"selection {facts['selection_id']}: pairing {facts['pairing']}, objective {facts['objective']:.4f} nats")
    ref = facts["refinement"]
    if ref.get("rule") == "agreement":
        print(
            f"refinement: agreement, {ref.get('swaps', 0)} clip(s) exchanged"
            + (f" ({ref['note']})" if ref.get("note") else "")
        )
    if "clusters" in facts:
        print("clusters: " + ", ".join(f"{fs} {c}" for fs, c in facts["clusters"].items()))
    if facts["selected"]:
        print(
            f"SELECTED at rank {facts['rank']} (step {facts['step']}), gain when chosen {facts['gain_when_chosen']:+.5f}; "
            f"removing it now would change the objective by {-facts['loss_if_removed_now']:+.5f}"
        )
        if facts.get("agreement") is not None:
            how = "exchanged in by the agreement refinement" if facts["chosen_by"] == "agreement" else "chosen by MI"
            print(f"{how}; sound-picture agreement {facts['agreement']:+.2f} (label-free, standardised)")
        print("cells it sits in, strongest first:")
        for c in facts["cells"]:
            print(
                f"  {c['pair'][0]} x {c['pair'][1]} cell {tuple(c['cell'])}: {c['selected_in_cell']} selected of "
                f"{c['pool_in_cell']} in the pool, contributes {c['mi_contribution']:.4f}"
            )
    elif "gain_if_added_now" in facts:
        print(
            f"NOT SELECTED: adding it now would change the objective by {facts['gain_if_added_now']:+.5f}; the weakest "
            f"selected clip ({facts['weakest_selected']}) adds {facts['bar_to_beat']:+.5f} (removing it would change "
            f"the objective by {-facts['bar_to_beat']:+.5f})"
        )
    else:
        print(f"NOT SELECTED: {facts['reason']}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from acav_assets.core.warehouse.report import write_report

    paths = write_report(_existing_warehouse(args.warehouse), args.out)
    print(f"wrote {paths['report']} and {paths['heatmap']}")
    return 0


def _cmd_maintain(args: argparse.Namespace) -> int:
    from acav_assets.core.warehouse.maintenance import maintain

    report = maintain(
        _existing_warehouse(args.warehouse),
        retain_hours=args.retain_hours,
        tables=args.tables.split(",") if args.tables else None,
        dry_run=args.dry_run,
    )
    for r in report.tables:
        print(
            f"{r.table}: {r.files_before} -> {r.files_after} active files, "
            f"{r.files_removed} old file(s) {'would be ' if args.dry_run else ''}removed"
        )
    if report.index_retired is not None:
        print(
            f"video fingerprint index: {report.index_retired} retired video(s) "
            f"{'would be ' if args.dry_run else ''}dropped"
        )
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from acav_assets.core.media.landing import Landing
    from acav_assets.core.stages.curated_clips import export_curated
    from acav_assets.core.warehouse.local_state import check_writable_folder
    from acav_assets.defs.assets import CuratedClipsConfig
    from acav_assets.defs.progress import Progress
    from acav_assets.defs.resources import json_from_env

    os.environ.setdefault("ACAV_PROGRESS", "1")
    wh = _existing_warehouse(args.warehouse)
    check_writable_folder(args.out, "--out")
    cfg = CuratedClipsConfig(
        shard_max_mb=args.shard_mb,
        shard_max_clips=args.shard_clips,
        workers=args.workers,
        crf=args.crf,
        preset=args.preset,
        fps=args.fps,
        short_side=args.short_side,
        sample_rate=args.sample_rate,
        with_arrays=args.with_arrays,
    ).export_config()
    landing = Landing(
        args.landing,
        json_from_env("ACAV_LANDING_STORAGE_OPTIONS"),
        os.environ.get("ACAV_LANDING_CACHE") or None,
        allowed_link_roots=[str(Path(r).resolve()) for r in args.allow_link_root],
    )
    report = export_curated(
        wh,
        landing,
        args.out,
        as_of=args.as_of,
        config=cfg,
        progress=Progress(lambda m: None, "exporting", "clip"),
        on_shard=lambda name, n, size: print(f"  wrote {name}: {n} clips, {size / 1e6:.1f} MB", flush=True),
        log=lambda m: print(f"  {m}", flush=True),
    )
    print(
        f"exported selection {report.selection_id} (curated_subset version {report.subset_version}): "
        f"{report.written} clip(s) written in {len(report.shards_written)} new shard(s), "
        f"{report.already} already exported, {len(report.failed)} failed "
        f"({report.bytes_written / 1e6:.1f} MB, {report.clips_per_second:.1f} clips/s)"
    )
    for cid, why in sorted(report.failed.items())[:20]:
        print(f"  not exported: {cid}: {why}")
    if report.stale:
        print(
            f"  note: {report.stale} sample(s) in these shards belong to an earlier selection (in_selection = false "
            f"in the manifest); export a new selection into a new folder to leave them out"
        )
    print(f"manifest: {Path(args.out) / 'manifest.parquet'} (and manifest.csv; table export_manifest)")
    return 0 if not report.failed else 1


def _cmd_subset(args: argparse.Namespace) -> int:
    from acav_assets.core.warehouse.report import subset_as_of

    wh = _existing_warehouse(args.warehouse)
    if args.as_of is None:
        df, label = wh.read("curated_subset").sort("rank"), f"version {wh.version('curated_subset')} (latest)"
    else:
        df, label = subset_as_of(wh, args.as_of)
    df = df.select("rank", "clip_id", "path", "start_s", "end_s", "gain", "batch", "selection_id")
    if args.csv:
        df.write_csv(args.csv)
        print(f"wrote {df.height} rows of curated_subset as of {label} to {args.csv}")
    else:
        print(f"curated_subset as of {label}: {df.height} clips")
        with __import__("polars").Config(tbl_rows=args.limit, tbl_width_chars=160, fmt_str_lengths=60):
            print(df.head(args.limit))
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from acav_assets.core.evaluation.correspondence import format_table, run_planted, run_videos

    if not 0 < args.mismatch < 1:
        raise ValueError(f"--mismatch must be in (0, 1), got {args.mismatch}")

    def log(m: str) -> None:
        print(f"  {m}", file=sys.stderr, flush=True)

    t = time.perf_counter()
    print(
        f"# Correspondence retrieval: {args.mismatch:.0%} of the pairs broken, select as many clips as truly "
        f"correspond (precision = recall), {args.seeds} seeds\n"
    )
    if args.planted:
        print(
            format_table(
                f"(a) planted cluster assignments, n = {args.planted:,} (selection alone)",
                run_planted(args.planted, args.seeds, args.mismatch, log),
            )
            + "\n",
            flush=True,
        )
    if args.videos:
        ks = tuple(int(k) for k in args.ks.split(","))
        options = json.loads(args.extractor_options) if args.extractor_options else None
        for part, corpus in enumerate(args.corpus.split(",")):
            rows, nmis = run_videos(
                args.videos,
                args.seeds,
                args.mismatch,
                ks=ks,
                n_clean=args.clean,
                log=log,
                corpus=corpus,
                profile=args.profile,
                extractor_options=options,
            )
            what = {
                "demo": "our demo generator",
                "digits": "written and spoken digits (classes we did not design)",
                "photos": "real photographs and recorded sounds (material we did not make)",
                "stamps": "real photographs and recordings, several per class (Tux Paint, GCompris)",
            }[corpus]
            print(
                format_table(
                    f"({chr(98 + part)}) {corpus} corpus, {what}: {args.videos} videos per seed, profile "
                    f"{args.profile} (+ {args.clean} clean videos for the baselines' training)",
                    rows,
                )
                + "\n"
            )
            print(
                format_table(
                    f"NMI of each feature space's clustering (automatic k) against its modality's class, "
                    f"{corpus} corpus",
                    nmis,
                    method="feature space",
                    metric="NMI",
                )
                + "\n",
                flush=True,
            )
    print(f"\n({time.perf_counter() - t:.0f} s)")
    return 0


def _cmd_select_demo(args: argparse.Namespace) -> int:
    """Select from generated cluster assignments with a planted correspondence."""
    from acav_assets.core.generators.planted import planted_assignments, precision
    from acav_assets.core.selection import mean_mutual_information, select_subset

    pa = planted_assignments(args.clips, matched_fraction=args.matched, seed=args.seed)
    print(f"{args.clips:,} clips, {pa.labels.shape[1]} clusterings, {pa.matched.mean():.0%} with matching sound")
    t = time.perf_counter()
    sel = select_subset(pa.labels, args.budget, pairing=args.pairing, modalities=pa.modalities, seed=args.seed)
    dt = time.perf_counter() - t
    rand = np.random.default_rng(args.seed).choice(args.clips, len(sel), replace=False)
    print(f"selected {len(sel):,} clips in {dt:.2f} s, pairing {args.pairing}")
    print(
        f"  objective (mean MI, nats): {sel.objective:.4f}   random subset: "
        f"{mean_mutual_information(pa.labels, rand, pairing=args.pairing, modalities=pa.modalities):.4f}"
    )
    print(f"  precision: {precision(sel.indices, pa.matched):.3f}   random subset: {precision(rand, pa.matched):.3f}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from acav_assets.core.selection import DEFAULT_PAIRING, PAIRINGS
    from acav_assets.core.stages.agreement import REFINEMENTS
    from acav_assets.core.stages.curation import SelectionParams

    parser = argparse.ArgumentParser(prog="acav", description="Curate audio-visual datasets by audio-visual MI.")
    sub = parser.add_subparsers(dest="command", required=True)

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
    demo.set_defaults(func=_cmd_demo)

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
    data.set_defaults(func=_cmd_demo_data)

    cur = sub.add_parser("curate", help="run every asset for every batch folder through Dagster")
    cur.add_argument(
        "landing",
        help="folder or URI (s3://bucket/prefix) with one sub-folder of videos per batch; object-store options from ACAV_LANDING_STORAGE_OPTIONS / ACAV_WAREHOUSE_STORAGE_OPTIONS (JSON)",
    )
    cur.add_argument("--warehouse", required=True, help="folder (or URI) for the Delta tables")
    held = " (default: the warehouse's current setting, the one its subset was made with; else {})"
    cur.add_argument(
        "--budget",
        type=float,
        default=None,
        help="share of the pool in (0, 1], or a number of clips" + held.format(SelectionParams.budget),
    )
    cur.add_argument(
        "--pairing", choices=PAIRINGS, default=None, help="clustering pairs" + held.format(DEFAULT_PAIRING)
    )
    cur.add_argument(
        "--profile",
        default=None,
        help="extractor profile: weightfree, packaged, reference, clip-clap, clip-ast, pretrained "
        "(join with '+'; see docs/embeddings.md); default: $ACAV_PROFILE, else packaged+weightfree+structure",
    )
    cur.add_argument("--extractor-options", default="{}", help='JSON, e.g. {"audio/vggish": {"weights": "vggish.pt"}}')
    cur.add_argument("--device", default="auto")
    cur.add_argument("--k", type=int, default=0, help="clusters per feature space (0: automatic, at most 32)")
    cur.add_argument(
        "--refine",
        type=int,
        default=None,
        help="swap-refinement rounds (0: reference greedy only)" + held.format(SelectionParams.refine),
    )
    cur.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="greedy candidates per step (0: exact greedy)" + held.format(SelectionParams.batch_size),
    )
    cur.add_argument(
        "--refinement",
        choices=REFINEMENTS,
        default=None,
        help="after the MI search: agreement (label-free sound-picture agreement exchanges the worst "
        "picks) or none" + held.format(SelectionParams.refinement),
    )
    cur.add_argument("--max-clips", type=int, default=1, help="clips per video (> 1: on distinct shots)")
    cur.add_argument(
        "--dedup-cosine",
        type=float,
        default=None,
        help="semantic dedup before selection: leave out clips at this cosine to an earlier clip of "
        "the same clusters in every feature space (0: off; e.g. 0.99)" + held.format(0),
    )
    cur.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed of the selection (and of a first k-means fit)" + held.format(SelectionParams.seed),
    )
    cur.add_argument(
        "--batches",
        type=lambda s: [b for b in s.split(",") if b],
        default=None,
        help="comma-separated batch folders (default: all)",
    )
    cur.add_argument(
        "--dagster-home",
        default=None,
        help="record runs in this Dagster instance (default: $DAGSTER_HOME, "
        "else <warehouse>/_dagster for a local warehouse, else none)",
    )
    cur.add_argument(
        "--allow-link-root",
        action="append",
        default=[],
        metavar="FOLDER",
        help="a folder outside the landing area that links in it may point into (repeatable); "
        "any other link out of it gets status outside_landing and is never read",
    )
    cur.add_argument("--full", action="store_true", help="redo every step, even those that are up to date")
    cur.set_defaults(func=_cmd_curate)

    exp = sub.add_parser("explain", help="why a clip was selected, or not")
    exp.add_argument("clip_id")
    exp.add_argument("--warehouse", required=True)
    exp.add_argument("--json", action="store_true", help="print the facts as JSON")
    exp.set_defaults(func=_cmd_explain)

    rep = sub.add_parser("report", help="summary tables and a heatmap of the strongest clustering pair")
    rep.add_argument("--warehouse", required=True)
    rep.add_argument("--out", default="acav_report", help="folder for report.md and heatmap.png")
    rep.set_defaults(func=_cmd_report)

    mnt = sub.add_parser("maintain", help="compact the tables and vacuum files older than the retention")
    mnt.add_argument("--warehouse", required=True)
    mnt.add_argument(
        "--retain-hours",
        type=float,
        default=168.0,
        help="keep files that versions of the last N hours need (time travel reaches that far)",
    )
    mnt.add_argument("--tables", default="", help="comma-separated tables (default: all)")
    mnt.add_argument("--dry-run", action="store_true", help="say what the vacuum would remove; change nothing")
    mnt.set_defaults(func=_cmd_maintain)

    ex = sub.add_parser(
        "export",
        help="write the curated clips as WebDataset shards (exact re-encoded clips + JSON) "
        "and a manifest; incremental and resumable",
    )
    ex.add_argument("--warehouse", required=True)
    ex.add_argument("--landing", required=True, help="the landing area the videos were curated from (folder or URI)")
    ex.add_argument("--out", required=True, help="export folder (shards, manifest.parquet, manifest.csv)")
    ex.add_argument(
        "--allow-link-root",
        action="append",
        default=[],
        metavar="FOLDER",
        help="a folder outside the landing area its links may point into (as given to acav curate)",
    )
    ex.add_argument("--as-of", default=None, help="export curated_subset as of a Delta version or ISO time")
    ex.add_argument("--shard-mb", type=int, default=1000, help="close a shard at this size")
    ex.add_argument("--shard-clips", type=int, default=0, help="... or at this many clips (0: no limit)")
    ex.add_argument("--workers", type=int, default=0, help="encoding processes (0: one per core)")
    ex.add_argument("--crf", type=int, default=23, help="H.264 quality (lower: better, larger)")
    ex.add_argument("--preset", default="veryfast", help="x264 speed preset")
    ex.add_argument("--fps", type=float, default=0, help="output frame rate (0: the source's)")
    ex.add_argument("--short-side", type=int, default=0, help="resize to this short side (0: source size)")
    ex.add_argument("--sample-rate", type=int, default=0, help="output audio rate (0: the source's)")
    ex.add_argument("--with-arrays", action="store_true", help="also store decoded frames and waveform (.npy)")
    ex.set_defaults(func=_cmd_export)

    sbs = sub.add_parser("subset", help="print the curated subset, now or as of an earlier version or time")
    sbs.add_argument("--warehouse", required=True)
    sbs.add_argument(
        "--as-of", default=None, help="Delta table version (integer) or ISO time, e.g. 2026-11-22T10:00:00+00:00"
    )
    sbs.add_argument("--csv", default=None, help="write the rows to this CSV file instead")
    sbs.add_argument("--limit", type=int, default=20)
    sbs.set_defaults(func=_cmd_subset)

    bench = sub.add_parser("bench", help="benchmarks")
    bench_sub = bench.add_subparsers(dest="bench", required=True)
    corr = bench_sub.add_parser("correspondence", help="correspondence retrieval: precision of each method")
    corr.add_argument("--videos", type=int, default=300, help="generated videos per seed (0: skip part b)")
    corr.add_argument("--clean", type=int, default=100, help="clean videos per seed to train the baselines")
    corr.add_argument("--planted", type=int, default=20_000, help="clips of planted assignments (0: skip part a)")
    corr.add_argument("--seeds", type=int, default=3)
    corr.add_argument("--mismatch", type=float, default=0.5, help="share of clips whose sound is from another class")
    corr.add_argument("--ks", default="0,8,16,32", help="k values for MI (0: the platform's automatic k)")
    corr.add_argument(
        "--corpus",
        default="demo,digits",
        help="video corpora, comma-separated: demo (our generator), digits (written and spoken digits), "
        "photos (scikit-image's photographs with freedesktop sounds), stamps (Tux Paint's and "
        "GCompris's photographs and recordings, several per class)",
    )
    corr.add_argument(
        "--profile", default="packaged+weightfree+structure", help="extractor profile (default: the platform's default)"
    )
    corr.add_argument("--extractor-options", default="", help="JSON options per extractor (e.g. weight files)")
    corr.set_defaults(func=_cmd_bench)

    sel = sub.add_parser("select-demo", help="the selector alone on generated cluster assignments")
    sel.add_argument("--clips", type=int, default=200_000)
    sel.add_argument("--budget", type=float, default=0.2)
    sel.add_argument("--matched", type=float, default=0.5)
    sel.add_argument("--pairing", choices=PAIRINGS, default=DEFAULT_PAIRING)
    sel.add_argument("--seed", type=int, default=0)
    sel.set_defaults(func=_cmd_select_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"acav: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        import dagster as dg  # loaded already when a step ran

        from acav_assets.core.warehouse.local_state import disk_full

        if isinstance(exc, dg.Failure):  # a step refused its input: too few clips for k, a full disk, ...
            print(f"acav: error: {exc.description}", file=sys.stderr)
            return 1
        full = disk_full(exc)
        if full:  # written outside a step (the Dagster home's event log, an export shard)
            print(f"acav: error: {full}: free some space, then re-run (nothing half-written is kept)", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
