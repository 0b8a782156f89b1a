"""``acav curate``: every asset for every batch folder, through the code location's own jobs,
only what is stale; the options are derived from the run config (:mod:`.options`)."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from acav_assets.cli.common import dagster_instance
from acav_assets.cli.options import add_config_options, given
from acav_assets.cli.summaries import print_curation

__all__ = ["add_parser", "run"]

#: Settings of the clustering and clip steps that ``acav curate`` takes (the selection's: all of
#: ``SELECTION_KEYS``).
CLUSTERING_OPTIONS = ("k",)
CLIPS_OPTIONS = ("max_clips", "shot_detector")
#: What each resource's settings are called on the command line.
_RESOURCE_FLAGS = {
    "extractors": "--extractor-options",
    "compute": "--device",
    "warehouse": "--warehouse",
    "landing": "--allow-link-root",
}
_FLAGS: dict[tuple[str, str], str] = {}  # (op, field) -> the option that sets it, filled by add_parser


def add_parser(sub) -> None:
    from acav_assets.core.stages.curation import SELECTION_KEYS
    from acav_assets.defs.curation import SelectionConfig
    from acav_assets.defs.features import ClusteringConfig
    from acav_assets.defs.ingest import ClipsConfig

    cur = sub.add_parser("curate", help="run every asset for every batch folder through Dagster")
    cur.add_argument(
        "landing",
        help="folder or URI (s3://bucket/prefix) with one sub-folder of videos per batch; object-store options "
        "from ACAV_LANDING_STORAGE_OPTIONS / ACAV_WAREHOUSE_STORAGE_OPTIONS (JSON)",
    )
    cur.add_argument("--warehouse", required=True, help="folder (or URI) for the Delta tables")
    cur.add_argument(
        "--profile",
        default=None,
        help="extractor profile: weightfree, packaged, reference, clip-clap, clip-ast, pretrained "
        "(join with '+'; see docs/embeddings.md); default: $ACAV_PROFILE, else packaged+weightfree+structure",
    )
    cur.add_argument("--extractor-options", default="{}", help='JSON, e.g. {"audio/vggish": {"weights": "vggish.pt"}}')
    cur.add_argument("--device", default="auto", help="'auto' (CUDA when available), 'cuda', 'cuda:N' or 'cpu'")
    selection = cur.add_argument_group("selection (unset: the warehouse's settings, those its subset was made with)")
    for field, flag in add_config_options(selection, SelectionConfig, SELECTION_KEYS).items():
        _FLAGS["curated_subset", field] = flag
    _FLAGS["cluster_centroids", "seed"] = "--seed"  # --seed also seeds a first k-means fit
    steps = cur.add_argument_group("clustering and clips")
    for field, flag in add_config_options(steps, ClusteringConfig, CLUSTERING_OPTIONS).items():
        _FLAGS["cluster_centroids", field] = flag
    for field, flag in add_config_options(steps, ClipsConfig, CLIPS_OPTIONS).items():
        _FLAGS["clips", field] = flag
    cur.add_argument(
        "--batches",
        type=lambda s: [b for b in s.split(",") if b],
        default=None,
        help="comma-separated batch folders (default: all)",
    )
    cur.add_argument(
        "--dagster-home",
        default=None,
        help="record runs in this Dagster instance (default: $DAGSTER_HOME, "
        "else <warehouse>/_dagster for a local warehouse, else none)",
    )
    cur.add_argument(
        "--allow-link-root",
        action="append",
        default=[],
        metavar="FOLDER",
        help="a folder outside the landing area that links in it may point into (repeatable); "
        "any other link out of it gets status outside_landing and is never read",
    )
    cur.add_argument("--full", action="store_true", help="redo every step, even those that are up to date")
    cur.set_defaults(func=run)


def _check_settings(run_config: dict, resources: dict) -> None:
    """Every option of ``acav curate`` validated before anything is created; the error names
    the option."""
    from acav_assets.core.features.profiles import profile_entries
    from acav_assets.defs.run_config import SettingError
    from acav_assets.defs.runner import check_settings

    try:
        profile_entries(resources["extractors"].profile)
    except ValueError as exc:
        raise ValueError(f"--profile: {exc}") from None
    try:
        check_settings(run_config, resources)
    except SettingError as exc:
        flag = _FLAGS.get((exc.op, exc.field)) or _RESOURCE_FLAGS.get(exc.op)
        raise ValueError(f"{flag}: {exc.problem}" if flag else str(exc)) from None


def run(args: argparse.Namespace) -> int:
    from acav_assets.core.media.landing import is_remote
    from acav_assets.core.stages.curation import SELECTION_KEYS
    from acav_assets.defs.platform.resources import json_from_env
    from acav_assets.defs.runner import curate_landing, resources_for

    remote = is_remote(args.landing)
    landing = Path(args.landing)
    if not remote and not landing.is_dir():
        raise ValueError(f"landing folder {landing} does not exist")
    landing_root = args.landing if remote else str(landing.resolve())
    # object-store options come from the environment, as in the Dagster deployment
    wh_opts = {k: str(v) for k, v in json_from_env("ACAV_WAREHOUSE_STORAGE_OPTIONS").items()}
    if not args.warehouse.strip():
        raise ValueError("the warehouse root is empty: give a folder or an object-store URI")
    warehouse = str(Path(args.warehouse).resolve()) if "://" not in args.warehouse else args.warehouse
    # selection settings not given continue with the warehouse's (those its subset was made with)
    chosen = given(args, SELECTION_KEYS)
    clustering = given(args, CLUSTERING_OPTIONS)
    if args.seed is not None:  # --seed seeds the selection and a first k-means fit
        clustering["seed"] = args.seed
    run_config = {
        "ops": {
            "curated_subset": {"config": chosen},
            "cluster_centroids": {"config": clustering},
            "clips": {"config": given(args, CLIPS_OPTIONS)},
        }
    }
    from acav_assets.core.warehouse.local_state import check_free_space, check_writable_folder, local_state_dir

    resources = resources_for(
        landing_root,
        warehouse,
        profile=args.profile,
        device=args.device,
        extractor_options=args.extractor_options,
        storage_options=wh_opts,
        landing_storage_options=json_from_env("ACAV_LANDING_STORAGE_OPTIONS"),
        landing_cache=os.environ.get("ACAV_LANDING_CACHE", ""),
        allowed_link_roots=[str(Path(r).resolve()) for r in getattr(args, "allow_link_root", [])],
    )
    _check_settings(run_config, resources)  # before anything is written
    if args.dagster_home:
        check_writable_folder(args.dagster_home, "--dagster-home")
        check_free_space(args.dagster_home, "--dagster-home")
    if "://" not in warehouse:
        check_free_space(warehouse, "--warehouse")
    # the data versions that let a re-run skip what is up to date: <warehouse>/_dagster, or for an
    # object-store warehouse a home in this machine's cache
    instance, home = dagster_instance(args.dagster_home, local_state_dir(warehouse, "_dagster"))
    os.environ.setdefault("ACAV_PROGRESS", "1")  # progress bars on a terminal (steps run in this process)
    t = time.perf_counter()
    report = curate_landing(
        landing_root,
        warehouse,
        instance=instance,
        batches=args.batches,
        full=args.full,
        run_config=run_config,
        log=lambda m: print(f"  {m}", flush=True),
        echo_warnings=True,
        resources=resources,
    )
    return print_curation(
        report,
        landing,
        warehouse,
        wh_opts,
        elapsed=time.perf_counter() - t,
        given=chosen,
        remote=remote,
        home=home,
    )
