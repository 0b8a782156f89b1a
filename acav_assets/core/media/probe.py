"""Probe media files with PyAV: streams, duration, content id, and a status for every file.

Probing never raises on a bad file: every outcome is a :class:`VideoRecord` whose ``status`` is
one of :data:`STATUSES` and whose ``error`` says what happened, in words. The work per file is
bounded: the demuxer's probe size and analysis duration are capped, the truncation check reads
a bounded number of packets, content is hashed whole only up to ``hash_full_limit_bytes``
(beyond that, a sampled hash), and non-regular files (FIFOs, devices, directories) are never
opened. With ``timeout_s``, :func:`probe_files` probes each file in a worker process that is
killed if it overruns (status ``timeout``), so even a file that makes FFmpeg spin cannot stall a
batch.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import select
import stat
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import av

from acav_assets.core.media.decode import display_turns
from acav_assets.core.settings import setting
from acav_assets.core.statuses import VideoStatus

__all__ = [
    "STATUSES",
    "ProbeConfig",
    "VideoRecord",
    "content_id",
    "probe_file",
    "probe_files",
    "resolves_inside",
]

OK = VideoStatus.OK
#: Every status a file can get (:class:`~acav_assets.core.statuses.VideoStatus`). Bad input is recorded with
#: one of these, never raised.
STATUSES = tuple(VideoStatus)

_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class ProbeConfig:
    """Limits and filters applied while probing.

    The duration range filters videos before any decoding. The reference keeps 30–597 s for
    web videos (``ProbeConfig(min_duration_s=30, max_duration_s=597)``); the default keeps
    anything long enough for one minimum clip.
    """

    min_duration_s: float = setting(2.5, "shorter videos get status too_short")
    max_duration_s: float | None = setting(None, "longer videos get status too_long (reference: 597)")
    max_pixels: int = setting(7680 * 4320 // 2, "larger frames get status too_large (~16.6 Mpx: 4K passes, 8K not)")
    max_file_bytes: int | None = None
    probesize_bytes: int = 10_000_000
    analyzeduration_us: int = 10_000_000
    hash_full_limit_bytes: int = 1 << 30
    check_decode: bool = True
    max_check_packets: int = 4000
    truncation_tolerance_s: float = 1.0
    #: Folders a file may resolve into (after following every link): the landing root and any
    #: extra roots the user allowed. Empty: no restriction (probing a loose file).
    allowed_roots: tuple[str, ...] = ()

    def __post_init__(self):
        if self.min_duration_s < 0:
            raise ValueError(f"min_duration_s must be >= 0, got {self.min_duration_s}")
        if self.max_duration_s is not None and self.max_duration_s < self.min_duration_s:
            raise ValueError(f"max_duration_s ({self.max_duration_s}) is below min_duration_s ({self.min_duration_s})")
        if self.max_pixels <= 0:
            raise ValueError("max_pixels must be positive")


@dataclass
class VideoRecord:
    """What probing learned about one file (one row of the ``videos`` table)."""

    video_id: str
    path: str
    status: str
    error: str = ""
    size_bytes: int | None = None
    duration_s: float | None = None
    video_start_s: float | None = None
    video_codec: str | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    audio_codec: str | None = None
    sample_rate: int | None = None
    channels: int | None = None
    duplicate_of: str | None = None
    extra: dict = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return self.status == OK

    def to_row(self) -> dict:
        """A flat dict for a table row (``extra`` dropped)."""
        row = asdict(self)
        row.pop("extra")
        row["status"] = str(self.status)  # the plain string the table holds
        return row

    @classmethod
    def columns(cls) -> list[str]:
        return [f.name for f in fields(cls) if f.name != "extra"]


def content_id(path: str | os.PathLike, size: int, *, full_limit: int = 1 << 30) -> str:
    """Content-derived id: BLAKE2b of the bytes (files above ``full_limit``: of their size and
    64 evenly spaced 1 MiB samples). Stable across paths, names and re-runs."""
    h = hashlib.blake2b(digest_size=10)
    with open(path, "rb") as fh:
        if size <= full_limit:
            while chunk := fh.read(_HASH_CHUNK):
                h.update(chunk)
        else:
            h.update(b"sampled:%d" % size)
            for k in range(64):
                fh.seek((size - _HASH_CHUNK) * k // 63)
                h.update(fh.read(_HASH_CHUNK))
    return h.hexdigest()


def _path_id(path: str) -> str:
    """Id for a file whose content cannot be read: derived from its path (marked with 'p')."""
    return "p" + hashlib.blake2b(os.fsencode(path), digest_size=10).hexdigest()[1:]


def probe_file(path: str | os.PathLike, config: ProbeConfig = ProbeConfig()) -> VideoRecord:
    """Probe one file. Never raises for a bad file; returns a record with a status."""
    spath = os.fspath(path)
    if config.allowed_roots and not resolves_inside(spath, config.allowed_roots):
        return VideoRecord(
            _path_id(spath),
            spath,
            VideoStatus.OUTSIDE_LANDING,
            f"a link that resolves outside the landing area (to {os.path.realpath(spath)}): "
            f"not read; allow its folder explicitly to ingest it",
        )
    try:
        st = os.stat(spath)  # follows symlinks
    except FileNotFoundError:
        kind = "broken symlink" if os.path.islink(spath) else "file not found"
        return VideoRecord(_path_id(spath), spath, VideoStatus.UNREADABLE, f"{kind}: {spath}")
    except OSError as exc:
        return VideoRecord(_path_id(spath), spath, VideoStatus.UNREADABLE, f"cannot stat: {exc.strerror or exc}")
    if not stat.S_ISREG(st.st_mode):
        kind = "directory" if stat.S_ISDIR(st.st_mode) else "FIFO" if stat.S_ISFIFO(st.st_mode) else "special file"
        return VideoRecord(_path_id(spath), spath, VideoStatus.UNREADABLE, f"not a regular file ({kind})")
    if st.st_mode & 0o444 == 0:
        # Refuse even when running as root, so that behaviour does not depend on the user.
        return VideoRecord(
            _path_id(spath),
            spath,
            VideoStatus.UNREADABLE,
            f"permission denied (mode {stat.filemode(st.st_mode)})",
            size_bytes=st.st_size,
        )
    try:
        vid = content_id(spath, st.st_size, full_limit=config.hash_full_limit_bytes)
    except OSError as exc:
        return VideoRecord(
            _path_id(spath), spath, VideoStatus.UNREADABLE, f"cannot read: {exc.strerror or exc}", size_bytes=st.st_size
        )
    rec = VideoRecord(vid, spath, OK, size_bytes=st.st_size)
    if st.st_size == 0:
        return _fail(rec, VideoStatus.CORRUPT, "empty file (0 bytes)")
    if config.max_file_bytes is not None and st.st_size > config.max_file_bytes:
        return _fail(
            rec, VideoStatus.TOO_LARGE, f"file is {st.st_size:,} bytes, above the limit of {config.max_file_bytes:,}"
        )
    try:
        _inspect(rec, spath, config)
    except av.error.FFmpegError as exc:
        return _fail(rec, VideoStatus.CORRUPT, f"not a readable media file: {_ffmpeg_message(exc)}")
    except (OSError, ValueError, RuntimeError, MemoryError) as exc:  # defensive: never escape
        return _fail(rec, VideoStatus.CORRUPT, f"{type(exc).__name__}: {exc}")
    return rec


def resolves_inside(path: str | os.PathLike, roots) -> bool:
    """Whether ``path``, every link followed, lies inside one of the folders ``roots`` (each
    resolved too, so a landing root that is itself a link still counts)."""
    real = os.path.realpath(os.fspath(path))
    for root in roots:
        r = os.path.realpath(os.fspath(root))
        if real == r or real.startswith(r.rstrip(os.sep) + os.sep):
            return True
    return False


def _fail(rec: VideoRecord, status: str, error: str) -> VideoRecord:
    rec.status, rec.error = status, error
    return rec


def _ffmpeg_message(exc: Exception) -> str:
    msg = getattr(exc, "strerror", None) or str(exc)
    return msg.split(": '")[0] if isinstance(msg, str) else str(exc)


def _inspect(rec: VideoRecord, path: str, config: ProbeConfig) -> None:
    options = {"probesize": str(config.probesize_bytes), "analyzeduration": str(config.analyzeduration_us)}
    with av.open(path, options=options, timeout=30.0) as container:
        vstreams = [s for s in container.streams.video if not _is_cover_art(s)]
        astreams = list(container.streams.audio)
        vs = vstreams[0] if vstreams else None
        aus = astreams[0] if astreams else None
        if vs is not None:
            cc = vs.codec_context
            rec.video_codec = cc.name
            rec.width, rec.height = cc.width or None, cc.height or None
            rate = vs.average_rate or vs.guessed_rate or vs.base_rate
            rec.fps = float(rate) if rate else None
            rec.video_start_s = float(vs.start_time * vs.time_base) if vs.start_time is not None else 0.0
        if aus is not None:
            rec.audio_codec = aus.codec_context.name
            rec.sample_rate = aus.codec_context.sample_rate or None
            rec.channels = aus.codec_context.channels or None
        rec.duration_s = _duration(container, vs, aus)
        if vs is None:
            _fail(
                rec, VideoStatus.NO_VIDEO, "no video stream" + (" (only cover art)" if container.streams.video else "")
            )
            return
        if aus is None:
            _fail(rec, VideoStatus.NO_AUDIO, "no audio stream")
            return
        if _too_large(rec, config):
            return
        if config.check_decode:
            problem = _check_decodable(container, vs, aus, rec, config)
            if problem:
                _fail(rec, VideoStatus.CORRUPT, problem)
                return
            if rec.status != OK or _too_large(rec, config):
                return
        if not rec.width or not rec.height:
            _fail(rec, VideoStatus.CORRUPT, "video stream has no frame size")
            return
        if rec.duration_s is None or not math.isfinite(rec.duration_s) or rec.duration_s <= 0:
            _fail(rec, VideoStatus.CORRUPT, "duration unknown")
            return
        if rec.duration_s < config.min_duration_s:
            _fail(
                rec,
                VideoStatus.TOO_SHORT,
                f"duration {rec.duration_s:.2f} s is below the minimum of {config.min_duration_s:g} s",
            )
        elif config.max_duration_s is not None and rec.duration_s > config.max_duration_s:
            _fail(
                rec,
                VideoStatus.TOO_LONG,
                f"duration {rec.duration_s:.2f} s is above the maximum of {config.max_duration_s:g} s",
            )


def _too_large(rec: VideoRecord, config: ProbeConfig) -> bool:
    """Refuse frames above the pixel limit (checked before decoding when the size is declared)."""
    if rec.width and rec.height and rec.width * rec.height > config.max_pixels:
        _fail(
            rec,
            VideoStatus.TOO_LARGE,
            f"frame size {rec.width}x{rec.height} is above the limit of {config.max_pixels:,} pixels",
        )
        return True
    return False


def _is_cover_art(stream) -> bool:
    try:
        return bool(stream.disposition & av.stream.Disposition.attached_pic)
    except (AttributeError, TypeError):
        return False


def _duration(container, vs, aus) -> float | None:
    """Duration of the video stream (else the container), in seconds."""
    for s in (vs, aus):
        if s is not None and s.duration is not None and s.time_base is not None:
            d = float(s.duration * s.time_base)
            if d > 0:
                return d
    if container.duration is not None and container.duration > 0:
        return container.duration / av.time_base
    return None


def _check_decodable(container, vs, aus, rec: VideoRecord, config: ProbeConfig) -> str | None:
    """Decode the first video and audio frames, then read the last seconds of the file: a file
    whose data ends well before its declared duration is truncated. Returns a problem or None."""
    try:
        first_v = first_a = None
        for i, packet in enumerate(container.demux(vs, aus)):
            if i > config.max_check_packets:
                break
            for frame in packet.decode():
                if packet.stream is vs and first_v is None:
                    first_v = frame
                elif packet.stream is aus and first_a is None:
                    first_a = frame
            if first_v is not None and first_a is not None:
                break
        if first_v is None:
            return "no decodable video frame"
        if not rec.width or not rec.height:  # size not declared by the container: take the frame's
            rec.width, rec.height = first_v.width, first_v.height
        if display_turns(first_v) % 2:  # a phone video stored turned: record the size as displayed
            rec.width, rec.height = rec.height, rec.width
        if first_a is None:
            rec.status = VideoStatus.NO_AUDIO  # an audio stream that yields nothing
            return None
        declared = rec.duration_s
        if declared is None:
            return None
        v0 = rec.video_start_s or 0.0
        container.seek(int(max(0.0, v0 + declared - 3.0) / vs.time_base), stream=vs, backward=True)
        last_end = None
        for i, packet in enumerate(container.demux(vs)):
            if i > config.max_check_packets:
                return None  # bounded: a file this dense near its end is not truncated
            if packet.pts is None:
                continue
            end = float((packet.pts + (packet.duration or 0)) * vs.time_base) - v0
            last_end = end if last_end is None else max(last_end, end)
        if last_end is None or last_end < declared - max(config.truncation_tolerance_s, 0.05 * declared):
            if last_end is None:
                return f"truncated: no video data near the declared end ({declared:.2f} s)"
            return f"truncated: video data ends at {last_end:.2f} s of {declared:.2f} s declared"
    except av.error.FFmpegError as exc:
        return f"undecodable: {_ffmpeg_message(exc)}"
    return None


class _ProbeWorker:
    """A worker process (``python -m acav_assets.core.media.probe_worker``) that probes one file at a
    time and is replaced if it overruns or dies."""

    def __init__(self, config: ProbeConfig):
        self.config = json.dumps(asdict(config))
        self._start()

    def _start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "acav_assets.core.media.probe_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )
        if self._read(120) != "ready":  # start-up is not charged to a file
            self._stop()
            raise RuntimeError("the probe worker process did not start")

    def _read(self, timeout_s: float):
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout_s)
        if not ready:
            return None
        line = self.proc.stdout.readline()
        return json.loads(line) if line else EOFError

    def probe(self, path: str, timeout_s: float) -> VideoRecord:
        try:
            self.proc.stdin.write(json.dumps({"path": path, "config": json.loads(self.config)}) + "\n")
            self.proc.stdin.flush()
            answer = self._read(timeout_s)
        except (BrokenPipeError, OSError):
            answer = EOFError
        if isinstance(answer, dict):
            return VideoRecord(**answer)
        self._stop()
        self._start()
        if answer is EOFError:  # the worker died (e.g. a crash inside FFmpeg)
            return VideoRecord(_path_id(path), path, VideoStatus.CORRUPT, "the prober crashed on this file")
        return VideoRecord(
            _path_id(path), path, VideoStatus.TIMEOUT, f"probing took longer than {timeout_s:g} s; stopped"
        )

    def _stop(self) -> None:
        self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            stream.close()

    def close(self) -> None:
        try:
            self.proc.stdin.close()
            self.proc.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.proc.stdout.close()


def probe_files(
    paths: Iterable[str | os.PathLike],
    config: ProbeConfig = ProbeConfig(),
    *,
    known: Mapping[str, str] | None = None,
    root: str | os.PathLike | None = None,
    timeout_s: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[VideoRecord]:
    """Probe many files in sorted path order and mark repeated content as ``duplicate``;
    ``progress(done, total)`` is called after each file.

    ``known`` maps video ids seen before (e.g. in earlier batches) to where they were seen;
    a file with one of those ids is a duplicate too. With ``root``, error messages name
    duplicates by their path relative to it. With ``timeout_s``, each file is probed in a
    worker process that is stopped after that many seconds (status ``timeout``).
    """
    seen: dict[str, str] = dict(known or {})
    records = []
    worker = _ProbeWorker(config) if timeout_s is not None else None
    try:
        todo = sorted(os.fspath(p) for p in paths)
        for i, p in enumerate(todo, 1):
            rec = worker.probe(p, timeout_s) if worker else probe_file(p, config)
            records.append(_dedupe(rec, p, seen, root))
            if progress is not None:
                progress(i, len(todo))
    finally:
        if worker:
            worker.close()
    return records


def _dedupe(rec: VideoRecord, p: str, seen: dict[str, str], root) -> VideoRecord:
    """Mark ``rec`` as a duplicate if its content was seen (in this batch or in ``seen``)."""
    shown = os.path.relpath(p, root) if root is not None else p
    if rec.video_id in seen and not rec.video_id.startswith("p"):
        first = seen[rec.video_id]
        prior_error = f" (that copy: {rec.status})" if rec.status != OK else ""
        rec.status, rec.duplicate_of = VideoStatus.DUPLICATE, first
        rec.error = f"same content as {first}{prior_error}"
    else:
        seen.setdefault(rec.video_id, shown)
    return rec


#: File suffixes taken as input videos (case-insensitive).
MEDIA_SUFFIXES = frozenset({".mp4", ".mkv", ".webm", ".mov", ".avi", ".m4v", ".ts", ".mpg", ".mpeg", ".flv"})


def list_media_files(folder: str | os.PathLike, suffixes: Iterable[str] | None = None) -> list[str]:
    """Every entry of ``folder`` (not recursive) that looks like an input file, sorted.

    All entries with a media suffix are returned, including broken links, FIFOs and
    directories named like videos, so that each gets a row and a status.
    """
    sfx = {s.lower() for s in (suffixes or MEDIA_SUFFIXES)}
    return sorted(os.fspath(p) for p in Path(folder).iterdir() if p.suffix.lower() in sfx)
