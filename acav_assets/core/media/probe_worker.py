"""A probe worker process: reads one JSON request per line on stdin (a path and the probe
config), answers one JSON record per line on stdout. Started as ``python -m`` by
``media.probe_files(timeout_s=...)`` so that it imports nothing of its parent's main module."""

import json
import sys

from acav_assets.core.media.probe import ProbeConfig, probe_file
from acav_assets.core.processes import die_with_parent


def main() -> None:
    die_with_parent()  # a probe stuck in FFmpeg must not outlive a killed curation
    out = sys.stdout
    out.write('"ready"\n')
    out.flush()
    for line in sys.stdin:
        req = json.loads(line)
        rec = probe_file(req["path"], ProbeConfig(**req["config"]))
        out.write(json.dumps({**rec.to_row(), "extra": rec.extra}) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
