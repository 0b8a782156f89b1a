"""The curation assets. Each reads its inputs from the warehouse, calls ``acav_assets.core``,
writes its Delta table and returns metadata for the UI; no algorithm lives here.

Per batch (dynamic partitions ``batches``): ``videos`` → ``clips`` → ``clip_embeddings`` →
``cluster_assignments``. Over all batches: ``cluster_centroids`` (fit on a sample) and
``curated_subset`` + ``selection_lineage`` (one selection over every batch).
"""

import base64
import dataclasses
import functools
import inspect
import json
import os
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
from pydantic import Field

from acav_assets.core.clustering import KMeansConfig
from acav_assets.core.export.cut import CutConfig
from acav_assets.core.export.shards import ExportConfig
from acav_assets.core.features.base import profile_feature_spaces
from acav_assets.core.media.clips import SHOT_DETECTORS, ClipConfig
from acav_assets.core.media.fingerprint import NearDuplicateConfig
from acav_assets.core.media.landing import StageReport
from acav_assets.core.media.probe import ProbeConfig
from acav_assets.core.selection import PAIRINGS, WEIGHTING_RULES
from acav_assets.core.selection.weighting import space_summary
from acav_assets.core.stages.agreement import REFINEMENTS
from acav_assets.core.stages.assignments import assignment_rows
from acav_assets.core.stages.centroids import fit_clusterings, load_clusterings, too_few_to_cluster
from acav_assets.core.stages.clips import clip_rows
from acav_assets.core.stages.curation import (
    SELECTION_KEYS,
    SelectionParams,
    choose_mode,
    curate,
    curate_incremental,
    held_settings,
)
from acav_assets.core.stages.embeddings import embedding_rows
from acav_assets.core.stages.near_duplicates import fingerprint_rows, local_files, mark_near_duplicates
from acav_assets.core.stages.videos import mark_known_duplicates, probe_rows
from acav_assets.core.warehouse.fingerprint_index import FingerprintIndex, lookup_lock
from acav_assets.core.warehouse.lineage import lineage_of, lineage_rows, pair_tables, tables_from_lineage
from acav_assets.core.warehouse.local_state import disk_full
from acav_assets.core.warehouse.report import strongest_pair, write_report
from acav_assets.defs import versions
from acav_assets.defs.executors import gpu_op_tags
from acav_assets.defs.metadata import (
    counts_table,
    markdown_table,
    reasons_table,
    selection_summary,
    table_metadata,
    table_schema,
)
from acav_assets.defs.progress import Progress
from acav_assets.defs.resources import ComputeResource, ExtractorResource, LandingResource, WarehouseResource
from acav_assets.defs.versions import CODE_VERSIONS

batches = dg.DynamicPartitionsDefinition(name="batches")

INGEST, FEATURES, CURATION = "ingest", "features", "curation"


# --- run config ---------------------------------------------------------------------------


class VideosConfig(dg.Config):
    min_duration_s: float = Field(default=2.5, description="shorter videos get status too_short")
    max_duration_s: float | None = Field(default=None, description="longer videos get status too_long (reference: 597)")
    max_pixels: int = Field(default=ProbeConfig.max_pixels, description="larger frames get status too_large")
    probe_timeout_s: float = Field(default=120.0, description="time limit per file (status timeout); 0 = none")
    near_duplicates: bool = Field(
        default=True,
        description="fingerprint picture and sound and mark re-uploads "
        "(re-encoded, rescaled, trimmed copies) near_duplicate",
    )
    nd_audio_bits: int = Field(
        default=NearDuplicateConfig.audio_bits, description="sound windows agree within this many of 64 bits"
    )
    nd_audio_match: float = Field(
        default=NearDuplicateConfig.audio_match, description="share of overlapping sound windows that must agree"
    )
    nd_visual_cos: float = Field(
        default=NearDuplicateConfig.visual_cos,
        description="picture samples agree when their DCT coefficients have this cosine",
    )
    nd_visual_match: float = Field(
        default=NearDuplicateConfig.visual_match,
        description="share of the informative picture samples that must find a counterpart",
    )
    nd_window_s: float = Field(
        default=NearDuplicateConfig.window_s,
        description="centre span of each video whose sound is fingerprinted, in seconds (0 = all)",
    )
    fingerprint_workers: int = Field(default=0, description="fingerprinting processes (0 = up to 4, one per core)")

    def near_duplicate_config(self) -> NearDuplicateConfig:
        return NearDuplicateConfig(
            audio_bits=self.nd_audio_bits,
            audio_match=self.nd_audio_match,
            visual_cos=self.nd_visual_cos,
            visual_match=self.nd_visual_match,
            window_s=self.nd_window_s,
        )

    def probe_config(self) -> ProbeConfig:
        return ProbeConfig(
            min_duration_s=self.min_duration_s, max_duration_s=self.max_duration_s, max_pixels=self.max_pixels
        )

    def check(self) -> None:
        """Raise ValueError (naming the field) for a setting that cannot work."""
        self.probe_config()
        self.near_duplicate_config()
        if self.probe_timeout_s < 0:
            raise ValueError(f"probe_timeout_s must be >= 0 (0 = none), got {self.probe_timeout_s}")
        if self.fingerprint_workers < 0:
            raise ValueError(f"fingerprint_workers must be >= 0 (0 = automatic), got {self.fingerprint_workers}")


class ClipsConfig(dg.Config):
    clip_s: float = Field(default=10.0, description="clip length in seconds")
    min_clip_s: float = Field(default=2.5, description="shortest video that still gives one (shorter) clip")
    max_clips: int = Field(default=1, description="clips per video; > 1 places them on distinct shots (reference: 3)")
    shot_detector: str = Field(
        default=ClipConfig.shot_detector,
        description=f"with max_clips > 1, how shots are found: one of {SHOT_DETECTORS} "
        "(transnetv2: the TransNetV2 network over every frame; keyframes: "
        "colour histograms of key frames)",
    )

    def clip_config(self) -> ClipConfig:
        return ClipConfig(
            clip_s=self.clip_s, min_clip_s=self.min_clip_s, max_clips=self.max_clips, shot_detector=self.shot_detector
        )

    def check(self) -> None:
        self.clip_config()


class ClusteringConfig(dg.Config):
    k: int = Field(default=0, description="clusters per feature space; 0 = about sqrt(n/3), at most max_k")
    max_k: int = Field(default=32, description="upper bound of the automatic k (reference: 32)")
    niter: int = Field(default=25, description="k-means iterations")
    nredo: int = Field(default=0, description="k-means runs, best kept; 0 = 10 for small fits, 3 medium, 1 large")
    seed: int = Field(default=0, description="seed of the sample and of k-means")
    max_sample: int = Field(default=200_000, description="clips per feature space used to fit")
    normalize: bool = Field(default=KMeansConfig.normalize, description="L2-normalise embeddings before clustering")
    whiten: bool = Field(default=KMeansConfig.whiten, description="PCA-whiten embeddings before clustering")

    def kmeans_config(self) -> KMeansConfig:
        return KMeansConfig(
            k=max(2, self.max_k),
            niter=self.niter,
            seed=self.seed,
            max_sample=self.max_sample,
            normalize=self.normalize,
            whiten=self.whiten,
        )

    def check(self) -> None:
        if self.k != 0 and self.k < 2:
            raise ValueError(f"k must be 0 (automatic) or at least 2, got {self.k}")
        if self.max_k < 2:
            raise ValueError(f"max_k must be at least 2, got {self.max_k}")
        if self.nredo < 0:
            raise ValueError(f"nredo must be >= 0 (0 = automatic), got {self.nredo}")
        self.kmeans_config()


_HELD = " (unset: the warehouse's current setting, from the subset's last selection; else {})"


class SelectionConfig(dg.Config):
    """The selection's settings. Those of ``SELECTION_KEYS`` left unset continue with the ones the
    warehouse's current subset was made with (whoever launches the run: the CLI, the UI,
    automation); a value given that differs re-selects fully, and the run says so. The defaults
    are ``SelectionParams``'s."""

    budget: float | None = Field(
        default=None,
        description="share of the pool in (0, 1], or a number of clips if > 1" + _HELD.format(SelectionParams.budget),
    )
    pairing: str | None = Field(default=None, description=f"one of {PAIRINGS}" + _HELD.format(SelectionParams.pairing))
    batch_size: int | None = Field(
        default=None,
        description="candidates drawn per greedy step; 0 = exact greedy" + _HELD.format(SelectionParams.batch_size),
    )
    take: int | None = Field(default=None, description="candidates kept per step" + _HELD.format(SelectionParams.take))
    seed: int | None = Field(
        default=None, description="seed of the candidate draws" + _HELD.format(SelectionParams.seed)
    )
    refine: int | None = Field(
        default=None,
        description="swap-refinement rounds after greedy (0 = reference behaviour)"
        + _HELD.format(SelectionParams.refine),
    )
    refine_fraction: float | None = Field(
        default=None,
        description="share of the subset swapped per refinement round" + _HELD.format(SelectionParams.refine_fraction),
    )
    mode: str = Field(
        default="auto",
        description="'incremental' keeps the previous subset and adds the new batches' "
        "share; 'full' re-selects everything; 'auto' = incremental unless "
        "the centroids or the settings changed or there is no previous subset",
    )
    restarts: int = Field(
        default=0,
        description="selections with seeds seed..seed+n-1, best objective kept; 0 = 4 on pools up to 1M clips, else 1",
    )
    weighting: str | None = Field(
        default=None,
        description="pair weighting: 'ami' keeps the clustering pairs whose "
        "pool carries cross-modal information beyond chance "
        "(label-free); 'plain' = the reference's mean over all "
        "pairs" + _HELD.format(SelectionParams.weighting),
    )
    weight_keep: float | None = Field(
        default=None,
        description="'ami': share of the best pair's adjusted MI a pair needs"
        + _HELD.format(SelectionParams.weight_keep),
    )
    dedup_cosine: float | None = Field(
        default=None,
        description="semantic dedup before selection: clips whose "
        "embeddings reach this cosine with an earlier clip of "
        "the same clusters in every dedup space leave the pool "
        "(0 = off; e.g. 0.98)" + _HELD.format(SelectionParams.dedup_cosine),
    )
    dedup_spaces: str | None = Field(
        default=None,
        description="comma-separated feature spaces compared by semantic "
        "dedup ('' = every clustered space)" + _HELD.format("''"),
    )

    refinement: str | None = Field(
        default=None,
        description="after the MI search: 'agreement' exchanges the picks whose sound agrees least "
        "with their picture for unpicked clips that agree more (label-free; docs/quality.md); "
        "'none' keeps the MI selection as it is" + _HELD.format(SelectionParams.refinement),
    )

    def given(self) -> list[str]:
        """The selection settings this run gives (the others are held or default)."""
        return [k for k in SELECTION_KEYS if getattr(self, k) is not None]

    def resolved(self, held: dict | None = None) -> dict:
        """Every selection setting as ``SelectionParams`` takes it: given here, else ``held``
        (the warehouse's, :func:`held_settings`), else the default."""
        defaults = SelectionParams()
        out = {}
        for k in SELECTION_KEYS:
            v = getattr(self, k)
            if v is None:
                v = (held or {}).get(k, getattr(defaults, k))
            elif k == "batch_size":
                v = v or None  # 0: exact greedy
            elif k == "dedup_spaces":
                v = [x.strip() for x in v.split(",") if x.strip()]
            out[k] = list(v) if k == "dedup_spaces" else v
        return out

    def version_settings(self, held: dict | None = None) -> dict:
        """What the selection's data version depends on: the effective settings and the rest of
        this config (``mode`` is left out by :mod:`acav_assets.defs.versions`)."""
        return {**self.model_dump(), **self.resolved(held)}

    def params(self, held: dict | None = None) -> SelectionParams:
        r = self.resolved(held)
        budget, batch_size, take = r["budget"], r["batch_size"], r["take"]
        if not (0 < budget <= 1 or (budget > 1 and float(budget).is_integer())):
            raise ValueError(f"budget must be a share in (0, 1] or a whole number of clips, got {budget}")
        if r["pairing"] not in PAIRINGS:
            raise ValueError(f"unknown pairing {r['pairing']!r}: expected one of {PAIRINGS}")
        if (batch_size is not None and batch_size < 0) or take < 1 or (batch_size and take > batch_size):
            raise ValueError(
                f"batch_size must be >= take >= 1 (or 0 for exact greedy), got batch_size={batch_size}, take={take}"
            )
        if self.mode not in ("auto", "incremental", "full"):
            raise ValueError(f"mode must be auto, incremental or full, got {self.mode!r}")
        if r["weighting"] not in WEIGHTING_RULES:
            raise ValueError(f"unknown weighting {r['weighting']!r}: expected one of {WEIGHTING_RULES}")
        if not 0.0 <= r["weight_keep"] <= 1.0:
            raise ValueError(f"weight_keep must be in [0, 1], got {r['weight_keep']}")
        if not 0.0 <= r["dedup_cosine"] <= 1.0:
            raise ValueError(f"dedup_cosine must be in [0, 1] (0 = off), got {r['dedup_cosine']}")
        if r["refinement"] not in REFINEMENTS:
            raise ValueError(f"unknown refinement {r['refinement']!r}: expected one of {REFINEMENTS}")
        return SelectionParams(
            **{**r, "dedup_spaces": tuple(r["dedup_spaces"])}, restarts=self.restarts, mode=self.mode
        )

    def check(self, held: dict | None = None) -> None:
        """The given settings checked against ``held`` (the warehouse's, when known), else the
        defaults; :meth:`params` checks again in the step, with the warehouse's settings."""
        if self.refine is not None and self.refine < 0:
            raise ValueError(f"refine must be >= 0, got {self.refine}")
        if self.restarts < 0:
            raise ValueError(f"restarts must be >= 0 (0 = automatic), got {self.restarts}")
        self.params(held)


def _fail(exc: Exception) -> dg.Failure:
    return dg.Failure(description=str(exc), allow_retries=False)


def _check(config) -> None:
    """A setting that cannot work fails the step before it reads or writes anything."""
    try:
        config.check()
    except ValueError as exc:
        raise _fail(exc) from exc


def _stage(context: dg.AssetExecutionContext, landing: LandingResource, batch: str) -> StageReport:
    """The batch's media, local (a remote landing area is copied into the staging cache)."""
    area = landing.get()
    rep = area.stage(batch, log=context.log.info)
    if area.remote:
        context.log.info(
            f"staged batch {batch} from {area.root}: {rep.copied} file(s) copied "
            f"({rep.bytes_copied / 1e6:.1f} MB), {rep.kept} already cached, in {rep.seconds:.1f} s"
        )
    return rep


def _stage_metadata(rep: StageReport) -> dict:
    if not rep.copied and not rep.kept:
        return {}
    return {
        "staged_files_copied": rep.copied,
        "staged_files_cached": rep.kept,
        "staged_mb": round(rep.bytes_copied / 1e6, 2),
        "staging_seconds": round(rep.seconds, 2),
    }


#: Per-batch steps retry what may pass on a second try (a storage hiccup, a GPU out of memory
#: in a busy pool): twice, 15 s then 30 s later. A bad configuration or input fails at once
#: (``_fail`` raises ``dg.Failure(allow_retries=False)``), and is shown in the run, not retried.
BATCH_RETRY = dg.RetryPolicy(max_retries=2, delay=15, backoff=dg.Backoff.EXPONENTIAL)


def final_when_disk_full(fn):
    """A full disk will still be full in 15 s: the step fails at once, with one line naming
    the warehouse, instead of being retried (each table write is atomic: nothing half-written
    stays)."""

    def final(exc: Exception, kwargs: dict) -> dg.Failure | None:
        full = disk_full(exc)
        if full is None:
            return None
        where = kwargs.get("warehouse")
        root = f" (warehouse {where.root})" if where is not None else ""
        return dg.Failure(description=f"{full}{root}: free some space, then re-run", allow_retries=False)

    if inspect.isgeneratorfunction(fn):  # a step that may yield nothing (waits) stays a generator

        @functools.wraps(fn)
        def steps(context, *args, **kwargs):
            try:
                yield from fn(context, *args, **kwargs)
            except dg.Failure:
                raise
            except Exception as exc:
                if (failure := final(exc, kwargs)) is None:
                    raise
                raise failure from exc

        return steps

    @functools.wraps(fn)
    def step(context, *args, **kwargs):
        try:
            return fn(context, *args, **kwargs)
        except dg.Failure:
            raise
        except Exception as exc:
            if (failure := final(exc, kwargs)) is None:
                raise
            raise failure from exc

    return step


def _exact_copies_elsewhere(wh, batch: str, rows: list[dict]) -> dict[str, str]:
    """Video id -> path of the ``ok`` videos of other batches with the content of ``rows``
    (looked up for these ids only: a dict of every earlier video would not fit at 100M clips)."""
    ids = sorted({r["video_id"] for r in rows})
    return {
        r["video_id"]: r["path"]
        for r in wh.scan("videos")
        .filter((pl.col("batch") != batch) & (pl.col("status") == "ok") & pl.col("video_id").is_in(ids))
        .select("video_id", "path")
        .collect()
        .iter_rows(named=True)
    }


def _version(v: str) -> dict:
    """``data_version=`` for a MaterializeResult (see :mod:`acav_assets.defs.versions`)."""
    return {"data_version": dg.DataVersion(v)}


def profile_identity(extractors: ExtractorResource) -> dict:
    """The extractor profile and its options: what the embeddings are (part of their version)."""
    return {"profile": extractors.profile, "options": json.loads(extractors.options_json or "{}")}


# --- per-batch assets ---------------------------------------------------------------------


@dg.asset(
    partitions_def=batches,
    group_name=INGEST,
    kinds={"pyav", "deltalake"},
    code_version=CODE_VERSIONS["videos"],
    retry_policy=BATCH_RETRY,
    description="One row per input file of the batch, whatever happened to it: content id, streams, "
    "duration, status (ok, no_audio, corrupt, duplicate, …) and a readable error.",
)
@final_when_disk_full
def videos(
    context: dg.AssetExecutionContext, config: VideosConfig, landing: LandingResource, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    _check(config)
    batch = context.partition_key
    try:
        landing.check()
        probe = dataclasses.replace(config.probe_config(), allowed_roots=tuple(landing.allowed_link_roots))
        wh = warehouse.get()
        fingerprint = landing.get().fingerprint(batch)  # what the batch held when it was probed
        staged = _stage(context, landing, batch)
        rows = probe_rows(
            staged.local_root,
            batch,
            probe,
            timeout_s=config.probe_timeout_s or None,
            progress=Progress(context.log.info, f"probing batch {batch}", "file"),
        )
        rows = mark_known_duplicates(rows, _exact_copies_elsewhere(wh, batch, rows))  # not fingerprinted then
        nd_config = config.near_duplicate_config()
    except ValueError as exc:
        raise _fail(exc) from exc
    pairs, prints, index = [], [], None
    if config.near_duplicates:
        workers = config.fingerprint_workers or min(4, os.cpu_count() or 1)
        prints = fingerprint_rows(
            rows,
            staged.local_root,
            workers=workers,
            window_s=nd_config.window_s,
            log=context.log.warning,
            progress=Progress(context.log.info, f"fingerprinting batch {batch}", "video"),
        )
    # from the lookups to the writes one batch at a time: a batch ingested at the same time
    # waits, then finds its copies among this one's videos
    with lookup_lock(wh):
        rows = mark_known_duplicates(rows, _exact_copies_elsewhere(wh, batch, rows))  # written meanwhile
        ok = {(r["video_id"], r["path"]) for r in rows if r["status"] == "ok"}
        prints = [p for p in prints if (p["video_id"], p["path"]) in ok]
        if config.near_duplicates:
            # the other batches' kept videos are looked up in the on-disk hash index (brought up
            # to date from the tables first); only the candidates' fingerprints are read
            index = FingerprintIndex(wh)
            index.sync(log=context.log.info)
            pairs = mark_near_duplicates(
                rows, prints, index, nd_config, local_files(staged.local_root, tuple(landing.allowed_link_roots))
            )
        wh.write_batch("video_fingerprints", batch, prints)  # none when switched off: nothing stale stays indexed
        n = wh.write_batch("videos", batch, rows)
        if index is not None:
            index.sync()  # this batch's kept videos, for the next batch's lookups
    df = pl.DataFrame(rows) if rows else pl.DataFrame()
    statuses = Counter(r["status"] for r in rows)
    for r in rows:
        if r["status"] != "ok":
            context.log.warning(f"{r['path']}: {r['status']} — {r['error']}")
    version = versions.videos_version(fingerprint, config.model_dump(), landing.allowed_link_roots)
    return dg.MaterializeResult(
        **_version(version),
        metadata={
            **table_metadata(
                "videos",
                df.select([c for c in ("path", "status", "error", "duration_s", "width", "height") if c in df.columns])
                if rows
                else df,
                wh=warehouse.get(),
            ),
            "dagster/row_count": n,
            "ok": statuses.get("ok", 0),
            "landing_fingerprint": fingerprint,
            "status_counts": dg.MetadataValue.md(counts_table(statuses, "status", "files")),
            "near_duplicates": len(pairs),
            **({"fingerprint_index_videos": index.live_videos()} if index is not None else {}),
            "near_duplicate_pairs": dg.MetadataValue.md(
                markdown_table(
                    pl.DataFrame(pairs).select(
                        "near_duplicate", "kept", "audio_agreement", "visual_agreement", "shift_s"
                    ),
                    limit=20,
                )
                if pairs
                else "_none_"
            ),
            **_stage_metadata(staged),
        },
    )


@dg.asset(
    partitions_def=batches,
    group_name=INGEST,
    kinds={"python", "deltalake"},
    deps=[videos],
    code_version=CODE_VERSIONS["clips"],
    retry_policy=BATCH_RETRY,
    description="10 s clip windows of the batch's ok videos (centred; or on distinct shots).",
)
@final_when_disk_full
def clips(
    context: dg.AssetExecutionContext, config: ClipsConfig, landing: LandingResource, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    _check(config)
    batch = context.partition_key
    wh = warehouse.get()
    try:
        cfg = config.clip_config()
    except ValueError as exc:
        raise _fail(exc) from exc
    video_rows = wh.scan("videos").filter(pl.col("batch") == batch).collect().to_dicts()
    # only shot detection reads the media; centred windows need the probed durations alone
    try:
        root = _stage(context, landing, batch).local_root if cfg.max_clips > 1 else landing.get().local_root()
    except ValueError as exc:  # gone since probing: centred windows (clip_rows), failures at embedding
        context.log.warning(str(exc))
        root = landing.get().local_root()
    rows = clip_rows(video_rows, root, cfg, allowed_roots=tuple(landing.allowed_link_roots))
    wh.write_batch("clips", batch, rows)
    df = pl.DataFrame(
        rows,
        schema={
            "batch": pl.String,
            "clip_id": pl.String,
            "video_id": pl.String,
            "path": pl.String,
            "start_s": pl.Float64,
            "end_s": pl.Float64,
        },
    )
    version = versions.clips_version(versions.recorded_version(context.instance, "videos", batch), config.model_dump())
    return dg.MaterializeResult(
        **_version(version),
        metadata={**table_metadata("clips", df, wh=wh), "videos_ok": sum(v["status"] == "ok" for v in video_rows)},
    )


@dg.asset(
    partitions_def=batches,
    group_name=FEATURES,
    kinds={"torch", "deltalake"},
    deps=[clips],
    pool="gpu",
    code_version=CODE_VERSIONS["clip_embeddings"],
    retry_policy=BATCH_RETRY,
    op_tags=gpu_op_tags(),
    description="Audio and visual embeddings of every clip, several layers each "
    "(feature_space = <modality>/<model>/<layer>).",
)
@final_when_disk_full
def clip_embeddings(
    context: dg.AssetExecutionContext,
    landing: LandingResource,
    warehouse: WarehouseResource,
    compute: ComputeResource,
    extractors: ExtractorResource,
) -> dg.MaterializeResult:
    batch = context.partition_key
    wh = warehouse.get()
    try:
        exs = extractors.build(compute.device)
    except (ValueError, FileNotFoundError) as exc:
        raise _fail(exc) from exc
    clip_list = wh.scan("clips").filter(pl.col("batch") == batch).sort("clip_id").collect().to_dicts()
    progress = Progress(context.log.info, f"embedding batch {batch}", "clip")
    try:
        staged = _stage(context, landing, batch)
    except ValueError as exc:  # the batch folder is gone: every clip gets its failure recorded below
        context.log.warning(str(exc))
        staged = StageReport(landing.get().local_root())
    t0 = time.perf_counter()
    df, failed = embedding_rows(
        clip_list,
        staged.local_root,
        exs,
        batch_size=compute.batch_size,
        decode_workers=compute.decode_workers,
        progress=progress,
        allowed_roots=tuple(landing.allowed_link_roots),
    )
    seconds = time.perf_counter() - t0
    for cid, why in failed.items():
        context.log.warning(f"clip {cid} not embedded: {why}")
    wh.write_batch("clip_embeddings", batch, df)
    if not landing.keep_staged:
        landing.get().release(batch)  # the last step that reads the media
    spaces = profile_feature_spaces(exs)
    embedded = len(clip_list) - len(failed)
    version = versions.embeddings_version(
        versions.recorded_version(context.instance, "clips", batch), profile_identity(extractors)
    )
    return dg.MaterializeResult(
        **_version(version),
        metadata={
            **table_metadata("clip_embeddings", df, wh=wh),
            "clips_embedded": embedded,
            "clips_failed": len(failed),
            "failures": dg.MetadataValue.md(reasons_table(failed, "clip") if failed else "_none_"),
            "feature_spaces": dg.MetadataValue.md(
                counts_table({fs.name: fs.dim for fs in spaces}, "feature space", "dim")
            ),
            "device": str(exs[0].device),
            "seconds": round(seconds, 2),
            "clips_per_second": round(embedded / seconds, 2) if seconds > 0 else 0.0,
            **_stage_metadata(staged),
        },
    )


# --- over all batches ---------------------------------------------------------------------


@dg.asset(
    group_name=FEATURES,
    kinds={"faiss", "deltalake"},
    # frozen by design: a new batch's embeddings do not make the centroids stale (no
    # partition of clip_embeddings is an input of the staleness; the edge stays in the
    # lineage). The fit is explicit: once when missing (`fit_when_missing`), then the refit
    # schedule (pool growth) or a change of the feature spaces (acav curate)
    deps=[dg.AssetDep(clip_embeddings, partition_mapping=dg.SpecificPartitionsPartitionMapping([]))],
    code_version=CODE_VERSIONS["cluster_centroids"],
    # too few clips to cluster is a state, not a failure: no materialization, and the
    # assignments and the selection wait for more data
    output_required=False,
    description="k-means centroids per feature space, fitted on a bounded sample of all batches; "
    "frozen for assigning new batches until the next refit. Waits (no materialization) while "
    "the clips embedded so far are too few to cluster.",
)
def cluster_centroids(
    context: dg.AssetExecutionContext,
    config: ClusteringConfig,
    warehouse: WarehouseResource,
    extractors: ExtractorResource,
) -> Iterator[dg.MaterializeResult]:
    _check(config)
    wh = warehouse.get()
    waiting = too_few_to_cluster(wh, config.k or None, empty_waits=False)  # nothing embedded: an error
    if waiting:
        context.log.warning(waiting)
        return
    try:
        clusterings = fit_clusterings(
            wh, config.kmeans_config(), k=config.k or None, nredo=config.nredo or None, log=context.log.info
        )
    except ValueError as exc:
        raise _fail(exc) from exc
    rows = [r for cl in clusterings for r in cl.to_rows()]
    wh.overwrite("cluster_centroids", rows)
    summary = pl.DataFrame(
        [
            {
                "clustering_id": c.clustering_id,
                "feature_space": c.feature_space,
                "k": c.k,
                "sample": c.params["n_sample"],
                "inertia": c.params["objective"],
            }
            for c in clusterings
        ]
    )
    fit = versions.fit_version(profile_identity(extractors), config.model_dump())
    version = versions.centroids_version(fit, [c.clustering_id for c in clusterings])
    yield dg.MaterializeResult(
        **_version(version),
        metadata={
            "dagster/row_count": len(rows),
            "dagster/column_schema": table_metadata("cluster_centroids", pl.DataFrame())["dagster/column_schema"],
            "clusterings": dg.MetadataValue.md(markdown_table(summary, limit=100)),
            "clustering_ids": dg.MetadataValue.json([c.clustering_id for c in clusterings]),
            "fit_version": fit,
        },
    )


@dg.asset(
    partitions_def=batches,
    group_name=FEATURES,
    kinds={"faiss", "deltalake"},
    code_version=CODE_VERSIONS["cluster_assignments"],
    retry_policy=BATCH_RETRY,
    deps=[clip_embeddings, cluster_centroids],
    # not for embeddings that failed their blocking validity check (NaN/inf, wrong dimension);
    # embeddings materialized without the check (e.g. by hand, checks deselected) still flow
    automation_condition=(
        dg.AutomationCondition.eager()
        & dg.AutomationCondition.all_deps_match(
            dg.AutomationCondition.all_checks_match(~dg.AutomationCondition.check_failed(), blocking_only=True)
        )
    ).with_label("eager, unless the embeddings failed their blocking check"),
    # part of each batch's ingest run; before the first fit there is nothing to assign to
    # (no materialization: automation assigns the batch once the centroids exist)
    output_required=False,
    description="Nearest frozen centroid of every clip of the batch, per clustering. Waits (no "
    "materialization) while there are no centroids yet.",
)
@final_when_disk_full
def cluster_assignments(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> Iterator[dg.MaterializeResult]:
    batch = context.partition_key
    wh = warehouse.get()
    if wh.scan("cluster_centroids").head(1).collect().height == 0:
        context.log.info(f"no centroids yet: batch {batch} is assigned once they are fitted")
        return
    try:
        clusterings = load_clusterings(wh)
    except ValueError as exc:
        raise _fail(exc) from exc
    df = assignment_rows(wh, batch, clusterings)
    wh.write_batch("cluster_assignments", batch, df)
    embedded = wh.scan("clip_embeddings").filter(pl.col("batch") == batch).select("clip_id").unique().collect().height
    complete = df.group_by("clip_id").len().filter(pl.col("len") == len(clusterings)).height if df.height else 0
    incomplete = embedded - complete
    if incomplete:
        context.log.warning(
            f"{incomplete} clip(s) of batch {batch} have NaN/inf embeddings in some feature space: left out of the pool"
        )
    version = versions.assignments_version(
        versions.recorded_version(context.instance, "clip_embeddings", batch), {c.clustering_id for c in clusterings}
    )
    yield dg.MaterializeResult(
        **_version(version),
        metadata={
            **table_metadata("cluster_assignments", df, wh=wh),
            "clusterings": len(clusterings),
            "clips": df["clip_id"].n_unique() if df.height else 0,
            "clips_left_out_nonfinite": incomplete,
        },
    )


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "curated_subset",
            deps=[cluster_assignments, clips],
            group_name=CURATION,
            code_version=CODE_VERSIONS["curated_subset"],
            kinds={"numba", "deltalake"},
            # eager on new assignments, not held back by a batch whose assignments are
            # missing (its ingest failed or is under way: selected when they arrive);
            # new clips alone do not trigger it (their assignments will), and it waits
            # until some batch is assigned at all
            # a batch's first ingest (its assignments are part of the run) does not hold it
            # back either; a re-assignment of batches already assigned (a refit) does
            automation_condition=(
                dg.AutomationCondition.eager()
                .without(~dg.AutomationCondition.any_deps_missing())
                .without(~dg.AutomationCondition.any_deps_in_progress())
                .ignore(dg.AssetSelection.assets("clips"))
                & dg.AutomationCondition.any_deps_match(~dg.AutomationCondition.missing()).allow(
                    dg.AssetSelection.assets("cluster_assignments")
                )
                & ~dg.AutomationCondition.any_deps_match(
                    dg.AutomationCondition.in_progress() & ~dg.AutomationCondition.missing()
                ).allow(dg.AssetSelection.assets("cluster_assignments"))
            ).with_label("eager on assignments, missing batches wait"),
            description="The selected clips, in the order chosen: batch-greedy maximisation of the mean "
            "audio-visual mutual information over every batch.",
        ),
        dg.AssetSpec(
            "selection_lineage",
            deps=["curated_subset"],
            group_name=CURATION,
            kinds={"deltalake"},
            code_version=CODE_VERSIONS["selection_lineage"],
            description="Per clustering pair and cluster cell: clips in the pool and in the subset, and "
            "the cell's share of the MI — what drove the selection.",
        ),
    ],
)
def curated_subset(context: dg.AssetExecutionContext, config: SelectionConfig, warehouse: WarehouseResource):
    wh = warehouse.get()
    progress = Progress(context.log.info, "selecting", "clip", every_s=5)
    try:
        held = held_settings(wh)
        config.check(held)  # a setting that cannot work with the warehouse's others fails before any work
        params = config.params(held)
        given = config.given()
        kept = [k for k in SELECTION_KEYS if k not in given and k in held]
        context.log.info(
            f"settings: {', '.join(f'{k} {getattr(params, k)!r}' for k in ('budget', 'pairing', 'seed'))}"
            + (f"; held by the warehouse: {', '.join(kept)}" if kept else "")
            + (f"; given by this run: {', '.join(given)}" if given else "")
        )
        version = versions.subset_version(
            versions.recorded_assignment_versions(context.instance), config.version_settings(held)
        )
        mode, why = choose_mode(wh, params)
        context.log.info(f"{mode} selection: {why}")
        cur = curate_incremental(wh, params, progress=progress) if mode == "incremental" else None
        if mode == "incremental" and cur is None:
            context.log.info("no new batch since the previous selection: the subset is unchanged")
            yield dg.MaterializeResult(
                asset_key="curated_subset", **_version(version), metadata={"mode": "unchanged", "reason": why}
            )
            yield dg.MaterializeResult(asset_key="selection_lineage", metadata={"mode": "unchanged"})
            return
        if cur is None:
            cur = curate(wh, params, progress=progress)
    except ValueError as exc:
        raise _fail(exc) from exc
    sel = cur.selection
    clusterings = {c.clustering_id: c for c in load_clusterings(wh)}
    ks = [clusterings[c].k for c in cur.columns]
    pairs = cur.pairs
    subset_labels = np.asarray(cur.subset["clusters"].to_list(), dtype=np.int64).reshape(cur.subset.height, len(ks))
    if mode == "incremental":
        # the lineage of the selection this one extends (not necessarily the table's newest)
        prev = lineage_of(wh, json.loads(cur.run["params"])["after"])
        new_pool = cur.labels[sel.n_initial :] if cur.pool_rows is None else cur.labels[cur.pool_rows[sel.n_initial :]]
        pool = [a + b for a, b in zip(tables_from_lineage(prev, pairs, ks), pair_tables(new_pool, pairs, ks))]
    else:
        pool = pair_tables(cur.labels if cur.pool_rows is None else cur.labels[cur.pool_rows], pairs, ks)
    lineage = lineage_rows(
        pool,
        pair_tables(subset_labels, pairs, ks),
        pairs,
        cur.columns,
        cur.feature_spaces,
        cur.selection_id,
        scores=cur.weighting.scores,
        weights=cur.weighting.weights,
    )
    spaces = pl.DataFrame(space_summary(cur.weighting.to_records(pairs, cur.feature_spaces)))
    # The run row first and the subset last: the subset is the commit point. A step that dies in
    # between leaves the previous subset with its own run row (the next run warm-starts from it,
    # finding its lineage by selection id with lineage_of), never a subset without the run that
    # made it.
    wh.replace_key("selection_runs", "selection_id", cur.selection_id, [cur.run])  # idempotent per selection
    if cur.duplicates is not None:
        wh.replace_key("semantic_duplicates", "selection_id", cur.selection_id, cur.duplicates)
    wh.overwrite("selection_lineage", lineage)
    wh.overwrite("curated_subset", cur.subset)
    by_batch = dict(cur.subset.group_by("batch").len().iter_rows())
    visuals = {}
    if "://" not in warehouse.root:  # local warehouse: keep the report next to the tables
        paths = write_report(wh, Path(warehouse.root) / "_reports" / cur.selection_id)
        png = Path(paths["heatmap"]).read_bytes()
        _, pair = strongest_pair(lineage)
        visuals = {
            "heatmap": dg.MetadataValue.md(
                f"Selected clips per cell of the strongest pair ({pair['feature_space_a']} × "
                f"{pair['feature_space_b']}, MI {pair['pair_mi']:.3f}):\n\n"
                f"![heatmap](data:image/png;base64,{base64.b64encode(png).decode()})"
            ),
            "heatmap_path": dg.MetadataValue.path(paths["heatmap"]),
            "report_path": dg.MetadataValue.path(paths["report"]),
        }
    top = (
        lineage.group_by("feature_space_a", "feature_space_b")
        .agg(pl.col("pair_mi").first())
        .sort("pair_mi", descending=True)
        .head(10)
    )
    yield dg.MaterializeResult(
        asset_key="curated_subset",
        **_version(version),
        metadata={
            **table_metadata(
                "curated_subset", cur.subset.select("rank", "path", "start_s", "end_s", "gain", "batch"), wh=wh
            ),
            "dagster/row_count": cur.subset.height,
            "selection_id": cur.selection_id,  # the table's rows, not the added
            "objective_mi_nats": float(sel.objective),
            "budget": params.budget,
            "pool_size": cur.run["pool_size"],
            # what the budget asks for, computed apart from the result (the size check compares them):
            # a warm start keeps the previous clips and adds the budget's share of the new ones
            "expected_size": (
                sel.n_initial + int(round(params.budget * sel.pool_size))
                if mode == "incremental"
                else int(params.budget)
                if params.budget > 1
                else int(round(params.budget * sel.pool_size))
            ),
            "pairing": params.pairing,
            "mode": mode,
            "mode_reason": why,
            "added": len(sel),
            "pairs_counted": int((cur.weighting.weights > 0).sum()),
            # everything else a reader wants, in one place
            "summary": dg.MetadataValue.md(
                selection_summary(
                    mode=mode,
                    why=why,
                    size=cur.subset.height,
                    pool=cur.run["pool_size"],
                    budget=params.budget,
                    pairing=params.pairing,
                    added=len(sel),
                    objective=float(sel.objective),
                    pairs=len(sel.pairs),
                    by_batch=by_batch,
                    spaces=spaces,
                    refine_swaps=sel.refine_swaps,
                    excluded=cur.excluded,
                    seed=cur.seed,
                    restart_objectives=cur.restart_objectives,
                    weighting=cur.run["weighting"],
                    semantic=cur.run["semantic_duplicates"],
                    semantic_examples=cur.duplicates,
                )
            ),
        },
    )
    yield dg.MaterializeResult(
        asset_key="selection_lineage",
        metadata={
            **table_metadata("selection_lineage", lineage, wh=wh),
            "selection_id": cur.selection_id,
            "top_pairs": dg.MetadataValue.md(markdown_table(top, limit=10)),
            **visuals,
        },
    )


class CuratedClipsConfig(dg.Config):
    out_dir: str = Field(
        default="", description="export folder ('' = $ACAV_EXPORT_DIR, else 'export' next to a local warehouse)"
    )
    as_of: str = Field(
        default="", description="export curated_subset as of this Delta version or ISO time ('' = the current subset)"
    )
    shard_max_mb: int = Field(default=1000, description="a shard is closed once it reaches this size")
    shard_max_clips: int = Field(default=0, description="... or this many clips (0 = no limit)")
    workers: int = Field(default=0, description="encoding processes (0 = one per core)")
    codec: str = Field(default="libx264", description="video codec of the exported clips")
    crf: int = Field(default=23, description="H.264 quality (lower = better, larger)")
    preset: str = Field(default="veryfast", description="x264 speed preset")
    fps: float = Field(default=0, description="output frame rate (0 = the source's)")
    short_side: int = Field(default=0, description="resize to this short side in pixels (0 = source size)")
    sample_rate: int = Field(default=0, description="output audio rate (0 = the source's)")
    with_arrays: bool = Field(default=False, description="also store decoded frames and waveform as .npy")

    def export_config(self) -> ExportConfig:
        """The core export settings (one place for the asset and ``acav export``)."""
        cut = CutConfig(
            codec=self.codec,
            crf=self.crf,
            preset=self.preset,
            fps=self.fps or None,
            short_side=self.short_side or None,
            sample_rate=self.sample_rate or None,
            with_arrays=self.with_arrays,
        )
        return ExportConfig(
            shard_max_bytes=self.shard_max_mb * 1_000_000,
            shard_max_clips=self.shard_max_clips,
            workers=self.workers,
            cut=cut,
        )

    def check(self) -> None:
        self.export_config()


#: The run config of each asset that takes one (op name -> its Config class).
RUN_CONFIG_CLASSES: dict[str, type[dg.Config]] = {
    "videos": VideosConfig,
    "clips": ClipsConfig,
    "cluster_centroids": ClusteringConfig,
    "curated_subset": SelectionConfig,
    "curated_clips": CuratedClipsConfig,
}


class SettingError(ValueError):
    """A run-config value that cannot work: ``op`` and ``field`` say which (``field`` None when
    the problem is between fields)."""

    def __init__(self, op: str, field: str | None, problem: str):
        super().__init__(f"{op}: {problem}")
        self.op, self.field, self.problem = op, field, problem


def check_run_config(run_config: dict, held: dict | None = None) -> None:
    """Validate the ``ops`` section of a run config before anything runs: raises
    :class:`SettingError` for an unknown field, a wrong type or a value that cannot work. The
    selection's settings are checked together with ``held``, those the warehouse holds."""
    import pydantic

    for op, section in (run_config or {}).get("ops", {}).items():
        cls = RUN_CONFIG_CLASSES.get(op)
        if cls is None:
            continue
        given = (section or {}).get("config") or {}
        unknown = sorted(set(given) - set(cls.model_fields))
        if unknown:
            raise SettingError(
                op, unknown[0], f"{unknown[0]}: not a setting of {op} (expected one of {sorted(cls.model_fields)})"
            )
        try:
            cfg = cls(**given)
        except pydantic.ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(x) for x in err.get("loc", ())) or None
            raise SettingError(op, field, f"{field}: {err.get('msg')} (got {err.get('input')!r})") from None
        try:
            cfg.check(held) if isinstance(cfg, SelectionConfig) else cfg.check()
        except ValueError as exc:
            first = str(exc).split(" ", 1)[0]
            raise SettingError(op, first if first in cls.model_fields else None, str(exc)) from None


def default_export_dir(warehouse_root: str) -> str:
    """``$ACAV_EXPORT_DIR``, else ``export`` next to a local warehouse."""
    env = os.environ.get("ACAV_EXPORT_DIR", "").strip()
    if env:
        return env
    if "://" in warehouse_root:
        raise ValueError("set the export folder (config out_dir or ACAV_EXPORT_DIR): the warehouse is not local")
    return str(Path(warehouse_root).parent / "export")


@dg.asset(
    group_name=CURATION,
    kinds={"pyav", "webdataset"},
    deps=["curated_subset"],
    code_version=CODE_VERSIONS["curated_clips"],
    description="The curated subset as training data: WebDataset shards of exact clips (<clip_id>.mp4 "
    "re-encoded to the window, <clip_id>.json with ids, window, rank, gain, clusters, selection) "
    "and a manifest. Incremental (only clips not yet exported, into new shards), resumable. "
    "Materialized on request (not by automation): exports are large.",
)
def curated_clips(
    context: dg.AssetExecutionContext,
    config: CuratedClipsConfig,
    landing: LandingResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    from acav_assets.core.stages.curated_clips import export_curated

    _check(config)
    try:
        cfg = config.export_config()
        out = config.out_dir or default_export_dir(warehouse.root)
        progress = Progress(context.log.info, "exporting", "clip")
        report = export_curated(
            warehouse.get(),
            landing.get(),
            out,
            as_of=config.as_of or None,
            config=cfg,
            progress=progress,
            on_shard=lambda name, n, size: context.log.info(f"wrote {name}: {n} clips, {size / 1e6:.1f} MB"),
            log=context.log.info,
        )
    except ValueError as exc:
        raise _fail(exc) from exc
    for cid, why in list(report.failed.items())[:20]:
        context.log.warning(f"clip {cid} not exported: {why}")
    m = report.manifest
    shards = m.filter(pl.col("status") == "ok")["shard"].n_unique()
    return dg.MaterializeResult(
        metadata={
            **table_metadata(
                "export_manifest",
                m.filter(pl.col("in_selection"))
                .sort("rank")
                .select("rank", "clip_id", "shard", "index_in_shard", "start_s", "end_s", "status"),
            ),
            "export_dir": dg.MetadataValue.path(str(Path(out).resolve())),
            "selection_id": report.selection_id,
            "subset_version": report.subset_version,
            "clips_selected": report.selected,
            "clips_written": report.written,
            "clips_already_exported": report.already,
            "clips_failed": len(report.failed),
            "shards": shards,
            "shards_written": len(report.shards_written),
            "mb_written": round(report.bytes_written / 1e6, 2),
            "seconds": round(report.seconds, 2),
            "clips_per_second": round(report.clips_per_second, 2),
            "stale_samples": report.stale,
            "failures": dg.MetadataValue.md(reasons_table(report.failed, "clip") if report.failed else "_none_"),
        }
    )


#: Who answers for the assets (the UI's owner column; change it to your team's).
OWNERS = ["team:acav-curation"]
#: The Delta table each asset writes.
TABLE_OF = {
    "videos": "videos",
    "clips": "clips",
    "clip_embeddings": "clip_embeddings",
    "cluster_centroids": "cluster_centroids",
    "cluster_assignments": "cluster_assignments",
    "curated_subset": "curated_subset",
    "selection_lineage": "selection_lineage",
    "curated_clips": "export_manifest",
}


def _catalog(spec: dg.AssetSpec) -> dg.AssetSpec:
    """Owners, the table's name and its described columns on the definition: the catalog shows
    them before anything is materialized (materializations add where the table lives)."""
    table = TABLE_OF[spec.key.path[-1]]
    return spec.replace_attributes(owners=OWNERS).merge_attributes(
        metadata={"dagster/table_name": table, "dagster/column_schema": table_schema(table)}
    )


# source code references are a beta in Dagster 1.13: chosen knowingly, not repeated at every
# import of the code location
warnings.filterwarnings(
    "ignore", message=".*(with_source_code_references|LocalFileCodeReference|CodeReferencesMetadataValue).*"
)
#: Every asset as the code location defines it: with the catalog's attributes and a reference
#: to its source (the UI links to the file and line).
ASSETS = dg.with_source_code_references(
    dg.map_asset_specs(
        _catalog,
        [videos, clips, clip_embeddings, cluster_centroids, cluster_assignments, curated_subset, curated_clips],
    )
)
PER_BATCH = [videos, clips, clip_embeddings]
