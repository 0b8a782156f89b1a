"""The downstream comparison: does a model trained on the curated subset learn better than one
trained on other clips of the same pool?

For each seed, the same model is trained for the same number of steps on

- ``curated``: the warehouse's ``curated_subset``;
- ``random``: a random subset of the pool (the ``clips`` table) of the same size;
- ``all``: the whole pool;
- ``matched`` (with a truth CSV): clips of the pool whose sound truly matches, as many as the
  curated subset (the oracle: what a perfect curation would give);

each set exported into WebDataset shards by the export's own writer
(:func:`acav_assets.core.export.shards.export_subset`, what ``acav export`` runs) and read back
through ``webdataset`` as a user's training would. Every model is evaluated on the same
held-out labelled split (:mod:`acav_assets.core.training.probe`). Labels and truth are read
here, to choose the oracle's clips and to evaluate; the training itself gets shard paths only.
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
import statistics
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import polars as pl

from acav_assets.core.export.cut import CutConfig
from acav_assets.core.export.shards import SHARD_PREFIX, ExportConfig, ExportReport, export_subset
from acav_assets.core.media.landing import Landing
from acav_assets.core.training.probe import ProbeConfig, evaluate_model, load_probe_set
from acav_assets.core.training.train import TrainConfig, build_model, train_av_model
from acav_assets.core.warehouse.tables import Warehouse

__all__ = [
    "TRAINING_SETS",
    "compare_training_sets",
    "default_export_config",
    "export_clip_rows",
    "format_comparison",
    "read_truth",
    "shard_paths",
    "training_set_rows",
]

TRAINING_SETS = ("curated", "random", "all", "matched")
METRICS = ("audio_probe", "visual_probe", "retrieval_r1", "retrieval_class_r1")


def default_export_config(size: int = 32) -> ExportConfig:
    """The export the comparison trains from: 16 kHz sound, pictures at twice the training size
    (decoding stays cheap), small shards so that every DataLoader worker has some."""
    return ExportConfig(
        shard_max_clips=16, cut=CutConfig(sample_rate=16_000, short_side=max(16, size), preset="veryfast")
    )


def shard_paths(out_dir: str | os.PathLike) -> list[str]:
    """The complete shards of an export folder, in order."""
    return [str(p) for p in sorted(Path(out_dir).glob(f"{SHARD_PREFIX}-*.tar"))]


def read_truth(paths: str | os.PathLike | Sequence[str | os.PathLike], landing_root: str | os.PathLike) -> dict:
    """Which videos truly have matching sound, keyed by their path relative to the landing root
    (the ``path`` of the clips table). Each CSV is ``name,matched`` (names relative to the
    landing root) or a ``ground_truth.csv`` as the generators write it (``file,...,matched``,
    names relative to the CSV's own folder)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    root = Path(landing_root).resolve()
    truth: dict[str, bool] = {}
    for p in paths:
        p = Path(p)
        with open(p, newline="") as fh:
            reader = csv.DictReader(fh)
            cols = set(reader.fieldnames or ())
            if "matched" not in cols or not cols & {"name", "file"}:
                raise ValueError(f"{p}: a truth CSV needs name,matched or file,...,matched columns")
            try:
                prefix = p.resolve().parent.relative_to(root).as_posix()
            except ValueError:
                prefix = ""
            for r in reader:
                name = (
                    r["name"] if "name" in cols else (f"{prefix}/{r['file']}" if prefix not in ("", ".") else r["file"])
                )
                truth[name] = str(r["matched"]).strip().lower() in ("1", "true", "yes", "y", "t")
    return truth


def _export_rows(rows: pl.DataFrame, selection_id: str) -> pl.DataFrame:
    """Clip rows as :func:`export_subset` takes them (``curated_subset``'s columns): rows of the
    ``clips`` table get a rank (their order), no gain and a selection id naming the set."""
    out = rows
    if "rank" not in out.columns:
        out = out.with_row_index("rank").with_columns(pl.col("rank").cast(pl.Int64))
    if "gain" not in out.columns:
        out = out.with_columns(pl.lit(None, pl.Float64).alias("gain"))
    if "selection_id" not in out.columns:
        out = out.with_columns(pl.lit(selection_id).alias("selection_id"))
    return out


def export_clip_rows(
    rows: pl.DataFrame,
    landing: Landing | str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    selection_id: str,
    config: ExportConfig | None = None,
    log: Callable[[str], None] = lambda m: None,
) -> ExportReport:
    """Export any list of clips (rows with the ``clips`` table's columns, or ``curated_subset``'s)
    into WebDataset shards with the export's own writer, from media under ``landing``."""
    landing = landing if isinstance(landing, Landing) else Landing(os.fspath(landing))
    return export_subset(
        _export_rows(rows, selection_id),
        landing.media_root_of(log),
        out_dir,
        subset_version=selection_id,
        config=config or default_export_config(),
        log=log,
        allowed_roots=landing.allowed_link_roots,
    )


def training_set_rows(
    wh: Warehouse, seed: int, truth: dict[str, bool] | None = None, sets: Sequence[str] = TRAINING_SETS
) -> dict[str, pl.DataFrame]:
    """The clips of each training set for one seed: ``curated`` (the current ``curated_subset``),
    ``random`` (as many clips of the pool, drawn with ``seed``), ``all`` (the pool) and, with
    ``truth``, ``matched`` (as many truly matching clips of the pool, drawn with ``seed``)."""
    unknown = set(sets) - set(TRAINING_SETS)
    if unknown:
        raise ValueError(f"unknown training sets {sorted(unknown)}; choose from {TRAINING_SETS}")
    if wh.version("curated_subset") is None:
        raise ValueError("curated_subset does not exist: curate first (acav curate)")
    curated = wh.read("curated_subset").sort("rank")
    pool = wh.read("clips").sort("clip_id")
    n = curated.height
    if n == 0 or pool.height == 0:
        raise ValueError("the curated subset or the pool is empty")
    rng = np.random.default_rng(seed)
    out: dict[str, pl.DataFrame] = {}
    if "curated" in sets:
        out["curated"] = curated
    if "random" in sets:
        out["random"] = pool[np.sort(rng.choice(pool.height, min(n, pool.height), replace=False))]
    if "all" in sets:
        out["all"] = pool
    if "matched" in sets and truth:
        good = pool.filter(pl.col("path").replace_strict(truth, default=False, return_dtype=pl.Boolean))
        take = np.sort(np.random.default_rng([seed, 1]).choice(good.height, min(n, good.height), replace=False))
        out["matched"] = good[take]
    return out


def _folder(work: Path, name: str, rows: pl.DataFrame) -> Path:
    """One export folder per distinct list of clips, so a rerun reuses what it exported."""
    digest = hashlib.blake2b("\n".join(sorted(rows["clip_id"].to_list())).encode(), digest_size=6).hexdigest()
    return work / f"{name}-{rows.height}-{digest}"


def compare_training_sets(
    warehouse: Warehouse | str | os.PathLike,
    landing: Landing | str | os.PathLike,
    probe_csv: str | os.PathLike,
    *,
    truth_csv: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    probe_root: str | os.PathLike | None = None,
    seeds: Sequence[int] = (0, 1, 2),
    config: TrainConfig = TrainConfig(),
    probe: ProbeConfig = ProbeConfig(),
    sets: Sequence[str] = TRAINING_SETS,
    work_dir: str | os.PathLike | None = None,
    export_config: ExportConfig | None = None,
    untrained: bool = False,
    device: str = "auto",
    progress: Callable[[str], None] = lambda m: None,
) -> list[dict]:
    """Train the same model for the same steps on each training set, per seed, and evaluate each
    on the held-out split ``probe_csv`` (names relative to ``probe_root``, default the landing
    area's local root). Returns one row per (training set, seed): ``training_set``, ``seed``, ``audio_probe``,
    ``visual_probe``, ``retrieval_r1``, plus ``retrieval_class_r1``, ``clips`` (size of the
    set), ``train_s`` and ``clips_per_s``. ``untrained``: also evaluate the freshly initialised
    model (``training_set = "untrained"``), the floor the probes give without any training.
    Shards go to ``work_dir`` (default: a temporary folder, removed after)."""
    wh = warehouse if isinstance(warehouse, Warehouse) else Warehouse(os.fspath(warehouse))
    landing = landing if isinstance(landing, Landing) else Landing(os.fspath(landing))
    landing_root = landing.local_root()
    truth = read_truth(truth_csv, landing_root) if truth_csv else None
    if truth is not None and not any(truth.values()):
        raise ValueError("the truth CSV lists no matching clip")
    export_config = export_config or default_export_config(config.size)
    progress(f"decoding the held-out split {probe_csv}")
    probe_set = load_probe_set(probe_csv, probe_root or landing_root, config, probe, progress)
    progress(
        f"held-out split: {len(probe_set.names)} clips, {len(probe_set.classes)} classes, "
        f"{int(probe_set.matched.sum())} with matching sound"
    )
    tmp = None if work_dir is not None else tempfile.TemporaryDirectory(prefix="acav_downstream_")
    work = Path(work_dir if work_dir is not None else tmp.name)
    rows: list[dict] = []
    try:
        for seed in seeds:
            if untrained:
                import torch

                torch.manual_seed(seed)
                fresh = build_model(config).eval()
                rows.append(
                    {
                        "training_set": "untrained",
                        "seed": seed,
                        **evaluate_model(fresh, probe_set, probe, device=device, seed=seed),
                        "clips": 0,
                        "train_s": 0.0,
                        "clips_per_s": float("nan"),
                    }
                )
            for name, clips in training_set_rows(wh, seed, truth, sets).items():
                folder = _folder(work, name, clips)
                report = export_clip_rows(
                    clips, landing, folder, selection_id=f"downstream-{name}", config=export_config, log=progress
                )
                if report.written:
                    progress(f"exported {name} ({clips.height} clips) in {report.seconds:.1f} s")
                if report.failed:
                    progress(f"{len(report.failed)} clip(s) of {name} could not be exported; trained without them")
                progress(f"seed {seed}: training on {name} ({clips.height} clips)")
                result = train_av_model(
                    shard_paths(folder),
                    config,
                    seed=seed,
                    device=device,
                    progress=lambda m, n=name: progress(f"  {n}: {m}"),
                )
                metrics = evaluate_model(result.model, probe_set, probe, device=device, seed=seed)
                rows.append(
                    {
                        "training_set": name,
                        "seed": seed,
                        **metrics,
                        "clips": clips.height - len(report.failed),
                        "train_s": result.seconds,
                        "clips_per_s": result.clips_per_second,
                    }
                )
                progress(
                    f"seed {seed} {name}: audio probe {metrics['audio_probe']:.3f}, visual probe "
                    f"{metrics['visual_probe']:.3f}, R@1 {metrics['retrieval_r1']:.3f} "
                    f"({result.clips_per_second:.0f} clips/s)"
                )
    finally:
        if tmp is not None:
            tmp.cleanup()
    return rows


def _mean_std(values: list[float]) -> str:
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.fmean(values):.3f} ± {statistics.stdev(values):.3f}"


def _speed(values: list[float]) -> str:
    values = [v for v in values if not math.isnan(v)]
    return f"{statistics.fmean(values):.0f}" if values else ""


def format_comparison(rows: list[dict], *, title: str = "", per_seed: bool = False) -> str:
    """A Markdown table: per training set, mean ± std over seeds of each metric, the set's size
    and the training speed (``per_seed``: one line per seed as well)."""
    order = [s for s in ("untrained", *TRAINING_SETS) if any(r["training_set"] == s for r in rows)]
    order += sorted({r["training_set"] for r in rows} - set(order))
    head = ["training set", "clips", "seeds", *METRICS, "clips/s"]
    lines = ([f"{title}", ""] if title else []) + [
        "| " + " | ".join(head) + " |",
        "|" + "|".join("---" for _ in head) + "|",
    ]
    for name in order:
        group = [r for r in rows if r["training_set"] == name]
        lines.append(
            "| "
            + " | ".join(
                [
                    name,
                    str(group[0].get("clips", "")),
                    str(len(group)),
                    *(_mean_std([float(r.get(m, float("nan"))) for r in group]) for m in METRICS),
                    _speed([float(r.get("clips_per_s", float("nan"))) for r in group]),
                ]
            )
            + " |"
        )
        if per_seed:
            for r in sorted(group, key=lambda r: r["seed"]):
                lines.append(
                    "| "
                    + " | ".join(
                        [
                            f"  seed {r['seed']}",
                            str(r.get("clips", "")),
                            "",
                            *(f"{float(r.get(m, float('nan'))):.3f}" for m in METRICS),
                            f"{r['clips_per_s']:.0f}" if not math.isnan(r.get("clips_per_s", float("nan"))) else "",
                        ]
                    )
                    + " |"
                )
    return "\n".join(lines)
