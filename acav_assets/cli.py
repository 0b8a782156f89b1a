"""The ``acav`` command: thin wrappers over ``acav_assets.core`` and the Dagster definitions."""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def _cmd_demo(args: argparse.Namespace) -> int:
    """Select from generated cluster assignments with a planted correspondence."""
    from acav_assets.core.planted import planted_assignments, precision
    from acav_assets.core.selection import mean_mutual_information, select_subset

    pa = planted_assignments(args.clips, matched_fraction=args.matched, seed=args.seed)
    print(f"demo: {args.clips:,} clips, {pa.labels.shape[1]} clusterings "
          f"({pa.modalities.count('audio')} audio, {pa.modalities.count('visual')} visual), "
          f"{pa.matched.mean():.0%} of clips with sound that belongs to their picture")
    t = time.perf_counter()
    sel = select_subset(pa.labels, args.budget, pairing=args.pairing, modalities=pa.modalities,
                        seed=args.seed)
    dt = time.perf_counter() - t
    rng = np.random.default_rng(args.seed)
    rand = rng.choice(args.clips, len(sel), replace=False)
    print(f"selected {len(sel):,} clips ({args.budget:g} of the pool) in {dt:.2f} s, pairing {args.pairing}")
    print(f"  objective (mean MI, nats): {sel.objective:.4f}   random subset: "
          f"{mean_mutual_information(pa.labels, rand, pairing=args.pairing, modalities=pa.modalities):.4f}")
    print(f"  precision (truly matched): {precision(sel.indices, pa.matched):.3f}   random subset: "
          f"{precision(rand, pa.matched):.3f}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from acav_assets.core.selection import DEFAULT_PAIRING, PAIRINGS

    parser = argparse.ArgumentParser(prog="acav", description="Curate audio-visual datasets by audio-visual MI.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the demo curation")
    demo.add_argument("--clips", type=int, default=200_000)
    demo.add_argument("--budget", type=float, default=0.2)
    demo.add_argument("--matched", type=float, default=0.5, help="share of clips whose sound matches")
    demo.add_argument("--pairing", choices=PAIRINGS, default=DEFAULT_PAIRING)
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ValueError as exc:
        print(f"acav: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
