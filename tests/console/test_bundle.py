"""The shipped console bundle is built from the sources in console/, and stays within its weight budget.

`npm run build` (console/stamp.mjs) records a SHA-256 of the sources in static/build.json; this test
recomputes it the same way, so a source edit without a rebuild fails here (no Node needed).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "console"
STATIC = ROOT / "kiro_gateway" / "console" / "static"
SOURCES = ["index.html", "package.json", "package-lock.json", "tsconfig.json", "vite.config.ts", "src"]
BUDGET = 300 * 1024  # bytes, gzip, for the first load


def source_hash() -> str:
    files = []
    for s in SOURCES:
        p = SRC / s
        files += [f for f in p.rglob("*") if f.is_file()] if p.is_dir() else [p]
    h = hashlib.sha256()
    for rel in sorted(f.relative_to(SRC).as_posix() for f in files):
        h.update(rel.encode() + b"\0")
        h.update((SRC / rel).read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def test_shipped_bundle_matches_the_sources():
    recorded = json.loads((STATIC / "build.json").read_text())["sourceHash"]
    assert recorded == source_hash(), "console/ changed since the last build: run `npm ci && npm run build` in console/"


def test_first_load_fits_the_page_weight_budget():
    index = (STATIC / "index.html").read_text()
    assets = re.findall(r'(?:src|href)="/admin/(assets/[^"]+)"', index)
    assert any(a.endswith(".js") for a in assets) and any(a.endswith(".css") for a in assets)
    total = len(gzip.compress(index.encode(), 9)) + sum(len(gzip.compress((STATIC / a).read_bytes(), 9)) for a in assets)
    print(f"console first load: {total / 1024:.1f} KB gzip (budget {BUDGET // 1024} KB)")
    assert total <= BUDGET


def test_no_external_urls_in_the_bundle():
    """Offline: nothing is fetched from a CDN."""
    for f in STATIC.rglob("*"):
        if f.suffix in (".js", ".css", ".html"):
            text = f.read_text(errors="replace")
            assert not re.search(r'(?:src|href)="https?://', text), f
            assert "cdn." not in text and "fonts.googleapis" not in text, f
