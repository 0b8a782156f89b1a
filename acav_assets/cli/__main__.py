"""``python -m acav_assets.cli``: the ``acav`` command."""

import sys

from acav_assets.cli import main

sys.exit(main())
