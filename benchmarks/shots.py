"""Shot-boundary detectors compared on videos with known cuts and dissolves of real photographs.

    .venv/bin/python benchmarks/shots.py [--videos 20] [--seeds 1,2,3]

Per encoding (libx264's defaults: key frames at most every 250 frames and at scene changes; a
fixed 10 s GOP without scene-change key frames) and seed, ``--videos`` videos of 3-6 shots of
the 16 scikit-image sample photographs (panning and zooming, 30% of shots panning fast), joined
by hard cuts or 0.4-1.0 s dissolves (``core/evaluation/shot_boundaries.py``), 160x96 at 25 fps.
Prints, for the key-frame histogram detector and TransNetV2: recall of cuts and of dissolves,
precision, F1 (a detection within 0.5 s of a transition), mean over seeds with the spread, and
the wall seconds per video with the ratio of the two detectors measured in this process.
"""

from __future__ import annotations

import argparse
import tempfile

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=int, default=20)
    ap.add_argument("--seeds", default="1,2,3")
    args = ap.parse_args()

    from acav_assets.core.evaluation.shot_boundaries import ENCODINGS, evaluate_detector, write_corpus

    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"{args.videos} videos per encoding and seed, seeds {seeds}; mean (min-max over seeds)\n")
    print("| encoding | detector | recall, cuts | recall, dissolves | precision | F1 | s / video |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for enc in ENCODINGS:
            rows: dict[str, list[dict]] = {"keyframes": [], "transnetv2": []}
            for seed in seeds:
                videos = write_corpus(f"{tmp}/{enc}_{seed}", args.videos, seed, enc)
                for det in rows:
                    rows[det].append(evaluate_detector(det, videos))
            for det, rs in rows.items():

                def cell(key, d=2):
                    v = [r[key] for r in rs if r[key] is not None]
                    return f"{np.mean(v):.{d}f} ({min(v):.{d}f}-{max(v):.{d}f})" if v else "-"

                print(
                    f"| {enc} | {det} | {cell('recall_cut')} | {cell('recall_dissolve')} | {cell('precision')} "
                    f"| {cell('f1')} | {cell('seconds_per_video', 3)} |"
                )
            ratio = np.mean([r["seconds_per_video"] for r in rows["transnetv2"]]) / max(
                1e-9, np.mean([r["seconds_per_video"] for r in rows["keyframes"]])
            )
            print(f"|   | cost ratio transnetv2 / keyframes | | | | | {ratio:.0f}x |")


if __name__ == "__main__":
    main()
