"""The downstream proof: does a model trained on the curated subset learn better than one
trained on a random subset of the same pool?

    .venv/bin/python benchmarks/downstream.py [--corpus demo,stamps] [--videos 300] [--heldout 0]
        [--seeds 3] [--steps 300] [--budget 0.4] [--dir DIR] [--json FILE]
        [--visual-backbone efficientnet_lite0 --size 96 --n-frames 4]

Per corpus: ``--videos`` generated videos in one landing batch (half with the sound of another
class), curated with ``acav curate`` (demo: the weight-free profile, fast; photos and stamps:
the platform's default profile), and a held-out split written by the same generator with other
seeds, every clip matched (``--heldout`` videos; 0: 20 per class). Then
:func:`acav_assets.core.training.compare_training_sets` exports and trains the same AVTS-style
model for the same steps on the curated subset, a random subset of the same size, the whole
pool and the truly matching clips (the oracle), per seed, and evaluates each on the held-out
split. Prints the table (mean ± std over seeds, and per seed), the training speed in clips/s,
and the time each part took. The untrained network is evaluated too: the floor of each probe.

Everything is written under ``--dir`` (default: a temporary folder); a rerun with the same
``--dir`` reuses the corpora, the curation and the exports.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

CORPORA = {
    # name: (generator, classes, profile for acav curate)
    "demo": ("acav_assets.core.generators.demo:write_demo_videos", 8, "weightfree"),
    "photos": (
        "acav_assets.core.generators.photos_sounds:write_photo_sound_videos",
        10,
        "packaged+weightfree+structure",
    ),
    "stamps": (
        "acav_assets.core.generators.stamps_sounds:write_stamp_sound_videos",
        14,
        "packaged+weightfree+structure",
    ),
}


def _generator(spec: str):
    import importlib

    module, name = spec.split(":")
    return getattr(importlib.import_module(module), name)


def prepare(corpus: str, base: Path, videos: int, heldout: int, budget: float) -> dict:
    """Write the corpus and its held-out split, curate it; returns the paths the comparison needs."""
    from acav_assets.cli import main as acav
    from acav_assets.core.media.landing import READY_MARKER

    spec, n_classes, profile = CORPORA[corpus]
    write = _generator(spec)
    landing, held, wh = base / "landing", base / "heldout", base / "wh"
    batch = landing / "batch_001"
    timings = {}
    t = time.perf_counter()
    if not (batch / READY_MARKER).exists():
        write(batch, videos, seed=0)
        (batch / READY_MARKER).write_text("")
    if not (held / "probe.csv").exists():
        rows = write(held, heldout or 20 * n_classes, seed=1000, matched_fraction=1.0)
        with open(held / "probe.csv", "w", newline="") as fh:
            out = csv.writer(fh)
            out.writerow(["name", "visual_label", "audio_label"])
            out.writerows([r.file, r.visual_class, r.audio_class] for r in rows)
    timings["generate_s"] = time.perf_counter() - t
    t = time.perf_counter()
    if not (wh / "curated_subset").exists():
        code = acav(["curate", str(landing), "--warehouse", str(wh), "--budget", str(budget), "--profile", profile])
        if code != 0:
            raise SystemExit(f"acav curate failed on the {corpus} corpus (exit {code})")
    timings["curate_s"] = time.perf_counter() - t
    return {
        "landing": landing,
        "heldout": held,
        "warehouse": wh,
        "truth": batch / "ground_truth.csv",
        "profile": profile,
        **timings,
    }


def curation_precision(paths: dict) -> tuple[int, float, int, float]:
    """Size and share of truly matching clips of the curated subset, and of the pool."""
    from acav_assets.core.training import read_truth
    from acav_assets.core.warehouse.tables import Warehouse

    truth = read_truth(paths["truth"], paths["landing"])
    wh = Warehouse(str(paths["warehouse"]))
    subset, pool = wh.read("curated_subset")["path"].to_list(), wh.read("clips")["path"].to_list()
    return (
        len(subset),
        sum(truth.get(p, False) for p in subset) / len(subset),
        len(pool),
        sum(truth.get(p, False) for p in pool) / len(pool),
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default="demo,stamps", help=f"comma-separated, of {', '.join(CORPORA)}")
    ap.add_argument("--videos", type=int, default=300, help="videos in the pool to curate")
    ap.add_argument("--heldout", type=int, default=0, help="held-out videos (0: 20 per class)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=None, help="training steps (default: TrainConfig's)")
    ap.add_argument(
        "--visual-backbone", default=None, help="TrainConfig.visual_backbone (default: TrainConfig's, scratch)"
    )
    ap.add_argument("--size", type=int, default=None, help="picture size (default: TrainConfig's)")
    ap.add_argument("--n-frames", type=int, default=None, help="pictures per window (default: TrainConfig's)")
    ap.add_argument("--budget", type=float, default=0.4, help="acav curate --budget (the pool is half matched)")
    ap.add_argument("--dir", default=None, help="working folder (kept; a rerun reuses it)")
    ap.add_argument("--json", default=None, help="also write every row here")
    args = ap.parse_args()

    from dataclasses import replace

    from acav_assets.core.training import ProbeConfig, TrainConfig, compare_training_sets, format_comparison

    chosen = {
        "steps": args.steps,
        "visual_backbone": args.visual_backbone,
        "size": args.size,
        "n_frames": args.n_frames,
    }
    config = replace(TrainConfig(), **{k: v for k, v in chosen.items() if v is not None})
    probe = ProbeConfig()
    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="acav_downstream_"))
    print(
        f"# Downstream: the same AVTS-style model, {config.steps} steps of {config.batch_size} windows "
        f"({config.n_frames} frames of {config.size}x{config.size}, {config.window_s:g} s of sound, "
        f"{config.n_mels} mel bands; embedding {config.dim}; picture stream {config.visual_backbone}), per "
        "training set and seed; probes: "
        + (f"{probe.shots}-shot logistic regression" if probe.shots else f"{probe.folds}-fold logistic regression")
        + f" on the held-out split; {args.seeds} seeds\n",
        flush=True,
    )
    all_rows = []
    t_all = time.perf_counter()
    for corpus in args.corpus.split(","):
        base = root / corpus
        paths = prepare(corpus, base, args.videos, args.heldout, args.budget)
        n_sel, prec, n_pool, pool_prec = curation_precision(paths)
        t = time.perf_counter()
        rows = compare_training_sets(
            paths["warehouse"],
            paths["landing"],
            paths["heldout"] / "probe.csv",
            probe_root=paths["heldout"],
            truth_csv=paths["truth"],
            seeds=range(args.seeds),
            config=config,
            probe=probe,
            work_dir=base / "exports",
            untrained=True,
            progress=lambda m: print(f"  {m}", file=sys.stderr, flush=True),
        )
        took = time.perf_counter() - t
        for r in rows:
            r["corpus"] = corpus
        all_rows += rows
        trained = [r for r in rows if r["training_set"] != "untrained"]
        speed = [r["clips_per_s"] for r in trained]
        print(
            format_comparison(
                rows,
                per_seed=True,
                title=(
                    f"## {corpus}: {n_pool} clips in the pool ({pool_prec:.0%} matching), curated subset "
                    f"{n_sel} clips ({prec:.0%} matching; acav curate --budget {args.budget:g}, profile "
                    f"{paths['profile']})"
                ),
            ),
            flush=True,
        )
        print(
            f"\ntraining speed: {sum(speed) / len(speed):.0f} clips/s (min {min(speed):.0f}, max {max(speed):.0f}; "
            f"windows of the batch per second of training, data loading included); comparison {took:.0f} s, "
            f"generation {paths['generate_s']:.0f} s, curation {paths['curate_s']:.0f} s\n",
            flush=True,
        )
    print(f"({time.perf_counter() - t_all:.0f} s; files under {root})")
    if args.json:
        rows = [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()} for r in all_rows]
        Path(args.json).write_text(json.dumps({"rows": rows}, indent=1))  # as acav bench downstream --json
    return 0


if __name__ == "__main__":
    os.environ.setdefault("ACAV_PROGRESS", "0")
    sys.exit(main())
