"""Data versions: what each materialization was made from, in one short digest.

Every asset computes its own data version with these functions and records it on its
materialization (the UI shows it), whoever launched the run: the UI, automation or ``acav
curate``. ``acav curate`` computes the version a step *would* record with the same functions
and skips the step when its last materialization on the instance carries it. So work done
through one door is fresh for the other.

- per batch, a chain: ``videos`` ← the batch's files (names, sizes, modification times), its
  settings and the landing area's allowed link roots; ``clips`` ← the videos' version and its
  settings; ``clip_embeddings`` ← the clips' version and the extractor profile with its options;
  ``cluster_assignments`` ← the embeddings' version and the clusterings' ids;
- ``cluster_centroids`` ← the fit (the profile and the fit settings, not the seed: recorded as
  ``fit_version``, which ``acav curate`` compares) and the clustering ids it made (a refit on a
  fresh sample makes new ones: the assignments and the subset then show stale);
- ``curated_subset`` ← every batch's recorded assignment version and the effective selection
  settings (not ``mode``: a warm start and a full selection of the same inputs are both current).

Each includes the asset's code version: bump it (``CODE_VERSIONS``) when a change alters what
the asset writes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping

import dagster as dg

#: Bump an asset's code version when a change alters what it writes: Dagster then shows the
#: asset as stale in the UI, and its data version changes, so ``acav curate`` redoes it.
CODE_VERSIONS = {
    "videos": "8",
    "clips": "2",
    "clip_embeddings": "3",
    "clip_sync": "1",
    "cluster_centroids": "2",
    "cluster_assignments": "1",
    "curated_subset": "2",
    "selection_lineage": "1",
    "curated_clips": "2",
    "downstream_report": "1",
}

#: Settings that change how a step runs, not what it writes: not part of its data version
#: (``nd_pictures`` changes when pictures are sampled: switching it is not worth re-ingesting
#: every batch and all that derives from them; fingerprints with and without picture samples are
#: compared with each other, the missing pictures read from the files).
HOW_NOT_WHAT = {
    "videos": {"fingerprint_workers", "nd_pictures"},
    "cluster_centroids": {"seed"},
    "curated_subset": {"mode"},
}


def digest(*parts) -> str:
    """A short, stable digest of JSON-able parts."""
    return hashlib.blake2b(json.dumps(parts, sort_keys=True, default=str).encode(), digest_size=12).hexdigest()


def _what(asset: str, settings: Mapping | None) -> dict:
    return {k: v for k, v in (settings or {}).items() if k not in HOW_NOT_WHAT.get(asset, ())}


def videos_version(landing_fingerprint: str, settings: Mapping, allowed_link_roots: Iterable[str]) -> str:
    return digest(landing_fingerprint, _what("videos", settings), sorted(allowed_link_roots), CODE_VERSIONS["videos"])


def clips_version(videos_version: str | None, settings: Mapping) -> str:
    return digest(videos_version, _what("clips", settings), CODE_VERSIONS["clips"])


def embeddings_version(clips_version: str | None, profile: Mapping) -> str:
    return digest(clips_version, profile, CODE_VERSIONS["clip_embeddings"])


def sync_version(clips_version: str | None, settings: Mapping) -> str:
    return digest(clips_version, _what("clip_sync", settings), CODE_VERSIONS["clip_sync"])


def fit_version(profile: Mapping, settings: Mapping) -> str:
    """What the centroids are fitted on and how (the profile and the fit settings, not the
    seed): ``acav curate`` refits when it changes. Recorded as the materialization's
    ``fit_version`` metadata."""
    return digest(profile, _what("cluster_centroids", settings), CODE_VERSIONS["cluster_centroids"])


def centroids_version(fit_version: str, clustering_ids: Iterable[str]) -> str:
    """The centroids' data version: the fit and the clusterings it made (a refit on a fresh
    sample makes new ones, so the assignments and the subset show stale until redone)."""
    return digest(fit_version, sorted(clustering_ids))


def assignments_version(embeddings_version: str | None, clustering_ids: Iterable[str]) -> str:
    return digest(embeddings_version, sorted(clustering_ids), CODE_VERSIONS["cluster_assignments"])


def subset_version(assignment_versions: Mapping[str, str], settings: Mapping, sync_versions: Mapping[str, str]) -> str:
    """What a selection reads: every batch's assignments, its settings and, unless its
    ``sync_filter`` keeps out-of-sync clips, every batch's ``clip_sync`` (new flags re-select)."""
    sync = sorted(sync_versions.items()) if settings.get("sync_filter") != "keep" else []
    return digest(
        sorted(assignment_versions.items()), _what("curated_subset", settings), CODE_VERSIONS["curated_subset"], sync
    )


def latest_materialization(
    instance: dg.DagsterInstance, asset: str, partition: str | None = None
) -> dg.AssetMaterialization | None:
    """The asset's (partition's) latest materialization recorded on ``instance``, if any."""
    flt = dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition] if partition else None)
    records = instance.fetch_materializations(flt, limit=1).records
    return records[0].asset_materialization if records else None


def recorded_version(instance: dg.DagsterInstance, asset: str, partition: str | None = None) -> str | None:
    """The data version of the asset's (partition's) latest materialization on ``instance``."""
    mat = latest_materialization(instance, asset, partition)
    return (mat.tags or {}).get("dagster/data_version") if mat else None


def recorded_fit_version(instance: dg.DagsterInstance) -> str | None:
    """The ``fit_version`` the latest ``cluster_centroids`` materialization recorded."""
    mat = latest_materialization(instance, "cluster_centroids")
    value = mat.metadata.get("fit_version") if mat else None
    return getattr(value, "value", value)


def recorded_batch_versions(
    instance: dg.DagsterInstance, asset: str = "cluster_assignments", partitions_def_name: str = "batches"
) -> dict[str, str]:
    """Every batch's recorded version of ``asset``: what a selection reads of it."""
    out = {}
    for batch in instance.get_dynamic_partitions(partitions_def_name):
        v = recorded_version(instance, asset, batch)
        if v is not None:
            out[batch] = v
    return out


def recorded_assignment_versions(instance: dg.DagsterInstance, partitions_def_name: str = "batches") -> dict[str, str]:
    """Every batch's recorded ``cluster_assignments`` version: what a selection reads."""
    return recorded_batch_versions(instance, "cluster_assignments", partitions_def_name)
