"""The fixed sets of statuses the tables record: what happened to a file (``videos.status``) and to
an exported clip (``export_manifest.status``). String enums: they compare equal to, and are written
to the tables as, their plain string values."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["ExportStatus", "VideoStatus"]


class VideoStatus(StrEnum):
    """Every status a landed file can get. Bad input is recorded with one of these, never raised."""

    OK = "ok"
    NO_AUDIO = "no_audio"  # no audio stream (or no decodable audio)
    NO_VIDEO = "no_video"  # no video stream (cover art does not count)
    TOO_SHORT = "too_short"  # shorter than ProbeConfig.min_duration_s
    TOO_LONG = "too_long"  # longer than ProbeConfig.max_duration_s
    TOO_LARGE = "too_large"  # frame or file larger than the configured limits
    CORRUPT = "corrupt"  # not a media file, truncated, or undecodable
    UNREADABLE = "unreadable"  # cannot be read: permissions, broken link, not a regular file
    OUTSIDE_LANDING = "outside_landing"  # a link that resolves outside the landing area (never opened)
    DUPLICATE = "duplicate"  # same content as a file seen earlier
    NEAR_DUPLICATE = "near_duplicate"  # a re-encode, rescale or trim of a kept video (fingerprints)
    TIMEOUT = "timeout"  # probing took longer than the per-file time limit


class ExportStatus(StrEnum):
    """What happened to a clip of the subset in an export."""

    OK = "ok"
    MISSING_MEDIA = "missing_media"  # its file is gone
    DECODE_ERROR = "decode_error"  # its window could not be decoded
