"""The downstream check through both doors: the ``downstream_report`` asset in a real Dagster run
(its table and picture in the materialization) and ``acav bench downstream`` (a table, the JSON
rows the issue asks for, one clear line for bad input, nothing written before it is refused)."""

from __future__ import annotations

import json

import dagster as dg

from acav_assets.cli import main as acav_main
from acav_assets.defs.definitions import ASSETS
from acav_assets.defs.runner import resources_for

TINY = {"steps": 2, "batch_size": 4, "workers": 0, "seeds": 1, "shots": 1, "size": 32}


def test_the_asset_trains_on_each_set_and_shows_the_table_and_a_picture(tiny_curation, tmp_path):
    from acav_assets.defs.export import downstream_report

    base, landing, held, wh, videos = tiny_curation
    config = {
        **TINY,
        "probe_labels": str(held / "probe.csv"),
        "probe_root": str(held),
        "training_sets": ["curated", "random"],
    }
    result = dg.materialize(
        ASSETS,
        selection=[downstream_report],
        instance=dg.DagsterInstance.ephemeral(),
        resources=resources_for(str(landing), str(base / "wh")),
        run_config={"ops": {"downstream_report": {"config": config}}},
    )
    assert result.success
    (mat,) = [e.step_materialization_data.materialization for e in result.get_asset_materialization_events()]
    meta = {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
    assert "| curated |" in meta["summary"] and "| random |" in meta["summary"] and "| all |" not in meta["summary"]
    assert "data:image/png;base64," in meta["summary"] and "curated beats random on" in meta["summary"]
    for key in ("curated_audio_probe", "curated_visual_probe", "random_audio_probe", "random_visual_probe"):
        assert 0.0 <= meta[key] <= 1.0, key
    # the shards went next to the warehouse, one folder per training set
    assert sorted(p.name.split("-")[0] for p in (base / "export" / "downstream").iterdir()) == ["curated", "random"]


def test_the_asset_refuses_a_run_without_held_out_labels_in_one_line(tiny_curation):
    from acav_assets.defs.export import downstream_report

    base, landing, *_ = tiny_curation
    result = dg.materialize(
        ASSETS,
        selection=[downstream_report],
        instance=dg.DagsterInstance.ephemeral(),
        resources=resources_for(str(landing), str(base / "wh")),
        run_config={"ops": {"downstream_report": {"config": TINY}}},
        raise_on_error=False,
    )
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "set probe_labels" in failure.event_specific_data.error.message


def test_the_command_prints_the_table_and_writes_the_rows(tiny_curation, tmp_path, capsys):
    base, landing, held, wh, videos = tiny_curation
    out = tmp_path / "rows.json"
    code = acav_main(
        [
            "bench",
            "downstream",
            "--warehouse",
            str(base / "wh"),
            "--landing",
            str(landing),
            "--probe-labels",
            str(held / "probe.csv"),
            "--probe-root",
            str(held),
            "--truth",
            str(landing / "batch_001" / "ground_truth.csv"),
            "--training-sets",
            "curated,random,matched",
            "--steps",
            "2",
            "--batch-size",
            "4",
            "--workers",
            "0",
            "--seeds",
            "2",
            "--shots",
            "1",
            "--workdir",
            str(tmp_path / "work"),
            "--json",
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "| matched |" in printed and "±" in printed  # two seeds: a spread
    rows = json.loads(out.read_text())["rows"]
    assert sorted((r["training_set"], r["seed"]) for r in rows) == [
        (s, seed) for s in ("curated", "matched", "random") for seed in (0, 1)
    ]
    for r in rows:
        assert {"training_set", "seed", "audio_probe", "visual_probe", "retrieval_r1"} <= r.keys()
        assert all(0.0 <= r[m] <= 1.0 for m in ("audio_probe", "visual_probe", "retrieval_r1"))


def test_the_command_refuses_bad_held_out_labels_before_it_writes(tiny_curation, tmp_path, capsys):
    base, landing, held, wh, videos = tiny_curation
    bad = tmp_path / "probe.csv"
    bad.write_text(
        "name,visual_label,audio_label\nmissing_1.mp4,a,a\nmissing_2.mp4,a,a\nmissing_3.mp4,b,b\nmissing_4.mp4,b,b\n"
    )
    bad.with_name("probe2.csv").write_text("name,label\nx.mp4,a\n")
    work = tmp_path / "work"
    common = ["bench", "downstream", "--warehouse", str(base / "wh"), "--landing", str(landing), "--workdir", str(work)]
    cases = {
        str(bad): "cannot be decoded",  # files that are not there
        str(bad.with_name("probe2.csv")): "needs the columns",
        str(tmp_path / "nowhere.csv"): "do not exist",
        str(held / "probe.csv"): "needs more than 4 clips",  # too few held-out clips per class for 4 shots
    }
    for csv_path, said in cases.items():
        shots = "4" if csv_path.endswith("heldout/probe.csv") else "1"
        assert acav_main([*common, "--probe-labels", csv_path, "--shots", shots]) == 2
        err = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("  ")]  # not progress
        assert len(err) == 1 and err[0].startswith("acav: error:") and said in err[0], err
    assert acav_main([*common, "--probe-labels", str(held / "probe.csv"), "--seeds", "0"]) == 2
    assert "seeds must be >= 1" in capsys.readouterr().err
    assert not work.exists() or not any(work.rglob("*.tar"))
