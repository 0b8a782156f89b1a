"""Correspondence-retrieval benchmark (the paper's protocol): see acav_assets.core.quality.

    .venv/bin/python benchmarks/quality.py [--videos 300] [--seeds 3] [--mismatch 0.5] [--planted 20000]

Same as `acav bench correspondence`. Prints markdown tables of precision (= recall) per method.
"""

import sys

from acav_assets.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "correspondence", *sys.argv[1:]]))
