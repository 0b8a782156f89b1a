"""What every step does the same way: refuse bad settings at once, stage a batch's media, fail
at once on a full disk, retry what may pass on a second try, and report its data version."""

import functools
import inspect
import json

import dagster as dg
import polars as pl

from acav_assets.core.media.landing import StageReport
from acav_assets.core.warehouse.local_state import disk_full
from acav_assets.defs.platform.resources import ExtractorResource, LandingResource

__all__ = [
    "BATCH_RETRY",
    "batch_filter",
    "check_config",
    "data_version",
    "fail",
    "final_when_disk_full",
    "profile_identity",
    "stage_batch",
    "stage_or_local",
    "staging_metadata",
]

#: Per-batch steps retry what may pass on a second try (a storage hiccup, a GPU out of memory
#: in a busy pool): twice, 15 s then 30 s later. A bad configuration or input fails at once
#: (``fail`` raises ``dg.Failure(allow_retries=False)``), and is shown in the run, not retried.
BATCH_RETRY = dg.RetryPolicy(max_retries=2, delay=15, backoff=dg.Backoff.EXPONENTIAL)


def fail(exc: Exception) -> dg.Failure:
    """A failure that is not retried: bad input or settings, said in one line."""
    return dg.Failure(description=str(exc), allow_retries=False)


def check_config(config) -> None:
    """A setting that cannot work fails the step before it reads or writes anything."""
    try:
        config.check()
    except ValueError as exc:
        raise fail(exc) from exc


def stage_batch(context: dg.AssetExecutionContext, landing: LandingResource, batch: str) -> StageReport:
    """The batch's media, local (a remote landing area is copied into the staging cache)."""
    area = landing.get()
    rep = area.stage(batch, log=context.log.info)
    if area.remote:
        context.log.info(
            f"staged batch {batch} from {area.root}: {rep.copied} file(s) copied "
            f"({rep.bytes_copied / 1e6:.1f} MB), {rep.kept} already cached, in {rep.seconds:.1f} s"
        )
    return rep


def stage_or_local(context: dg.AssetExecutionContext, landing: LandingResource, batch: str) -> StageReport:
    """:func:`stage_batch`, or, when the batch folder is gone since it was probed, the landing
    area's local root with a warning: the step goes on and records each clip's failure (a missing
    file is data, not a crashed batch)."""
    try:
        return stage_batch(context, landing, batch)
    except ValueError as exc:
        context.log.warning(str(exc))
        return StageReport(landing.get().local_root())


def staging_metadata(rep: StageReport) -> dict:
    """What staging a remote batch did, for the materialization (nothing for a local batch)."""
    if not rep.copied and not rep.kept:
        return {}
    return {
        "staged_files_copied": rep.copied,
        "staged_files_cached": rep.kept,
        "staged_mb": round(rep.bytes_copied / 1e6, 2),
        "staging_seconds": round(rep.seconds, 2),
    }


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


def data_version(v: str) -> dict:
    """``data_version=`` for a MaterializeResult (see :mod:`acav_assets.defs.platform.versions`)."""
    return {"data_version": dg.DataVersion(v)}


def profile_identity(extractors: ExtractorResource) -> dict:
    """The extractor profile and its options: what the embeddings are (part of their version)."""
    return {"profile": extractors.profile, "options": json.loads(extractors.options_json or "{}")}


def batch_filter(context) -> pl.Expr:
    """The checked batch: the per-batch checks are partitioned like their assets (a preview
    feature in Dagster 1.13), so each batch has its own verdict and a failed batch blocks only
    itself; without a partition, every batch."""
    batch = context.partition_key if context.has_partition_key else None
    return pl.col("batch") == batch if batch else pl.lit(True)
