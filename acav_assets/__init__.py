"""acav_assets: curate audio-visual video datasets by audio-visual mutual information.

``acav_assets.core`` holds the method (no Dagster import); ``acav_assets.defs`` the Dagster
code location; ``acav_assets.cli`` the ``acav`` command.
"""

__version__ = "0.1.0"
