#!/usr/bin/env bash
# Installs the real client CLIs the end-to-end tests drive into .e2e/ (git-ignored).
# Usage: bash tests/e2e/install_clis.sh        (idempotent; a few seconds with a warm npm cache)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir="$root/.e2e"
mkdir -p "$dir"
cd "$dir"
# Claude Code's postinstall puts its native binary in place: allow it explicitly.
cat > package.json <<'JSON'
{"private": true, "allowScripts": {"@anthropic-ai/claude-code": true}}
JSON
if ! node_modules/.bin/claude --version >/dev/null 2>&1; then
  npm install --no-audit --no-fund --strict-allow-scripts @anthropic-ai/claude-code@2.1.197
fi
node_modules/.bin/claude --version
