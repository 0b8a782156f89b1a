"""acav_assets: curate audio-visual video datasets by audio-visual mutual information.

``acav_assets.core`` holds the method (no Dagster import); ``acav_assets.defs`` the Dagster
code location; ``acav_assets.cli`` the ``acav`` command.
"""

import os as _os

# Decoding threads and torch's OpenMP threads share the CPU during embedding. Idle OpenMP
# threads spin by default and starve the decoders (measured: benchmarks/embed.py); make them
# sleep. Only takes effect if set before torch is first imported, and never overrides a choice.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
