"""Audio-visual synchronisation by a trained model: the AVTS-style model of the downstream check,
trained on in-sync clips, used as a synchronisation estimator (``core/sync/avts.py``), against
the weight-free onset-motion estimate on the same clips.

    .venv/bin/python benchmarks/sync_model.py [--train-videos 200] [--videos 60] [--seeds 1,2,3]
        [--steps 600] [--dir DIR]

Training: ``--train-videos`` videos of the sync-events corpus written with seed 0 and none of
them shifted (as a curated subset whose out-of-sync clips were left out), put into WebDataset
shards as they are, and the model trained on them with the downstream check's loss and
curriculum (no label read: the corpus has no shifted clip to hide). Evaluation: the corpora of
``--seeds`` (half of the clips with events shifted by 0.4-2.0 s), the table of
``acav bench sync`` for each estimator.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import acav_assets  # noqa: F401  (first: sets OMP_WAIT_POLICY before torch loads)


def _shards(folder: Path, out: Path, per_shard: int = 16) -> list[str]:
    """The corpus's videos as WebDataset shards (``<key>.mp4``), as they are."""
    import webdataset as wds

    out.mkdir(parents=True, exist_ok=True)
    files = sorted(folder.glob("*.mp4"))
    paths = []
    for i in range(0, len(files), per_shard):
        path = out / f"clips-{i // per_shard:06d}.tar"
        with wds.TarWriter(str(path)) as sink:
            for f in files[i : i + per_shard]:
                sink.write({"__key__": f.stem, "mp4": f.read_bytes()})
        paths.append(str(path))
    return paths


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train-videos", type=int, default=200)
    ap.add_argument("--videos", type=int, default=60, help="videos per evaluation seed")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--n-frames", type=int, default=16, help="pictures per 2 s training window")
    ap.add_argument("--size", default="160x120")
    ap.add_argument("--dir", default=None, help="keep corpora and the model here (reused)")
    args = ap.parse_args()

    from acav_assets.core.evaluation.sync import sync_corpora, sync_table
    from acav_assets.core.generators.sync_events import write_sync_event_videos
    from acav_assets.core.sync import OnsetMotionEstimator
    from acav_assets.core.sync.avts import AVTSSyncEstimator
    from acav_assets.core.training.train import TrainConfig, save_model, train_av_model

    size = tuple(int(x) for x in args.size.split("x"))
    seeds = [int(s) for s in args.seeds.split(",")]
    root = Path(args.dir or tempfile.mkdtemp(prefix="acav_sync_model_"))
    config = replace(TrainConfig(), steps=args.steps, n_frames=args.n_frames, hard_from=0.3)
    model_path = root / f"model-{args.train_videos}-{args.steps}-{args.n_frames}.pt"
    t = time.perf_counter()
    if not model_path.exists():
        train_dir = root / f"train_{args.train_videos}_{size[0]}x{size[1]}"
        if not (train_dir / "ground_truth.csv").exists():
            write_sync_event_videos(train_dir, args.train_videos, shifted_fraction=0.0, size=size, seed=0)
        result = train_av_model(
            _shards(train_dir, root / "shards"),
            config,
            seed=0,
            progress=lambda m: print(f"  {m}", file=sys.stderr, flush=True),
        )
        save_model(result.model, config, model_path)
        print(f"trained in {result.seconds:.0f} s ({result.clips_per_second:.0f} clips/s)", file=sys.stderr)
    folders = sync_corpora(root, args.videos, seeds, size, log=lambda m: print(f"  {m}", file=sys.stderr))
    print(
        f"# Synchronisation by a trained model: AVTS-style, {config.steps} steps on {args.train_videos} in-sync "
        f"videos ({config.n_frames} pictures of {config.size}x{config.size} per {config.window_s:g} s); "
        f"evaluated on {args.videos} videos per seed, seeds {seeds}\n"
    )
    print("## avts (the trained model)\n")
    print(sync_table(folders, seeds, AVTSSyncEstimator.from_file(model_path)))
    print("\n## onset-motion (weight-free, the platform's default)\n")
    print(sync_table(folders, seeds, OnsetMotionEstimator()))
    print(f"\n({time.perf_counter() - t:.0f} s; files under {root})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
