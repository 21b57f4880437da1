"""`kiro-gateway status`: a running gateway's credentials, their state, usage and recent errors.

It reads the admin API (`--url`, `--admin-key`, or host, port and adminApiKey from config.json), so
it shows what the gateway sees — in team mode, what every process sharing the store sees.
"""

from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from .cli_errors import Refusal, say

__all__ = ["status_command"]

PROG = "kiro-gateway status"

_STATE_STYLE = {"active": "green", "cooldown": "yellow", "exhausted": "magenta", "unhealthy": "red",
                "disabled": "dim"}


class StatusError(Refusal):
    """The gateway did not answer, or refused: one line, exit code 1."""


def _get(url: str, key: str, path: str) -> Any:
    req = urllib.request.Request(url.rstrip("/") + "/api/admin" + path, headers={"x-api-key": key})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - the operator's own gateway
            return orjson.loads(resp.read())
    except urllib.error.HTTPError as e:
        try:
            message = orjson.loads(e.read())["error"]["message"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            message = e.reason
        raise StatusError(f"{e.code} from the admin API: {message}", f"管理 API 返回 {e.code}：{message}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise StatusError(f"cannot reach {url}: {reason}", f"无法连接 {url}：{reason}") from None


def _ago(iso: str | None, now: datetime) -> str:
    if not iso:
        return "—"
    try:
        t = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    s = int((t - now).total_seconds())
    past, s = s <= 0, abs(s)
    text = f"{s}s" if s < 90 else f"{s // 60}m" if s < 5400 else f"{s // 3600}h" if s < 172800 else f"{s // 86400}d"
    return f"{text} ago" if past else f"in {text}"


def _num(v: Any, digits: int = 2) -> str:
    if v is None:
        return "—"
    if isinstance(v, float) and not v.is_integer():
        return f"{v:,.{digits}f}"
    return f"{int(v):,}"


def render(console: Console, creds: dict, stats: dict, errors: dict, url: str) -> None:
    now = datetime.now(UTC)
    t = stats.get("totals", {})
    lat = t.get("latencyMs") or {}
    console.print(f"[bold]kiro-gateway[/bold] {url} — {creds.get('available', 0)}/{creds.get('total', 0)} credentials "
                  f"active, balancing [cyan]{creds.get('loadBalancing')}[/cyan]")
    console.print(f"last {stats.get('window', {}).get('hours', 24)} h: {_num(t.get('requests'))} requests, "
                  f"{t.get('errorRate', 0) * 100:.1f}% errors, p50 {_num(lat.get('p50'), 0)} ms, "
                  f"p90 {_num(lat.get('p90'), 0)} ms, {_num(t.get('tokensIn'))} tokens in, "
                  f"{_num(t.get('tokensOut'))} out, {_num(t.get('credits'))} credits")
    per = {c["credential"]: c for c in stats.get("byCredential", [])}
    table = Table(title="Credentials", title_justify="left", expand=False)
    for col in ("ID", "State", "Pri", "Account", "OK", "Failed", "Now", "Until", "Req 24h", "Credits 24h",
                "Burn/h", "Runs out", "Token"):
        table.add_column(col, justify="right" if col in ("Pri", "OK", "Failed", "Now", "Req 24h", "Credits 24h",
                                                         "Burn/h") else "left", no_wrap=True)
    for c in creds.get("credentials", []):
        state = c.get("status", "?")
        until = c.get("cooldownUntil") or c.get("exhaustedUntil") or c.get("unhealthyUntil")
        s = per.get(str(c.get("id")), {})
        burn = s.get("burn") or {}
        reason = f" ({c['reason']})" if c.get("reason") else ""
        table.add_row(
            f"#{c.get('id')}" + (" *" if c.get("isCurrent") else ""),
            f"[{_STATE_STYLE.get(state, 'white')}]{state}[/]{reason}"[:60],
            str(c.get("priority", 0)),
            c.get("email") or c.get("subscriptionTitle") or c.get("authMethod") or "",
            _num(c.get("successCount")), _num(c.get("failureCount")), _num(c.get("inFlight")),
            _ago(until, now), _num(s.get("requests")), _num(s.get("credits")), _num(burn.get("creditsPerHour")),
            _ago(burn.get("runsOutAt"), now) if burn.get("runsOutAt") else "—",
            _ago(c.get("expiresAt"), now))
    console.print(table)
    items = errors.get("items", [])
    if not items:
        console.print("No recent errors.")
        return
    recent = Table(title="Recent errors", title_justify="left")
    for col in ("When", "Status", "Kind", "Model", "Cred", "Key", "Message"):
        recent.add_column(col, no_wrap=col != "Message")
    for e in items:
        recent.add_row(_ago(e.get("at"), now), str(e.get("status")), e.get("error") or "", e.get("model") or "",
                       str(e.get("credential") or "—"), e.get("key") or "", (e.get("errorMessage") or "")[:120])
    console.print(recent)


def status_command(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="kiro-gateway status", description=__doc__.splitlines()[0])
    p.add_argument("--url", help="the gateway's base URL (default: host and port from config.json)")
    p.add_argument("--admin-key", help="the admin API key (default: adminApiKey from config.json)")
    p.add_argument("-c", "--config", metavar="CONFIG", help="config.json to read the defaults from")
    p.add_argument("--errors", type=int, default=10, metavar="N", help="recent errors to show (default 10)")
    p.add_argument("--json", action="store_true", help="print the admin API's answers as JSON instead")
    args = p.parse_args(argv)
    url, key = args.url, args.admin_key
    if not (url and key):
        from .config import ConfigError, load_settings, locate

        try:
            settings = load_settings(locate(args.config, None).config)
        except ConfigError as e:
            return say(PROG, Refusal(str(e), "配置无效（见英文说明）", zh_alone=f"配置无效：{e}"))
        host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
        url = url or f"http://{host}:{settings.port}"
        key = key or settings.admin_api_key
    if not key:
        return say(PROG, Refusal("no admin key — pass --admin-key or set adminApiKey in config.json",
                                 "没有管理密钥：请用 --admin-key 指定，或在 config.json 中设置 adminApiKey"))
    n = max(1, min(args.errors, 100))
    try:
        creds = _get(url, key, "/credentials")
        stats = _get(url, key, "/stats?hours=24")
        errors = _get(url, key, "/logs?" + urllib.parse.urlencode({"status": "error", "limit": n}))
    except StatusError as e:
        say(PROG, e)
        return 1
    if args.json:
        sys.stdout.write(orjson.dumps({"credentials": creds, "stats": stats, "errors": errors},
                                      option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    console = Console(width=None if sys.stdout.isatty() else 160, highlight=False)
    render(console, creds, stats, errors, url)
    return 0
