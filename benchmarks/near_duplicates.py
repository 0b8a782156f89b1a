"""Near-duplicate detection: what it costs, how it scales, and where the thresholds come from.

    .venv/bin/python benchmarks/near_duplicates.py [--videos 40] [--families 8] [--earlier 2000]

(a) Cost: per video, fingerprinting (keyframes + sound) against probing + decoding the clip
    window the embedding step decodes (``probe_file`` + ``decode_clip``), on generated 640x360
    25 fps videos; prints the share (goal <= 20%).
(b) Scale: one new batch of 20 videos looked up against ``--earlier`` and 10x as many earlier
    videos (real fingerprints of the generated videos plus random ones for the rest, which are
    distinct content); prints the time of the index build and of the lookups, and the ratio
    10x / 1x of each (lookups: goal flat).
(c) Thresholds: sound and picture agreement of each copy with its original (CRF 45 re-encode,
    half resolution, 1 s trimmed at each end, 24 kb/s audio) and the highest agreement between
    ``--distinct`` distinct videos (all pairs); the defaults sit between the two.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=int, default=40)
    ap.add_argument("--families", type=int, default=8)
    ap.add_argument("--earlier", type=int, default=2000)
    ap.add_argument("--distinct", type=int, default=200, help="distinct videos compared pairwise in (c)")
    args = ap.parse_args()

    from acav_assets.core.export.cut import CutConfig, cut_clip
    from acav_assets.core.generators.demo import write_demo_videos
    from acav_assets.core.media.decode import decode_clip
    from acav_assets.core.media.fingerprint import NearDuplicateConfig, compare, fingerprint_file
    from acav_assets.core.media.probe import probe_file
    from acav_assets.core.stages.near_duplicates import fingerprint_rows, mark_near_duplicates

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        write_demo_videos(base / "b", args.videos, seed=9, duration_s=(12, 20), size=(640, 360), fps=25)
        files = sorted((base / "b").glob("*.mp4"))
        t_probe = t_decode = t_fp = 0.0
        for f in files:
            t = time.perf_counter()
            rec = probe_file(f)
            t_probe += time.perf_counter() - t
            mid = rec.duration_s / 2
            t = time.perf_counter()
            decode_clip(f, max(0.0, mid - 5), min(rec.duration_s, mid + 5))
            t_decode += time.perf_counter() - t
            t = time.perf_counter()
            fingerprint_file(f)
            t_fp += time.perf_counter() - t
        n = len(files)
        print(f"(a) per video (640x360, 25 fps, 12-20 s): probe {t_probe / n * 1e3:.0f} ms, decode of the clip "
              f"{t_decode / n * 1e3:.0f} ms, fingerprint {t_fp / n * 1e3:.0f} ms: "
              f"{t_fp / (t_probe + t_decode):.0%} of probe + decode (goal <= 20%)")

        rows = [{"batch": "new", "video_id": f.stem, "path": f"b/{f.name}", "status": "ok", "duration_s": 15.0,
                 "width": 640, "height": 360} for f in files[:20]]
        new = fingerprint_rows(rows, base, workers=1)
        real = pl.DataFrame(fingerprint_rows(
            [{**r, "video_id": f"old_{f.stem}", "path": f"b/{f.name}"} for r, f in zip(rows, files[20:])], base))
        rng = np.random.default_rng(0)

        def earlier(count: int) -> pl.DataFrame:
            k, w = 8, 60
            fake = pl.DataFrame({
                "batch": ["old"] * count, "video_id": [f"r{i}" for i in range(count)],
                "path": [f"old/r{i}.mp4" for i in range(count)],
                "key_times": [list(np.arange(k) * 2.0) for _ in range(count)],
                "key_hashes": [rng.integers(-2**63, 2**63 - 1, k).tolist() for _ in range(count)],
                "key_vectors": [rng.standard_normal(k * 63).astype(np.float32).tolist() for _ in range(count)],
                "audio_hashes": [rng.integers(-2**63, 2**63 - 1, w).tolist() for _ in range(count)],
                "audio_sounding": [[True] * w for _ in range(count)],
            }, schema=real.schema)
            return pl.concat([real, fake])

        timings = {}
        for scale in (1, 10):
            prior = earlier(args.earlier * scale)
            import acav_assets.core.stages.near_duplicates as nd

            built = {}
            original_votes = nd._HashIndex.votes

            def timed_votes(self, hashes, _orig=original_votes):
                t = time.perf_counter()
                out = _orig(self, hashes)
                built["lookup"] = built.get("lookup", 0.0) + time.perf_counter() - t
                return out

            nd._HashIndex.votes = timed_votes
            t = time.perf_counter()
            mark_near_duplicates([dict(r) for r in rows], new, prior)
            total = time.perf_counter() - t
            nd._HashIndex.votes = original_votes
            timings[scale] = (total - built["lookup"], built["lookup"], prior.height)
            print(f"(b) {prior.height:>6} earlier videos: index build + verification {timings[scale][0]:.2f} s, "
                  f"lookups of 20 new videos {timings[scale][1] * 1e3:.0f} ms")
        print(f"    ratio 10x / 1x: lookups {timings[10][1] / timings[1][1]:.2f} (goal flat), "
              f"build {timings[10][0] / timings[1][0]:.2f} (grows with the earlier videos loaded)")

        cfg = NearDuplicateConfig()
        fam_dir = base / "fam"
        fam_dir.mkdir()
        worst = {}
        originals = files[:args.families]
        for f in originals:
            fa = fingerprint_file(f)
            dur = probe_file(f).duration_s
            for name, cut, (s, e) in (("crf45", CutConfig(crf=45), (0, dur)), ("half", CutConfig(short_side=180), (0, dur)),
                                      ("trim", CutConfig(), (1.0, dur - 1.0)),
                                      ("abr24k", CutConfig(audio_bitrate=24_000), (0, dur))):
                p = fam_dir / f"{f.stem}_{name}.mp4"
                p.write_bytes(cut_clip(f, s, e, cut).mp4)
                ok, ev = compare(fa, fingerprint_file(p), cfg)
                a, v = worst.get(name, (1.0, 1.0, True))[:2]
                worst[name] = (min(a, ev["audio_agreement"]), min(v, ev["visual_agreement"]),
                               worst.get(name, (0, 0, True))[2] and ok)
        # distinct content: the small videos of the 8-class demo generator (same-class videos share
        # their kind of picture and sound: the hard case for a false merge)
        write_demo_videos(base / "distinct", args.distinct, seed=74, duration_s=(6, 12))
        distinct = sorted((base / "distinct").glob("*.mp4"))
        fps = {f: fingerprint_file(f) for f in distinct}
        top_a = top_v = 0.0
        merged = 0
        for x, y in itertools.combinations(distinct, 2):
            ok, ev = compare(fps[x], fps[y], cfg)
            top_a, merged = max(top_a, ev["audio_agreement"] or 0), merged + ok
            if (ev["audio_agreement"] or 0) >= cfg.audio_match:
                top_v = max(top_v, ev["visual_agreement"])
        print(f"(c) lowest agreement of a copy with its original ({len(originals)} families):")
        for name, (a, v, all_ok) in worst.items():
            print(f"    {name:7s} sound {a:.3f}  picture {v:.3f}  all found: {all_ok}")
        pairs = len(distinct) * (len(distinct) - 1) // 2
        print(f"    distinct videos ({pairs} pairs): highest sound agreement {top_a:.3f}; highest picture agreement "
              f"among pairs whose sound passed {top_v:.3f}; merged {merged}")
        print(f"    defaults: sound >= {cfg.audio_match} within {cfg.audio_bits} bits, picture >= {cfg.visual_match} "
              f"at cosine {cfg.visual_cos}")


if __name__ == "__main__":
    main()
