"""config.json + environment → typed settings; where the files live; first-run creation.

config.json keys are camelCase and all optional. Any key can be overridden from the environment as
`KIRO_GATEWAY_<KEY IN UPPER SNAKE CASE>` (e.g. `KIRO_GATEWAY_API_KEY`, `KIRO_GATEWAY_PORT`);
JSON values (objects, numbers, booleans) are parsed, anything else is taken as a string.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .state.url import parse_state_url
from .util.files import read_json, write_json_atomic

__all__ = ["Settings", "Paths", "locate", "load_settings", "ConfigError", "ENV_PREFIX"]

ENV_PREFIX = "KIRO_GATEWAY_"
HOME_DIR = Path("~/.kiro-gateway")
_PROXY_SCHEMES = ("http", "https", "socks5", "socks5h", "socks4", "socks4a")


class ConfigError(Exception):
    pass


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(w.capitalize() for w in rest)


class Settings(BaseModel):
    model_config = ConfigDict(alias_generator=_camel, populate_by_name=True, extra="allow")

    host: str = "127.0.0.1"
    port: int = Field(8990, ge=0, le=65535)
    api_key: str | None = None
    admin_api_key: str | None = None
    region: str = "us-east-1"
    kiro_version: str = "0.11.107"
    machine_id: str | None = None
    proxy_url: str | None = None
    proxy_username: str | None = None
    proxy_password: str | None = None
    load_balancing: Literal["priority", "balanced", "round_robin", "random"] = "priority"
    api_base_url: str = "https://q.{region}.amazonaws.com"  # the legacy host (docs/kiro-protocol.md)
    # The branded host; unset: Kiro's own, unless apiBaseUrl points elsewhere (a relay, the fake),
    # in which case there is no branded host to try. `endpoint`: auto | runtime | legacy.
    runtime_base_url: str | None = None
    profiles_base_url: str | None = None  # where profile ARNs are found; same rule as runtimeBaseUrl
    endpoint: Literal["auto", "runtime", "legacy"] = "auto"
    identity: Literal["ide", "cli"] = "ide"  # present as the Kiro IDE or as kiro-cli (per credential too)
    auth_base_url: str = "https://prod.{region}.auth.desktop.kiro.dev"
    oidc_base_url: str = "https://oidc.{region}.amazonaws.com"
    # Model names: exact or prefix* overrides, and a target for names of no Claude family.
    model_map: dict[str, str] = Field(default_factory=dict)
    default_model: str | None = None
    # Where no account can serve a model: the models to use instead, in order (never silently).
    model_fallbacks: dict[str, list[str]] = Field(default_factory=dict)
    max_payload_bytes: int = Field(1_080_000, ge=10_000)  # Kiro's cap: about 1,085,000 bytes
    # A conversation over the model's window or the payload cap: drop the oldest turns, or answer
    # the client's own "context full" error so it compacts by itself (kiro/fit.py).
    # compact by default: a session keeps its meaning (one extra model call every ~20 turns once
    # full, falling back to trim if that fails); trim is deterministic; error hands it to the client.
    overflow_policy: Literal["compact", "trim", "error"] = "compact"
    # Web search tools of the client APIs (Anthropic's web_search_*, OpenAI's web_search, Gemini's
    # googleSearch): answered through Kiro's MCP web_search (on), or left out of the request (off).
    web_search: Literal["on", "off"] = "on"
    ping_interval: float = Field(10.0, gt=0)  # seconds of upstream silence before a keep-alive
    # A streamed reply's chunks that come within this many ms of the last write go out together
    # at the end of it (the same bytes, fewer writes: web/http.py StreamedReply); 0 writes each.
    stream_write_window_ms: float = Field(5.0, ge=0, le=1000)
    # Requests read but not yet answered by Kiro may hold this many MB of bodies; past it, new
    # requests wait unread in the OS's socket buffers until room frees (web/readgate.py). 0 = off.
    pending_bodies_mb: int = Field(32, ge=0)
    connect_timeout: float = Field(10.0, gt=0)
    first_token_timeout: float = Field(90.0, gt=0)
    read_timeout: float = Field(300.0, gt=0)
    refresh_timeout: float = Field(30.0, gt=0)  # a token refresh that takes longer has failed
    refresh_before: float = Field(600.0, ge=0)  # refresh tokens this many seconds before expiry
    # The background refresher renews tokens within refresh_before + refresh_margin of expiry,
    # checking every refresh_check_interval s, one at a time, up to refresh_spread s apart.
    background_refresh: bool = True
    refresh_margin: float = Field(300.0, ge=0)
    refresh_check_interval: float = Field(30.0, gt=0)
    refresh_spread: float = Field(3.0, ge=0)
    usage_cache_seconds: float = Field(300.0, ge=0)  # getUsageLimits answers are reused this long
    usage_on_start: bool = True  # learn each credential's subscription (free tier → no Opus) once
    sticky_seconds: float = Field(60.0, ge=0)  # a client session keeps its credential this long
    cooldown_seconds: float = Field(300.0, ge=0)  # a throttled (429) credential rests this long
    suspicion_cooldown_seconds: float = Field(3600.0, ge=0)  # after Kiro's "suspicious activity"
    unhealthy_seconds: float = Field(600.0, ge=0)  # repeated failures bench a credential this long
    failure_limit: int = Field(3, ge=1)  # consecutive failures that make a credential unhealthy
    refresh_failure_limit: int = Field(3, ge=1)  # failed refreshes in a row that disable it
    max_attempts_per_credential: int = Field(3, ge=1)
    max_attempts: int = Field(9, ge=1)
    log_level: str = "info"
    log_format: Literal["text", "json"] = "text"  # json: one object a line (observe/jsonlog.py)
    shutdown_timeout: float = Field(30.0, ge=0)  # on SIGTERM, open streams may finish this long
    # State store: none = state.db beside config.json (SQLite); "redis://…" shares state between
    # gateway processes (team mode); "sqlite:///path" or "memory" also work.
    state_url: str | None = None
    state_namespace: str = "kiro-gateway"  # Redis key prefix, so gateways can share a Redis
    state_flush_interval: float = Field(0.5, gt=0, le=60)  # write-behind batching period
    # Request log: bodies only when asked (secrets and images redacted); retention by count and age.
    log_bodies: bool = False
    log_retention_count: int = Field(10_000, ge=0)
    log_retention_days: float = Field(7.0, ge=0)
    metrics_key: str | None = None  # /metrics from other hosts than loopback needs it
    # Account pacing (0 = no cap), shared across instances through the state store.
    max_concurrent_per_credential: int = Field(0, ge=0)
    max_rpm_per_credential: int = Field(0, ge=0)
    queue_timeout: float = Field(30.0, ge=0)  # how long a request waits for a free account
    # At least this many seconds between two requests' starts on one account, plus up to
    # pacingJitter of it at random (0 = none). Per process.
    min_interval_per_credential: float = Field(0.0, ge=0)
    pacing_jitter: float = Field(0.25, ge=0, le=1)
    hot_reload: bool = True  # pick up hand edits of config.json and credentials.json
    # Browsers (browser_guard.py): host names answered besides addresses, localhost and this
    # machine's name (checked when there is no apiKey, or when set); web origins allowed by CORS.
    allowed_hosts: list[str] = Field(default_factory=list)
    cors_origins: list[str] = Field(default_factory=list)

    @field_validator("web_search", mode="before")
    @classmethod
    def _web_search(cls, v: Any) -> Any:
        return {True: "on", False: "off"}.get(v, v) if isinstance(v, bool) else v

    @field_validator("state_url")
    @classmethod
    def _state_url(cls, v: str | None) -> str | None:
        return parse_state_url(v).url or None

    @field_validator("proxy_url")
    @classmethod
    def _proxy_url(cls, v: str | None) -> str | None:
        v = (v or "").strip() or None
        if v and (v.split("://", 1)[0].lower() not in _PROXY_SCHEMES or "://" not in v):
            raise ValueError("must be http://, https://, socks5://, socks5h://, socks4:// or socks4a://host:port")
        return v

    @field_validator("api_base_url", "auth_base_url", "oidc_base_url", "runtime_base_url", "profiles_base_url")
    @classmethod
    def _strip_slash(cls, v: str | None) -> str | None:
        return v.rstrip("/") if v else None

    def url(self, which: str, region: str | None = None) -> str:
        template = getattr(self, which)
        return template.replace("{region}", region or self.region)


@dataclass(slots=True)
class Paths:
    config: Path
    credentials: Path
    created: bool = False


def _env_key(field_name: str) -> str:
    return ENV_PREFIX + field_name.upper()


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in Settings.model_fields:
        raw = environ.get(_env_key(name))
        if raw is None:
            continue
        try:
            value = orjson.loads(raw)
            if isinstance(value, (dict, list, int, float, bool)) and not isinstance(value, str):
                out[name] = value
                continue
        except orjson.JSONDecodeError:
            pass
        out[name] = raw
    return out


def locate(config: str | None, credentials: str | None, cwd: Path | None = None) -> Paths:
    """-c / --credentials win; else ./config.json, else ~/.kiro-gateway/config.json."""
    cwd = cwd or Path.cwd()
    home = HOME_DIR.expanduser()
    if config:
        cfg = Path(config).expanduser()
    elif (cwd / "config.json").exists():
        cfg = cwd / "config.json"
    else:
        cfg = home / "config.json"
    # credentials.json lives beside the config it belongs to, unless named explicitly.
    creds = Path(credentials).expanduser() if credentials else cfg.parent / "credentials.json"
    return Paths(cfg, creds)


def ensure_files(paths: Paths) -> str | None:
    """First run: create config.json with a generated apiKey and an empty credentials list.

    Returns the generated key (to be shown once) or None when nothing was created.
    """
    key = None
    for folder in {paths.config.parent, paths.credentials.parent}:
        if not folder.exists():  # it will hold tokens: only its owner may look inside
            folder.mkdir(mode=0o700, parents=True)
    if not paths.config.exists():
        key = "kg-" + secrets.token_urlsafe(32)
        write_json_atomic(paths.config, {"host": "127.0.0.1", "port": 8990, "apiKey": key})
        paths.created = True
    if not paths.credentials.exists():
        write_json_atomic(paths.credentials, [])
        paths.created = True
    return key


def load_settings(path: Path | None, environ: dict[str, str] | None = None,
                  overrides: dict[str, Any] | None = None) -> Settings:
    data: dict[str, Any] = {}
    origin: dict[str, str] = {}  # field → what set it, as the user wrote it (key, env var, option)
    where = f"{path}: " if path is not None else ""
    if path is not None and path.exists():
        try:
            raw = read_json(path)
        except (OSError, orjson.JSONDecodeError) as e:
            raise ConfigError(f"{path}: not readable JSON ({e})") from e
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: must hold a JSON object")
        data.update(raw)
    env = _env_overrides(dict(os.environ if environ is None else environ))
    for name, value in env.items():
        data.pop(_camel(name), None)
        data[name] = value
        origin[name] = _env_key(name)
    for name, value in (overrides or {}).items():
        if value is not None:
            data.pop(_camel(name), None)
            data[name] = value
            origin[name] = "--" + name.replace("_", "-")
    try:
        return Settings.model_validate(data)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            field, *rest = [str(x) for x in err["loc"]] or ["?"]
            name = next((n for n in Settings.model_fields if field in (n, _camel(n))), field)
            label = origin.get(name) or where + _camel(name)
            problems.append(".".join([label, *rest]) + ": " + err["msg"].removeprefix("Value error, "))
        raise ConfigError("; ".join(problems)) from e


def env_documentation() -> str:
    width = max(len(_env_key(n)) for n in Settings.model_fields) + 2
    rows = [f"  {_env_key(n):<{width}}{_camel(n)}" for n in Settings.model_fields]
    return "\n".join(rows)

