"""A corpus of bad inputs: one file per kind a landing area meets in practice, with the status
the prober must give it (``bad_inputs.json``)."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import numpy as np

from acav_assets.core.generators.demo import _audio, _frames
from acav_assets.core.media.encode import write_video

__all__ = ["write_bad_inputs"]


def write_bad_inputs(out_dir: str | os.PathLike, *, seed: int = 0) -> dict[str, str]:
    """Write one file per kind of bad input, and ``bad_inputs.json`` = {file name: expected status}.

    Kinds: zero-byte, truncated (index lost, and index intact but data cut), random bytes named .mp4, audio-only, video-only, shorter than
    the minimum clip, very large frame size, variable frame rate (a *good* file), non-ASCII and
    space-containing names (good files), a file without read permission, an exact duplicate, a
    symlink to a good file, a dangling symlink, a link out of the landing area (to /etc/passwd),
    a directory and a FIFO named like videos.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    expected: dict[str, str] = {}

    def good(name: str, duration: float = 12.0, fps: float = 12.0, **kw) -> Path:
        r = np.random.default_rng([seed, len(expected)])
        p = out / name
        n = int(duration * fps)
        write_video(p, _frames(1, r, n, fps, 96, 64), fps, _audio(1, r, int(duration * 22050), 22050), 22050, **kw)
        return p

    base = good("good_reference.mp4")
    expected["good_reference.mp4"] = "ok"
    (out / "empty.mp4").write_bytes(b"")
    expected["empty.mp4"] = "corrupt"
    data = base.read_bytes()
    (out / "truncated.mp4").write_bytes(data[: len(data) // 2])
    expected["truncated.mp4"] = "corrupt"
    fast = good("faststart.mp4", duration=16.0, faststart=True)
    data = fast.read_bytes()
    fast.unlink()
    (out / "truncated_faststart.mp4").write_bytes(data[: len(data) * 2 // 5])  # index intact, data cut
    expected["truncated_faststart.mp4"] = "corrupt"
    (out / "random_bytes.mp4").write_bytes(rng.integers(0, 256, 200_000, dtype=np.uint8).tobytes())
    expected["random_bytes.mp4"] = "corrupt"
    write_video(out / "audio_only.mp4", None, 0, _audio(2, rng, 12 * 22050, 22050), 22050)
    expected["audio_only.mp4"] = "no_video"
    write_video(out / "video_only.mp4", _frames(2, rng, 120, 10.0, 96, 64), 10.0)
    expected["video_only.mp4"] = "no_audio"
    good("too_short.mp4", duration=1.5)
    expected["too_short.mp4"] = "too_short"
    write_video(
        out / "huge_frame.mp4",
        np.zeros((2, 4320, 7680, 3), np.uint8),
        1.0,
        _audio(3, rng, 3 * 22050, 22050),
        22050,
        codec="mpeg4",
    )
    expected["huge_frame.mp4"] = "too_large"
    times = np.cumsum(rng.uniform(0.04, 0.2, 120))
    write_video(
        out / "variable_fps.mp4",
        _frames(4, rng, 120, 8.0, 96, 64),
        8.0,
        _audio(4, rng, int(math.ceil(times[-1] + 0.2) * 22050), 22050),
        22050,
        frame_times=times - times[0],
    )
    expected["variable_fps.mp4"] = "ok"
    good("vidéo ünïcödé 日本.mp4")
    expected["vidéo ünïcödé 日本.mp4"] = "ok"
    good("name with spaces, 'quotes' & commas.mp4")
    expected["name with spaces, 'quotes' & commas.mp4"] = "ok"
    locked = good("no_permission.mp4")
    locked.chmod(0)
    expected["no_permission.mp4"] = "unreadable"
    shutil.copyfile(base, out / "zz_duplicate_copy.mp4")
    expected["zz_duplicate_copy.mp4"] = "duplicate"
    (out / "zz_symlink.mp4").symlink_to("good_reference.mp4")
    expected["zz_symlink.mp4"] = "duplicate"
    (out / "dangling_symlink.mp4").symlink_to("does_not_exist.mp4")
    expected["dangling_symlink.mp4"] = "unreadable"
    (out / "link_out_of_landing.mp4").symlink_to("/etc/passwd")  # probed inside its landing area
    expected["link_out_of_landing.mp4"] = "outside_landing"
    (out / "directory.mp4").mkdir(exist_ok=True)
    expected["directory.mp4"] = "unreadable"
    os.mkfifo(out / "fifo.mp4")
    expected["fifo.mp4"] = "unreadable"
    (out / "bad_inputs.json").write_text(json.dumps(expected, indent=1, ensure_ascii=False))
    return expected
