"""Faults as users meet them, through real processes and real file systems: bad settings and
bad paths (one ``acav: error:`` line naming the option, exit 2, nothing created), ``--as-of``
before the first version, a full disk (a real small tmpfs), two ``acav export`` runs racing into
one folder, a shard lost after its manifest was written, and pool workers whose parent is
killed with SIGKILL."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from acav_assets.core.export.shards import read_manifest
from acav_assets.core.generators.demo import write_demo_videos
from acav_assets.core.warehouse.tables import Warehouse
from acav_assets.defs.runner import curate_landing

pytestmark = pytest.mark.slow  # end to end through Dagster (a quick loop: -m 'not slow')

ACAV = [sys.executable, "-m", "acav_assets.cli"]


def _acav(*args, cwd=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([*ACAV, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=timeout)


def _one_error_line(res: subprocess.CompletedProcess) -> str:
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("acav: error: "), res.stderr
    assert "Traceback" not in res.stdout + res.stderr
    return lines[0]


@contextlib.contextmanager
def small_tmpfs(where: Path, size: str):
    """A real tmpfs of ``size`` mounted at ``where`` (needs root: CI runs as root)."""
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


@pytest.fixture(scope="module")
def curated(tmp_path_factory):
    base = tmp_path_factory.mktemp("faults")
    landing = base / "landing"
    write_demo_videos(landing / "b1", 12, seed=71, duration_s=(5, 8), size=(96, 64))
    curate_landing(
        str(landing),
        str(base / "wh"),
        instance=dg.DagsterInstance.ephemeral(),
        log_level="ERROR",
        run_config={"ops": {"curated_subset": {"config": {"budget": 1.0}}}},
    )
    return base, landing, Warehouse(str(base / "wh"))


# --- settings and paths --------------------------------------------------------------------

BAD_SETTINGS = [
    (["--profile", "bogus"], "--profile"),
    (["--k", "-1"], "--k"),
    (["--extractor-options", "notjson"], "--extractor-options"),
    (["--extractor-options", '{"audio/nope": {}}'], "--extractor-options"),
    (["--device", "bogus"], "--device"),
    (["--max-clips", "0"], "--max-clips"),
    (["--batch-size", "-3"], "batch_size"),
    (["--refine", "-1"], "--refine"),
    (["--budget", "0"], "--budget"),
    (["--allow-link-root", "/does/not/exist"], "--allow-link-root"),
]


def test_every_bad_setting_is_one_line_naming_it_and_nothing_is_created(curated, tmp_path):
    """Before: --profile bogus and --k -1 wrote three tables first; --extractor-options notjson
    said "Expecting value: line 1 column 1 (char 0)"."""
    base, landing, _ = curated
    procs = []
    for i, (opts, _) in enumerate(BAD_SETTINGS):  # side by side: each starts the CLI once
        procs.append(
            subprocess.Popen(
                [*ACAV, "curate", str(landing), "--warehouse", str(tmp_path / f"wh{i}"), *opts],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for (opts, named), p, i in zip(BAD_SETTINGS, procs, range(len(procs))):
        out, err = p.communicate(timeout=300)
        res = subprocess.CompletedProcess(p.args, p.returncode, out, err)
        assert res.returncode == 2, (opts, res.returncode, err)
        assert named in _one_error_line(res), (opts, err)
        assert not (tmp_path / f"wh{i}").exists(), opts  # nothing written, not even the Dagster home


def test_a_warehouse_path_that_cannot_be_written_is_one_line(curated, tmp_path):
    base, landing, _ = curated
    (tmp_path / "afile").write_text("x")
    for wh, says in ((tmp_path / "afile", "is a file"), (tmp_path / "afile" / "sub", "is a file")):
        res = _acav("curate", landing, "--warehouse", wh)
        assert res.returncode == 2 and says in _one_error_line(res)
    with small_tmpfs(tmp_path / "ro", "1m") as ro:
        subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
        res = _acav("curate", landing, "--warehouse", ro / "wh")
        assert res.returncode == 2 and "read-only" in _one_error_line(res)


def test_as_of_before_the_first_version_is_an_error(curated):
    """Before: it silently answered with version 0."""
    base, landing, wh = curated
    res = _acav("subset", "--warehouse", wh.root, "--as-of", "1999-01-01T00:00:00+00:00")
    assert res.returncode == 2 and "before curated_subset's first version" in _one_error_line(res)
    ok = _acav("subset", "--warehouse", wh.root, "--as-of", "2999-01-01T00:00:00+00:00")
    assert ok.returncode == 0 and f"{wh.read('curated_subset').height} clips" in ok.stdout


# --- a full disk -------------------------------------------------------------------------------


def test_a_curation_onto_a_full_disk_stops_before_writing(curated, tmp_path):
    base, landing, _ = curated
    with small_tmpfs(tmp_path / "full", "600k") as full:
        res = _acav("curate", landing, "--warehouse", full / "wh")
        assert res.returncode == 2 and "MiB free" in _one_error_line(res)
        assert not (full / "wh").exists()


def test_a_step_that_fills_the_disk_fails_at_once_with_one_line_not_retried(curated, tmp_path):
    """Before: 139 lines of traceback and two retries, 15 s and 30 s later, that cannot help."""
    from acav_assets.defs.features import clip_embeddings
    from acav_assets.defs.ingest import clips, videos
    from acav_assets.defs.runner import resources_for

    base, landing, _ = curated
    with small_tmpfs(tmp_path / "full", "64k") as full:
        instance = dg.DagsterInstance.ephemeral()
        instance.add_dynamic_partitions("batches", ["b1"])
        t = time.perf_counter()
        result = dg.materialize(
            [videos, clips, clip_embeddings],
            partition_key="b1",
            instance=instance,
            resources=resources_for(str(landing), str(full / "wh")),
            raise_on_error=False,
        )
        assert time.perf_counter() - t < 14  # no retry: the first one would wait 15 s
        assert not result.success
        failures = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
        retries = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
        assert len(failures) == 1 and not retries
        message = failures[0].step_failure_data.user_failure_data.description
        assert "\n" not in message and ("no space left" in message or "disk is full" in message), message
        assert str(full / "wh") in message


def test_an_export_onto_a_full_disk_is_one_line_and_the_rerun_completes(curated, tmp_path):
    base, landing, wh = curated
    with small_tmpfs(tmp_path / "small", "300k") as small:
        res = _acav("export", "--warehouse", wh.root, "--landing", landing, "--out", small / "out", "--workers", "1")
        assert res.returncode == 1 and "no space left on device" in _one_error_line(res)
        subprocess.run(["mount", "-o", "remount,size=64m", str(small)], check=True)
        res = _acav("export", "--warehouse", wh.root, "--landing", landing, "--out", small / "out", "--workers", "1")
        assert res.returncode == 0, res.stderr
        keys = _shard_keys(small / "out")
        assert sorted(keys) == sorted(wh.read("curated_subset")["clip_id"].to_list())


# --- exports racing, a shard lost --------------------------------------------------------------


def _shard_keys(folder: Path) -> list[str]:
    keys = []
    for shard in sorted(folder.glob("clips-*.tar")):
        with tarfile.open(shard) as tar:
            keys += sorted({m.name.split(".", 1)[0] for m in tar})
    return keys


def test_two_exports_into_one_folder_lose_nothing(curated, tmp_path):
    """Before: both picked shard 0 and shared one .tar.tmp; one failed, the other reported 23
    written while its shard held 20, and the manifest listed all 23 as ok."""
    base, landing, wh = curated
    out = tmp_path / "out"
    cmd = [
        *ACAV,
        "export",
        "--warehouse",
        wh.root,
        "--landing",
        str(landing),
        "--out",
        str(out),
        "--shard-clips",
        "3",
        "--workers",
        "1",
    ]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    assert any("waiting for it to finish" in o for o, _ in results), results
    selected = sorted(wh.read("curated_subset")["clip_id"].to_list())
    keys = _shard_keys(out)
    assert sorted(keys) == selected  # every selected clip, each exactly once
    manifest = read_manifest(out)
    assert sorted(manifest.filter(pl.col("status") == "ok")["clip_id"].to_list()) == selected
    for shard, cid in manifest.select("shard", "clip_id").iter_rows():  # the manifest points at real samples
        with tarfile.open(out / shard) as tar:
            assert f"{cid}.mp4" in tar.getnames()
    assert not list(out.glob("*.tmp"))


def test_a_resumed_export_writes_again_what_its_shards_lost(curated, tmp_path):
    base, landing, wh = curated
    out = tmp_path / "out"
    args = (
        "export",
        "--warehouse",
        wh.root,
        "--landing",
        landing,
        "--out",
        out,
        "--shard-clips",
        "4",
        "--workers",
        "1",
    )
    assert _acav(*args).returncode == 0
    shards = sorted(out.glob("clips-*.tar"))
    shards[0].unlink()  # lost after the manifest was written
    with open(shards[1], "r+b") as f:  # and one cut short
        f.truncate(os.path.getsize(shards[1]) // 2)
    res = _acav(*args)
    assert res.returncode == 0, res.stderr
    assert "missing from their shards: exported again" in res.stdout
    assert sorted(_shard_keys(out)) == sorted(wh.read("curated_subset")["clip_id"].to_list())
    assert (out / f"{shards[1].name}.damaged").exists()


# --- workers of a killed parent --------------------------------------------------------------


def _children(pid: int) -> list[int]:
    kids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(d.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has ended; only its parent's reaping is left


_FINGERPRINT_POOL = """
import sys
from pathlib import Path
from acav_assets.core.stages.near_duplicates import fingerprint_rows
root = Path(sys.argv[1])
rows = [{"batch": "b", "video_id": p.stem, "path": str(p.relative_to(root)), "status": "ok", "duration_s": None}
        for p in sorted((root / "b1").glob("*.mp4"))] * 40
fingerprint_rows(rows, root, workers=2, progress=lambda i, n: print("working", flush=True) if i == 1 else None)
"""


@pytest.mark.parametrize("pool", ["export", "fingerprints"])
def test_pool_workers_end_when_their_parent_is_killed(curated, tmp_path, pool):
    """Before: 12 processes of 80-107 MB each were alive minutes after kill -9 of the parent."""
    base, landing, wh = curated
    if pool == "export":
        cmd = [
            *ACAV,
            "export",
            "--warehouse",
            wh.root,
            "--landing",
            str(landing),
            "--out",
            str(tmp_path / "out"),
            "--workers",
            "2",
            "--with-arrays",
        ]
    else:
        cmd = [sys.executable, "-c", _FINGERPRINT_POOL, str(landing)]
    parent = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, workers = time.time() + 120, []
    while time.time() < deadline and parent.poll() is None:
        workers = [c for c in _children(parent.pid) if "multiprocessing" in Path(f"/proc/{c}/cmdline").read_text()]
        if len(workers) >= 2:
            break
        time.sleep(0.05)
    assert len(workers) >= 2 and parent.poll() is None, "the pool did not start (or finished) before the kill"
    time.sleep(0.5)  # the workers are at work
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    time.sleep(5)
    alive = [w for w in workers if _alive(w)]
    for w in alive:  # do not leave them behind whatever the outcome
        with contextlib.suppress(ProcessLookupError):
            os.kill(w, signal.SIGKILL)
    assert not alive, f"{len(alive)} of {len(workers)} workers outlived their parent by 5 s"


def test_demo_data_names_a_batch_writes_its_marker_and_never_overwrites(tmp_path, capsys):
    """Before: demo-data could not name a batch, wrote no _READY (the sensor waited out its quiet
    period) and, pointed at a landing area, overwrote batch_001."""
    from acav_assets.cli import main as acav_main
    from acav_assets.core.media.landing import batch_is_complete

    land = tmp_path / "landing"
    assert acav_main(["demo-data", str(land), "--batch", "b7", "--videos", "3"]) == 0
    assert len(list((land / "b7").glob("*.mp4"))) == 3
    assert batch_is_complete(land / "b7", 300) == (True, "_READY present")
    before = sorted(p.stat().st_mtime_ns for p in (land / "b7").iterdir())
    capsys.readouterr()
    assert acav_main(["demo-data", str(land), "--batch", "b7", "--videos", "3"]) == 2
    assert "never overwrites" in capsys.readouterr().err
    assert sorted(p.stat().st_mtime_ns for p in (land / "b7").iterdir()) == before  # untouched
    assert acav_main(["demo-data", str(land), "--batch", "../escape", "--videos", "3"]) == 2
    assert not (tmp_path / "escape").exists()
    # each named batch draws its own videos: none is a byte copy of the demo's first batch or of another
    assert acav_main(["demo-data", str(land / "demo"), "--videos", "6", "--batches", "2"]) == 0
    assert acav_main(["demo-data", str(land), "--batch", "b8", "--videos", "3"]) == 0
    digests = [hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(land.rglob("*.mp4"))]
    assert len(digests) == 12 and len(set(digests)) == 12
