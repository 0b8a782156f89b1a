"""The encoding matrix as a table: what each real-world encoding gives at every media stage.

    .venv/bin/python benchmarks/encodings.py [--seeds 4,5,6] [--long-min 60]

(a) For each seed, one video of real photographs and recorded sounds (the photos corpus:
    scikit-image photographs, freedesktop recordings; 160x96 as displayed, 24 fps, 12 s) is
    written again in every encoding of ``ENCODINGS`` and run through probe, clip windows, clip
    decoding, embedding (weight-free), fingerprint and export against the source going through
    the same stages (``core/evaluation/encoding_matrix.py``, which the tests assert on). Prints a
    Markdown table, the worst value over the seeds of each column: picture and export differences
    in grey levels (0-255, a re-encode gives ~2-3, a picture left turned ~55), sound envelope
    correlation where the copy has sound, padded silence, embedding cosine, near-duplicate found
    (with every picture sampled; with pictures on demand, the default).
(b) A ``--long-min``-minute video (libx264 defaults: one keyframe every 250 frames; 64x48 at
    5 fps, 22.05 kHz sound) through the same stages in a child process: wall time of each stage
    and the child's peak memory against the same child running only ``import`` of the stages
    (the baseline), so that an hour-long upload is shown bounded in both.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_LONG_CHILD = r"""
import json, sys, time
from acav_assets.core.export.cut import CutConfig, cut_clip
from acav_assets.core.media.clips import clip_windows
from acav_assets.core.media.decode import decode_clip
from acav_assets.core.media.fingerprint import fingerprint_file
from acav_assets.core.media.probe import probe_file
path, run = sys.argv[1], sys.argv[2] == "run"
out = {}
if run:
    t = time.perf_counter(); rec = probe_file(path); out["probe_s"] = time.perf_counter() - t
    out["status"], out["duration_s"] = rec.status, rec.duration_s
    w = clip_windows("long", rec.duration_s)[0]
    t = time.perf_counter(); clip = decode_clip(path, w.start_s, w.end_s); out["decode_s"] = time.perf_counter() - t
    t = time.perf_counter(); fp = fingerprint_file(path); out["fingerprint_s"] = time.perf_counter() - t
    out["samples"] = len(fp.frame_times)
    t = time.perf_counter(); cut = cut_clip(path, w.start_s, w.end_s, CutConfig()); out["export_s"] = time.perf_counter() - t
    out["export_frames"] = cut.n_frames
# VmHWM: this process's own peak (ru_maxrss would carry the parent's peak over from the fork)
out["peak_mb"] = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024
print(json.dumps(out))
"""


def _long_video(path: Path, minutes: float) -> None:
    """Frames of a slow pan over a real photograph with a recorded sound looped under it,
    written in chunks (the writer never holds the hour)."""
    from fractions import Fraction

    import av
    import numpy as np
    from PIL import Image

    from acav_assets.core.generators.photos_sounds import _photo_dir, _sound

    fps, sr, w, h = 5, 22050, 64, 48
    img = np.asarray(Image.open(_photo_dir() / "astronaut.png").convert("RGB").resize((256, 192)))
    sound = _sound("bell")
    n = int(minutes * 60 * fps)
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        aus = out.add_stream("aac", rate=sr, layout="mono")
        a_pos = 0
        for i in range(n):
            x = int(96 + 90 * np.sin(i / 200)), int(72 + 70 * np.cos(i / 170))
            frame = np.ascontiguousarray(img[x[1] : x[1] + h, x[0] : x[0] + w])
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
            vf.pts, vf.time_base = i, Fraction(1, fps)
            for p in vs.encode(vf):
                out.mux(p)
            upto = int((i + 1) / fps * sr)
            while a_pos < upto:
                k = min(1024, upto - a_pos)
                idx = (np.arange(a_pos, a_pos + k) % (sound.size + sr)).clip(max=sound.size - 1)
                chunk = np.where(np.arange(a_pos, a_pos + k) % (sound.size + sr) < sound.size, sound[idx], 0.0)
                af = av.AudioFrame.from_ndarray(chunk.astype(np.float32).reshape(1, -1), format="fltp", layout="mono")
                af.sample_rate, af.pts = sr, a_pos
                for p in aus.encode(af):
                    out.mux(p)
                a_pos += k
        for s in (vs, aus):
            for p in s.encode():
                out.mux(p)


def _child(path: Path, mode: str) -> dict:
    res = subprocess.run(
        [sys.executable, "-c", _LONG_CHILD, str(path), mode], capture_output=True, text=True, check=True
    )
    return json.loads(res.stdout.strip().splitlines()[-1])


def _print_matrix(rows: dict[str, list], seeds: str) -> None:
    print(
        f"(a) the encoding matrix, worst over seeds {seeds} (a video of real photographs and recordings, "
        "160x96, 24 fps, 12 s)\n"
    )
    print(
        "| encoding | probe | size | keyframes | decode picture diff | sound corr | padded s | embed cos "
        "| fingerprint samples | near-duplicate (pictures always; on demand) | export frames | export size "
        "| export diff |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")

    def worst(vals, fn):
        vals = [v for v in vals if v is not None]
        return fn(vals) if vals else None

    def f(x, d=2):
        return "-" if x is None else f"{x:.{d}f}"

    for name, rs in rows.items():
        status = ",".join(sorted({r.probe_status for r in rs}))
        size = ",".join(sorted({f"{r.width}x{r.height}" for r in rs}))
        kf = f"{min(r.keyframes for r in rs)}-{max(r.keyframes for r in rs)}"
        dup = f"{sum(r.near_duplicate for r in rs)}/{len(rs)}; {sum(r.near_duplicate_on_demand for r in rs)}/{len(rs)}"
        print(
            f"| {name} | {status} | {size} | {kf} | {f(worst([r.picture_diff for r in rs], max))} "
            f"| {f(worst([r.sound_corr for r in rs], min), 3)} | {f(worst([r.audio_pad_s for r in rs], max))} "
            f"| {f(worst([r.embed_cos for r in rs], min), 3)} | {min(r.fingerprint_samples for r in rs)} | {dup} "
            f"| {','.join(sorted({str(r.export_frames) for r in rs}))} "
            f"| {','.join(sorted({r.export_size for r in rs}))} | {f(worst([r.export_diff for r in rs], max))} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="4,5,6")
    ap.add_argument("--long-min", type=float, default=60.0, help="length of the long video in (b), minutes (0: skip)")
    args = ap.parse_args()

    from acav_assets.core.evaluation.encoding_matrix import reference, run_encoding
    from acav_assets.core.generators.encodings import ENCODINGS
    from acav_assets.core.generators.photos_sounds import check_available, write_photo_sound_videos

    missing = check_available()
    if missing:
        sys.exit("; ".join(missing))
    seeds = [int(s) for s in args.seeds.split(",") if s]  # --seeds "": only (b)
    rows: dict[str, list] = {e.name: [] for e in ENCODINGS}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        for seed in seeds:
            write_photo_sound_videos(
                base / f"src{seed}", 1, fps=24, size=(160, 96), duration_s=(12, 12), seed=seed, workers=1
            )
            ref = reference(sorted((base / f"src{seed}").glob("*.mp4"))[0])
            (base / f"out{seed}").mkdir()
            for e in ENCODINGS:
                rows[e.name].append(run_encoding(ref, e, base / f"out{seed}"))
        if seeds:
            _print_matrix(rows, args.seeds)
        if args.long_min > 0:
            path = base / "long.mp4"
            t = time.perf_counter()
            _long_video(path, args.long_min)
            print(
                f"\n(b) a {args.long_min:g}-minute video, libx264 defaults, 64x48 at 5 fps "
                f"({path.stat().st_size / 1e6:.1f} MB, written in {time.perf_counter() - t:.0f} s)"
            )
            base_run, run = _child(path, "imports"), _child(path, "run")
            print(
                f"    status {run['status']}, duration {run['duration_s']:.0f} s; probe {run['probe_s']:.2f} s, "
                f"decode of the centre clip {run['decode_s']:.2f} s, fingerprint {run['fingerprint_s']:.2f} s "
                f"({run['samples']} picture samples), export cut {run['export_s']:.2f} s ({run['export_frames']} frames)"
            )
            print(
                f"    peak memory {run['peak_mb']:.0f} MB against {base_run['peak_mb']:.0f} MB for the imports alone "
                f"(ratio {run['peak_mb'] / base_run['peak_mb']:.2f})"
            )


if __name__ == "__main__":
    main()
