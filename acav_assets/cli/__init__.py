"""The ``acav`` command: thin wrappers over ``acav_assets.core`` and the Dagster definitions.

acav demo [--dir demo]                      generate the demo corpus, curate it, summarise
acav demo-data DIR [--videos 200]           write generated videos (one folder per batch)
acav curate LANDING --warehouse DIR [...]   run every asset for every batch through Dagster
acav explain CLIP_ID --warehouse DIR        why a clip was selected, or not
acav report --warehouse DIR --out DIR       summary tables and a heatmap
acav subset --warehouse DIR [--as-of V|T]   the curated subset, now or earlier (Delta time travel)
acav bench correspondence [--videos 300] [--corpus demo,digits] [--profile weightfree]
                                            correspondence-retrieval benchmark (quality)
acav bench sync                             synchronisation estimate on clips with known offsets
acav bench downstream --warehouse DIR --landing DIR --probe-labels CSV [--truth CSV] [--seeds 3]
                                            train a model on the curated subset vs a random one
acav select-demo                            the selector alone on generated cluster labels
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["build_parser", "main", "ui_command"]


def build_parser() -> argparse.ArgumentParser:
    from acav_assets.cli import bench, curate, demo, export, inspection

    parser = argparse.ArgumentParser(prog="acav", description="Curate audio-visual datasets by audio-visual MI.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo.add_parsers(sub)
    curate.add_parser(sub)
    inspection.add_parsers(sub)
    export.add_parser(sub)
    bench.add_parsers(sub)
    return parser


def ui_command(*args, **kwargs):
    """The environment and command that open the Dagster UI on a curation (:func:`.demo.ui_command`)."""
    from acav_assets.cli.demo import ui_command as command

    return command(*args, **kwargs)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"acav: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        import dagster as dg  # loaded already when a step ran

        from acav_assets.core.warehouse.local_state import disk_full

        if isinstance(exc, dg.Failure):  # a step refused its input: too few clips for k, a full disk, ...
            print(f"acav: error: {exc.description}", file=sys.stderr)
            return 1
        full = disk_full(exc)
        if full:  # written outside a step (the Dagster home's event log, an export shard)
            print(f"acav: error: {full}: free some space, then re-run (nothing half-written is kept)", file=sys.stderr)
            return 1
        raise
