"""The encoding matrix: a video of real photographs and recorded sounds, written again in every
encoding of ``ENCODINGS`` (x264 defaults, GOPs of 1/2/10 s, B-frames with open GOP, VFR, a 90°
phone rotation, yuv444, 10-bit, 48 kHz stereo, 5.1, mov, mkv with Vorbis and MP3, webm with VP9
and Opus, sound starting late or ending early), through probe, clip windows, clip decoding,
embedding, fingerprint and export. Each stage must give what it gives for the source."""

from __future__ import annotations

import pytest

from acav_assets.core.evaluation.encoding_matrix import reference, run_encoding
from acav_assets.core.generators.encodings import ENCODINGS
from acav_assets.core.generators.photos_sounds import check_available, write_photo_sound_videos

SIZE = (160, 96)  # landscape, as displayed: the rotated copy is stored 96x160
CLIP_S = 10.0


@pytest.fixture(scope="module")
def matrix(tmp_path_factory):
    missing = check_available()
    if missing:
        pytest.skip("; ".join(missing))
    base = tmp_path_factory.mktemp("matrix")
    write_photo_sound_videos(base / "src", 1, fps=24, size=SIZE, duration_s=(12, 12), seed=4, workers=1)
    src = sorted((base / "src").glob("*.mp4"))[0]
    ref = reference(src)
    (base / "out").mkdir()
    return {e.name: (e, run_encoding(ref, e, base / "out")) for e in ENCODINGS}


@pytest.mark.parametrize("name", [e.name for e in ENCODINGS])
def test_every_stage_gives_what_it_gives_for_the_source(matrix, name):
    enc, r = matrix[name]
    assert r.probe_status == "ok", r.probe_error
    assert abs(r.duration_s - 12.0) < 0.1
    assert (r.width, r.height) == SIZE  # as displayed, rotation included
    assert r.windows == 1
    # the picture of the clip window: upright and at the right times (the same frames left
    # turned differ by ~55 grey levels on average, a re-encode by ~2-3)
    assert r.picture_diff is not None and r.picture_diff < 6.0, r.picture_diff
    # the sound where the copy has it is the source's at the same times; silence where it has none
    assert r.sound_corr is not None and r.sound_corr > 0.9, r.sound_corr
    expected_pad = {"audio_late": 0.5, "audio_ends_early": 2.0}.get(name, 0.0)
    assert abs(r.audio_pad_s - expected_pad) < 0.1, r.audio_pad_s
    assert r.embed_cos > 0.95, r.embed_cos
    # the fingerprint samples the picture whatever the GOP, and finds the copy
    assert r.fingerprint_samples >= 8 and r.fingerprint_sound
    assert r.near_duplicate and r.near_duplicate_on_demand, r.fingerprint_evidence
    # the exported cut: upright, as long as the window, with the copy's sound rate
    assert r.export_size == f"{SIZE[0]}x{SIZE[1]}"
    if enc.vfr:
        assert 0 < r.export_frames < CLIP_S * 24  # constant rate at the copy's average rate
    else:
        assert r.export_frames == round(CLIP_S * 24)
        assert r.export_diff is not None and r.export_diff < 6.0, r.export_diff
    rate = 48_000 if enc.sample_rate == 48_000 or enc.audio_codec == "libopus" else (enc.sample_rate or 22_050)
    assert r.export_samples == round(CLIP_S * rate)
