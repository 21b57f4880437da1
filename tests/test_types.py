"""The type checker is part of the test suite: mypy, configured in pyproject.toml ([tool.mypy]:
strict for core/, kiro/ and pool/), must find nothing in the package."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _cache_dir() -> Path:
    """mypy's incremental cache, outside the work tree (one per checkout, so reruns take seconds)."""
    key = hashlib.sha256(str(ROOT).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"kiro-gateway-mypy-{key}"


@pytest.mark.timeout(600)
def test_mypy_is_clean() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MYPY")}
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(_cache_dir()), "--no-color-output",
         "--config-file", str(ROOT / "pyproject.toml")],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )
    if proc.returncode != 0:
        pytest.fail(f"mypy found errors (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}", pytrace=False)
