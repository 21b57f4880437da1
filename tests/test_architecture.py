"""The import graph keeps its shape: the layers and the no-loop rule in pyproject.toml's
[tool.importlinter] (import-linter, over the package's real imports, TYPE_CHECKING ones included)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def lint(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "import sys; from importlinter.cli import lint_imports; "
                           "sys.exit(lint_imports(no_cache=True))"], cwd=root, capture_output=True, text=True,
                          timeout=300, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})


def test_the_layers_hold_and_nothing_loops():
    r = lint(ROOT)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "2 kept, 0 broken" in r.stdout


def test_a_back_import_is_caught(tmp_path):
    # A copy of the package with one import from a low layer up to a high one (the pool importing
    # the admin API) breaks both contracts: a layer violated, and a loop between siblings.
    import shutil
    shutil.copytree(ROOT / "kiro_gateway", tmp_path / "kiro_gateway",
                    ignore=shutil.ignore_patterns("__pycache__", "static", "node_modules"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    health = tmp_path / "kiro_gateway" / "pool" / "health.py"
    health.write_text(health.read_text() + "\nfrom ..admin import routes as _back  # noqa\n")
    r = lint(tmp_path)
    assert r.returncode != 0
    assert "0 kept, 2 broken" in r.stdout, r.stdout[-3000:]
    assert "kiro_gateway.pool.health -> kiro_gateway.admin.routes" in r.stdout
