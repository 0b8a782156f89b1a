"""What the export costs over the plain re-encode it has to do.

    .venv/bin/python benchmarks/export.py [--videos 40] [--workers 0] [--repeats 2]

A curated subset of generated videos (demo generator, 640x360 at 25 fps, 12-20 s, budget 0.5 so
the subset is large) is exported with ``export_curated`` (cut to the frame + WebDataset shards +
manifests, ``--workers`` processes) and, in the same process, re-encoded the plain way: each
window opened with PyAV, seeked, decoded and encoded to an .mp4 file with the same codec
settings (libx264 veryfast crf 23, AAC), by a pool of the same number of processes — what a
team would write with ffmpeg ``-ss/-to`` re-encodes. Prints clips/s of both and the ratio
export / plain (goal >= 0.9). Best of ``--repeats`` runs each, alternated.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import multiprocessing
import os
import shutil
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av


def plain_reencode(job: tuple[str, float, float, str]) -> int:
    """The baseline: seek, decode the window, encode every frame and audio frame in it."""
    src_path, start, end, dst = job
    with av.open(src_path) as src, av.open(dst, "w") as out:
        vs, aus = src.streams.video[0], src.streams.audio[0]
        ovs = out.add_stream("libx264", rate=vs.average_rate)
        ovs.width, ovs.height, ovs.pix_fmt = vs.codec_context.width, vs.codec_context.height, "yuv420p"
        ovs.codec_context.thread_count = 1
        ovs.options = {"crf": "23", "preset": "veryfast"}
        oas = out.add_stream("aac", rate=aus.codec_context.sample_rate, layout="mono")
        t0 = float(vs.start_time * vs.time_base) if vs.start_time is not None else 0.0
        src.seek(int((t0 + max(0.0, start - 0.5)) / vs.time_base), stream=vs, backward=True)
        resampler = av.AudioResampler(format="fltp", layout="mono", rate=aus.codec_context.sample_rate)
        n = 0
        for frame in src.decode(vs, aus):
            t = frame.time - t0 if frame.time is not None else -1
            if not start <= t < end:
                if t >= end + 0.5:
                    break
                continue
            if isinstance(frame, av.VideoFrame):
                frame.pts, frame.time_base = n, 1 / Fraction(vs.average_rate)
                n += 1
                for p in ovs.encode(frame):
                    out.mux(p)
            else:
                for r in resampler.resample(frame):
                    r.pts = None
                    for p in oas.encode(r):
                        out.mux(p)
        for p in ovs.encode():
            out.mux(p)
        for p in oas.encode():
            out.mux(p)
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=int, default=40)
    ap.add_argument("--workers", type=int, default=0, help="processes (0: one per core)")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    workers = args.workers or os.cpu_count() or 1

    import dagster as dg

    from acav_assets.core.export.shards import ExportConfig
    from acav_assets.core.generators.demo import write_demo_videos
    from acav_assets.core.media.landing import Landing
    from acav_assets.core.stages.curated_clips import export_curated
    from acav_assets.core.warehouse.tables import Warehouse
    from acav_assets.defs.runner import curate_landing

    os.environ.setdefault("ACAV_PROFILE", "weightfree")
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        write_demo_videos(base / "landing" / "a", args.videos, seed=5, duration_s=(12, 20), size=(640, 360), fps=25)
        curate_landing(
            str(base / "landing"),
            str(base / "wh"),
            instance=dg.DagsterInstance.ephemeral(),
            log_level="ERROR",
            run_config={"ops": {"curated_subset": {"config": {"budget": 0.5}}}},
        )
        wh = Warehouse(str(base / "wh"))
        subset = wh.read("curated_subset")
        jobs = [
            (str(base / "landing" / r["path"]), r["start_s"], r["end_s"], str(base / "plain" / f"{i}.mp4"))
            for i, r in enumerate(subset.iter_rows(named=True))
        ]
        print(f"{subset.height} clips of {args.videos} videos (640x360, 25 fps), {workers} worker process(es)")
        best_export = best_plain = float("inf")
        for _ in range(args.repeats):
            shutil.rmtree(base / "out", ignore_errors=True)
            t = time.perf_counter()
            rep = export_curated(
                wh,
                Landing(str(base / "landing")),
                base / "out",
                config=ExportConfig(workers=workers, shard_max_bytes=50_000_000),
            )
            best_export = min(best_export, time.perf_counter() - t)
            assert rep.written == subset.height and not rep.failed, rep.failed
            shutil.rmtree(base / "plain", ignore_errors=True)
            (base / "plain").mkdir()
            t = time.perf_counter()
            with cf.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                list(pool.map(plain_reencode, jobs))
            best_plain = min(best_plain, time.perf_counter() - t)
        mb = sum(p.stat().st_size for p in (base / "out").glob("*.tar")) / 1e6
        e, p = subset.height / best_export, subset.height / best_plain
        print(f"export (cut + shards + manifest): {e:.2f} clips/s ({best_export:.1f} s, {mb:.1f} MB of shards)")
        print(f"plain PyAV re-encode to files:     {p:.2f} clips/s ({best_plain:.1f} s)")
        print(f"ratio export / plain: {e / p:.2f} (goal >= 0.9)")


if __name__ == "__main__":
    main()
