"""Write or merge each client's own config so it uses this gateway with no environment variables.

- claude-code: ~/.claude/settings.json, its `env` block (ANTHROPIC_BASE_URL, ANTHROPIC_API_KEY);
- codex: ~/.codex/config.toml (or $CODEX_HOME), a `kiro-gateway` model provider speaking the
  Responses API, the key sent as a header, and `model_provider` pointing at it;
- gemini: ~/.gemini/settings.json (auth type gemini-api-key) and ~/.gemini/.env, which Gemini CLI
  loads at start (GOOGLE_GEMINI_BASE_URL, GEMINI_API_KEY) in folders the user trusts; `--trust DIR`
  adds DIR (and what is under it) to ~/.gemini/trustedFolders.json;
- opencode: ~/.config/opencode/opencode.json, an OpenAI-compatible provider with the gateway's models.

What else the file holds is kept; the old file is copied to `<name>.bak-<time>` first. `--print`
shows the result instead of writing it.
"""

from __future__ import annotations

import os
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import orjson
import tomli_w

from ..util.files import write_atomic

__all__ = ["CLIENTS", "plan", "apply", "Change"]

CLIENTS = ("claude-code", "codex", "gemini", "opencode")
PROVIDER = "kiro-gateway"


@dataclass
class Change:
    path: Path
    text: str
    old: str | None


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def _json(path: Path, old: str | None) -> dict[str, Any]:
    if not old or not old.strip():
        return {}
    try:
        data = orjson.loads(old)
    except orjson.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON ({e}); fix or move it first") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object")
    return data


def _dump_json(data: dict[str, Any]) -> str:
    return orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n"


def _claude(home: Path, url: str, key: str, model: str | None, trust: list[Path]) -> list[Change]:
    path = home / ".claude" / "settings.json"
    old = _read(path)
    data = _json(path, old)
    env = data.setdefault("env", {})
    env.update({"ANTHROPIC_BASE_URL": url, "ANTHROPIC_API_KEY": key})
    env.pop("ANTHROPIC_AUTH_TOKEN", None)  # it would win over the key
    if model:
        data["model"] = model
    return [Change(path, _dump_json(data), old)]


def _codex(home: Path, url: str, key: str, model: str | None, trust: list[Path]) -> list[Change]:
    base = Path(os.environ["CODEX_HOME"]) if os.environ.get("CODEX_HOME") else home / ".codex"
    path = base / "config.toml"
    old = _read(path)
    try:
        data = tomllib.loads(old) if old else {}
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{path} is not valid TOML ({e}); fix or move it first") from None
    data["model_provider"] = PROVIDER
    data["model"] = model or "claude-sonnet-4-6"  # a name of a Claude family the gateway maps
    providers = data.setdefault("model_providers", {})
    providers[PROVIDER] = {"name": "kiro-gateway", "base_url": url + "/v1", "wire_api": "responses",
                           "http_headers": {"x-api-key": key}}
    return [Change(path, tomli_w.dumps(data), old)]


def _gemini(home: Path, url: str, key: str, model: str | None, trust: list[Path]) -> list[Change]:
    settings = home / ".gemini" / "settings.json"
    old = _read(settings)
    data = _json(settings, old)
    data.setdefault("security", {}).setdefault("auth", {})["selectedType"] = "gemini-api-key"
    if model:
        data.setdefault("model", {})["name"] = model
    env_path = home / ".gemini" / ".env"
    env_old = _read(env_path)
    wanted = {"GOOGLE_GEMINI_BASE_URL": url, "GEMINI_API_KEY": key}
    lines = [ln for ln in (env_old or "").splitlines()
             if ln.split("=", 1)[0].strip().removeprefix("export ").strip() not in wanted]
    lines += [f"{k}={v}" for k, v in wanted.items()]
    changes = [Change(settings, _dump_json(data), old), Change(env_path, "\n".join(lines) + "\n", env_old)]
    if trust:
        folders = home / ".gemini" / "trustedFolders.json"
        f_old = _read(folders)
        rules = _json(folders, f_old)
        rules.update({str(d.resolve()): "TRUST_FOLDER" for d in trust})
        changes.append(Change(folders, _dump_json(rules), f_old))
    return changes


_OPENCODE_MODELS = ("claude-sonnet-4-6", "claude-opus-4-8", "claude-haiku-4-5")


def _opencode(home: Path, url: str, key: str, model: str | None, trust: list[Path]) -> list[Change]:
    base = Path(os.environ["XDG_CONFIG_HOME"]) if os.environ.get("XDG_CONFIG_HOME") else home / ".config"
    path = base / "opencode" / "opencode.json"
    old = _read(path)
    data = _json(path, old)
    data.setdefault("$schema", "https://opencode.ai/config.json")
    provider = data.setdefault("provider", {})
    models = {m: {"name": m} for m in _OPENCODE_MODELS}
    if model:
        models.setdefault(model, {"name": model})
    provider[PROVIDER] = {"npm": "@ai-sdk/openai-compatible", "name": "kiro-gateway",
                          "options": {"baseURL": url + "/v1", "apiKey": key}, "models": models}
    data["model"] = f"{PROVIDER}/{model or _OPENCODE_MODELS[0]}"
    return [Change(path, _dump_json(data), old)]


_BUILDERS: dict[str, Callable[[Path, str, str, str | None, list[Path]], list[Change]]] = {
    "claude-code": _claude, "codex": _codex, "gemini": _gemini, "opencode": _opencode}


def plan(client: str, url: str, key: str, model: str | None = None, home: Path | None = None,
         trust: list[Path] | None = None) -> list[Change]:
    """The files to write for `client` (ValueError when an existing file cannot be read)."""
    return _BUILDERS[client](home or Path.home(), url.rstrip("/"), key, model, trust or [])


def apply(changes: list[Change]) -> list[tuple[Path, Path | None]]:
    """Write each change (atomic, 0600: they hold the key), backing an old file up first."""
    done = []
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for ch in changes:
        backup = None
        if ch.old is not None and ch.old != ch.text:
            backup = ch.path.with_name(f"{ch.path.name}.bak-{stamp}")
            write_atomic(backup, ch.old.encode())
        if ch.old != ch.text:
            ch.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(ch.path, ch.text.encode())
        done.append((ch.path, backup))
    return done
