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

# Gemini CLI, in its own directory: npm prunes whatever a rewritten package.json does not list.
# --ignore-scripts skips keytar's and node-pty's native builds; neither is needed headless.
gdir="$dir/gemini"
mkdir -p "$gdir"
if ! "$gdir/node_modules/.bin/gemini" --version >/dev/null 2>&1; then
  (cd "$gdir" && echo '{"private": true}' > package.json &&
    npm install --no-audit --no-fund --ignore-scripts @google/gemini-cli@0.61.0)
fi
"$gdir/node_modules/.bin/gemini" --version

# Codex CLI, in its own directory for the same reason. The npm package ships its native binary
# as a platform optional dependency; no install script runs.
cdir="$dir/codex"
mkdir -p "$cdir"
if ! "$cdir/node_modules/.bin/codex" --version >/dev/null 2>&1; then
  (cd "$cdir" && echo '{"private": true}' > package.json &&
    npm install --no-audit --no-fund @openai/codex@0.169.0)
fi
"$cdir/node_modules/.bin/codex" --version
