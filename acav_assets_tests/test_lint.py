"""The code base stays linted and formatted: ``ruff check`` and ``ruff format --check`` (settings in
``pyproject.toml``'s ``[tool.ruff]``), run by the test command like every other test."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RUFF = Path(sys.executable).parent / "ruff"


@pytest.mark.parametrize("command", [["check", "."], ["format", "--check", "."]], ids=["lint", "format"])
def test_ruff_is_clean(command):
    done = subprocess.run([str(RUFF), *command], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
