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
    assert "4 kept, 0 broken" in r.stdout


def broken_copy(tmp_path: Path, module: str, line: str) -> subprocess.CompletedProcess:
    import shutil
    shutil.copytree(ROOT / "kiro_gateway", tmp_path / "kiro_gateway",
                    ignore=shutil.ignore_patterns("__pycache__", "static", "node_modules"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "kiro_gateway" / module
    target.write_text(target.read_text() + f"\n{line}  # noqa\n")
    return lint(tmp_path)


def test_a_back_import_is_caught(tmp_path):
    # One import from a low layer up to a high one (the pool importing the admin API) breaks two
    # contracts: a layer violated, and a loop between siblings.
    r = broken_copy(tmp_path, "pool/health.py", "from ..admin import routes as _back")
    assert r.returncode != 0
    assert "2 kept, 2 broken" in r.stdout, r.stdout[-3000:]
    assert "kiro_gateway.pool.health -> kiro_gateway.admin.routes" in r.stdout


def test_a_dialect_reaching_for_kiro_or_another_dialect_is_caught(tmp_path):
    r = broken_copy(tmp_path, "dialects/gemini/parse.py",
                    "from ...kiro import models as _kiro\nfrom ..anthropic import parse as _other")
    assert r.returncode != 0
    assert "2 kept, 2 broken" in r.stdout, r.stdout[-3000:]
    assert "kiro_gateway.dialects.gemini.parse -> kiro_gateway.kiro.models" in r.stdout
    assert "kiro_gateway.dialects.gemini.parse -> kiro_gateway.dialects.anthropic.parse" in r.stdout
