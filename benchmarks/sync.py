"""Audio-visual synchronisation: quality of the onset-motion estimate on clips with known offsets,
and its cost against the embedding stage.

    .venv/bin/python benchmarks/sync.py [--videos 60] [--seeds 1,2,3] [--size 160x120] [--cost-clips 60]

Per seed, ``--videos`` videos of the sync-events corpus (``core/generators/sync_events.py``: Tux
Paint cut-outs and scikit-image photographs that jump, shake, flash, squash, strike or jolt at each
event, with recorded hits at the events over noise; half of the clips with events have their sound
shifted by 0.4-2.0 s either way; 15 % near-periodic; 30 % without usable events; 25 fps mostly,
15, 30 and variable frame rate; 10 s windows). Prints per seed and their mean: ROC AUC of
``1 - sync_score`` (shifted against in-sync clips with events), the share of shifted clips whose
offset is right within 0.1 s (sign included), the same for in-sync clips, the share of event-less
clips answered None, the share of clips with events answered at all, and the mean signed error of
right answers; then the same pooled over seeds for irregular and near-periodic events apart.

Cost: on the first seed's clips, CPU seconds (``time.process_time``: all threads of this process)
of the sync estimate per clip against the embedding stage per clip with the platform's default
profile on the CPU (``embed_clips``: decode + extractors), measured in alternating chunks of the
same clips in this process, and their ratio (goal <= 0.15).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import acav_assets  # noqa: F401  (first: sets OMP_WAIT_POLICY before torch loads)


def _cost(folder: Path, n_clips: int, chunk: int = 10) -> tuple[float, float, int]:
    """(sync CPU s / clip, embedding CPU s / clip, clips) on the first ``n_clips`` windows of ``folder``."""
    from acav_assets.core.evaluation.sync import read_sync_ground_truth
    from acav_assets.core.features.embed import embed_clips
    from acav_assets.core.features.profiles import DEFAULT_PROFILE, build_profile
    from acav_assets.core.sync import OnsetMotionEstimator

    rows = read_sync_ground_truth(folder)[:n_clips]
    items = [(r["file"], str(folder / r["file"]), r["start_s"], r["end_s"]) for r in rows]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        extractors = build_profile(DEFAULT_PROFILE, "cpu")
    estimator = OnsetMotionEstimator()
    embed_clips(items[:2], extractors)  # warm-up: first calls allocate and initialise
    for _, path, s, e in items[:2]:
        estimator.estimate(path, s, e)
    sync_s = embed_s = 0.0
    for i in range(0, len(items), chunk):  # alternate, so that a busy machine slows both alike
        part = items[i : i + chunk]
        t = time.process_time()
        for _, path, s, e in part:
            estimator.estimate(path, s, e)
        sync_s += time.process_time() - t
        t = time.process_time()
        result = embed_clips(part, extractors)
        embed_s += time.process_time() - t
        if result.failed:
            raise RuntimeError(f"embedding failed: {result.failed}")
    return sync_s / len(items), embed_s / len(items), len(items)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=int, default=60)
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--size", default="160x120", help="frame size of the corpus, WxH")
    ap.add_argument("--cost-clips", type=int, default=60, help="clips of the first seed the cost is measured on")
    ap.add_argument("--workdir", default=None, help="keep the corpora here (reused when already written)")
    args = ap.parse_args(argv)

    from acav_assets.core.evaluation.sync import sync_corpora, sync_table
    from acav_assets.core.features.profiles import DEFAULT_PROFILE

    seeds = [int(s) for s in args.seeds.split(",")]
    size = tuple(int(x) for x in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        folders = sync_corpora(args.workdir or tmp, args.videos, seeds, size, log=lambda m: print(m, flush=True))
        print(f"\n{args.videos} videos per seed ({args.size}), seeds {seeds}; shifted: |offset| >= 0.4 s\n")
        print(sync_table(folders, seeds))

        sync_s, embed_s, n = _cost(folders[0], args.cost_clips)
        print(
            f"\ncost on {n} clips of seed {seeds[0]} (10 s windows, {args.size}), CPU seconds per clip:\n"
            f"  sync estimate (onset-motion):                  {sync_s:.3f}\n"
            f"  embedding stage ({DEFAULT_PROFILE}, cpu): {embed_s:.3f}\n"
            f"  ratio sync / embedding: {sync_s / embed_s:.3f} (goal <= 0.15)"
        )


if __name__ == "__main__":
    main()
