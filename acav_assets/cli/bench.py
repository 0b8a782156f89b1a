"""``acav bench``: the quality benchmarks a user can run on generated corpora (correspondence
retrieval, synchronisation), the downstream comparison on a user's own curation
(:mod:`acav_assets.cli.downstream`), and ``acav select-demo``: the selector alone on planted cluster labels."""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

__all__ = ["add_parsers"]


def add_parsers(sub) -> None:
    from acav_assets.cli import downstream
    from acav_assets.core.selection import DEFAULT_PAIRING, PAIRINGS

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
    corr.set_defaults(func=run_correspondence)
    syn = bench_sub.add_parser(
        "sync",
        help="audio-visual synchronisation on clips with known offsets: AUC, offset accuracy, share of "
        "event-less clips answered unknown",
    )
    syn.add_argument("--videos", type=int, default=60, help="videos of the sync-events corpus per seed")
    syn.add_argument("--seeds", default="1,2,3", help="comma-separated corpus seeds")
    syn.add_argument("--size", default="160x120", help="frame size, WxH")
    syn.add_argument("--workdir", default=None, help="keep the corpora here (reused when already written)")
    syn.set_defaults(func=run_sync_bench)
    downstream.add_parser(bench_sub)

    sel = sub.add_parser("select-demo", help="the selector alone on generated cluster assignments")
    sel.add_argument("--clips", type=int, default=200_000)
    sel.add_argument("--budget", type=float, default=0.2)
    sel.add_argument("--matched", type=float, default=0.5)
    sel.add_argument("--pairing", choices=PAIRINGS, default=DEFAULT_PAIRING)
    sel.add_argument("--seed", type=int, default=0)
    sel.set_defaults(func=run_select_demo)


def run_correspondence(args: argparse.Namespace) -> int:
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


def run_select_demo(args: argparse.Namespace) -> int:
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


def run_sync_bench(args: argparse.Namespace) -> int:
    """The synchronisation estimate on the sync-events corpus (real recorded hits, pictures that
    strike at them, half of the clips with events shifted by 0.4-2 s either way)."""
    import tempfile

    from acav_assets.core.evaluation.sync import sync_corpora, sync_table

    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    try:
        size = tuple(int(x) for x in args.size.lower().split("x"))
    except ValueError:
        raise ValueError(f"--size must be WxH, e.g. 160x120, got {args.size!r}") from None
    if not seeds or args.videos < 4 or len(size) != 2:
        raise ValueError("need at least one seed, --videos >= 4 and --size WxH")
    with tempfile.TemporaryDirectory() as tmp:
        folders = sync_corpora(
            args.workdir or tmp, args.videos, seeds, size, log=lambda m: print(f"  {m}", file=sys.stderr)
        )
        print(
            f"# Synchronisation: {args.videos} videos per seed ({args.size}), seeds {seeds}; shifted: |offset| >= 0.4 s\n"
        )
        print(sync_table(folders, seeds))
    return 0
