"""What the command line checks before it announces anything: one line per problem, the file or
setting named, exit code 2 — never a traceback.

`Refusal` is a problem that stops the command; `warn` prints one that does not. Each message the
command line has in English and Chinese goes through `localized`: the locale picks one, or both.
"""

from __future__ import annotations

import asyncio
import difflib
import errno
import os
import socket
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from .config import Settings, _camel
from .state.url import parse_state_url
from .util.files import read_json

__all__ = ["Refusal", "warn", "say", "localized", "read_credentials", "credential_warnings", "unknown_keys",
           "check_port", "check_config", "probe_store", "plural", "EXIT"]

EXIT = 2


_LOCALE_VARIABLES = ("LC_ALL", "LC_MESSAGES", "LANG")


def localized(en: str, zh: str, *, zh_alone: str | None = None, sep: str = " / ",
              environ: Mapping[str, str] | None = None) -> str:
    """One message in the reader's language. The first of LC_ALL, LC_MESSAGES and LANG that is set
    and not empty decides, as POSIX orders them: zh or zh_* gives the Chinese text only (`zh_alone`
    when the Chinese half alone would lose what the English says); en, en_*, C or POSIX gives the
    English only; no locale, or another language, gives both, joined by `sep`."""
    env = os.environ if environ is None else environ
    name = next((env[v] for v in _LOCALE_VARIABLES if env.get(v)), "")
    language = name.split(".", 1)[0].split("@", 1)[0]
    if language[:2] == "zh" and language[2:3] in ("", "_", "-"):
        return zh if zh_alone is None else zh_alone
    if language in ("C", "POSIX") or (language[:2] == "en" and language[2:3] in ("", "_", "-")):
        return en
    return f"{en}{sep}{zh}"


class Refusal(Exception):
    """Stops the command: one line in the reader's language (see `localized`), exit code 2."""

    def __init__(self, en: str, zh: str, *, zh_alone: str | None = None) -> None:
        super().__init__(en)
        self.en, self.zh, self.zh_alone = en, zh, zh_alone

    def line(self) -> str:
        return localized(self.en, self.zh, zh_alone=self.zh_alone)


def say(prog: str, refusal: Refusal) -> int:
    print(f"{prog}: {refusal.line()}", file=sys.stderr, flush=True)
    return EXIT


def warn(prog: str, en: str, zh: str) -> None:
    print(f"{prog}: {localized(f'warning: {en}', f'警告：{zh}')}", file=sys.stderr, flush=True)


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _json_problem(path: Path, e: Exception) -> Refusal:
    if isinstance(e, orjson.JSONDecodeError):
        where = f"line {e.lineno} column {e.colno}"
        return Refusal(f"{path} is not valid JSON ({where}: {e.msg})",
                       f"{path} 不是有效的 JSON（第 {e.lineno} 行第 {e.colno} 列）")
    return Refusal(f"{path} cannot be read ({type(e).__name__}: {getattr(e, 'strerror', None) or e})",
                   f"无法读取 {path}")


def check_config(path: Path) -> None:
    """config.json, when present, is a JSON object (its settings are checked by load_settings)."""
    if not path.exists():
        return
    try:
        data = read_json(path)
    except (OSError, orjson.JSONDecodeError) as e:
        raise _json_problem(path, e) from None
    if not isinstance(data, dict):
        raise Refusal(f"{path} must hold a JSON object", f"{path} 必须是一个 JSON 对象")


def read_credentials(path: Path) -> Any:
    """credentials.json's content (None when missing), or a Refusal naming the file."""
    if not path.exists():
        return None
    try:
        data = read_json(path)
    except (OSError, orjson.JSONDecodeError) as e:
        raise _json_problem(path, e) from None
    if not isinstance(data, (list, dict)):
        raise Refusal(f"{path} must hold an object (one account) or an array of them",
                      f"{path} 必须是一个对象（一个账号）或对象数组")
    return data


def credential_warnings(path: Path, data: Any) -> list[tuple[str, str]]:
    """(en, zh) warnings for a credentials file: missing, empty, or entries nothing can use."""
    if data is None or data == []:
        what = "does not exist" if data is None else "holds no account"
        zh = "不存在" if data is None else "没有账号"
        return [(f"{path} {what}: nothing to serve until you run `kiro-gateway import` or `kiro-gateway login`",
                 f"{path} {zh}：在运行 `kiro-gateway import` 或 `kiro-gateway login` 之前无可用账号")]
    out = []
    items = [data] if isinstance(data, dict) else data
    for i, entry in enumerate(items):
        n = i + 1
        if not isinstance(entry, dict):
            out.append((f"{path}: entry {n} is not an object; it is ignored", f"{path}：第 {n} 项不是对象，已忽略"))
            continue
        if entry.get("refreshToken") or entry.get("refresh_token") or entry.get("apiKey") or entry.get("api_key"):
            continue
        if entry.get("accessToken") or entry.get("access_token"):
            out.append((f"{path}: entry {n} has no refreshToken (nor apiKey); it works only until its accessToken expires",
                        f"{path}：第 {n} 项没有 refreshToken（也没有 apiKey），accessToken 过期后即不可用"))
        else:
            out.append((f"{path}: entry {n} has no refreshToken (nor apiKey); it is ignored",
                        f"{path}：第 {n} 项没有 refreshToken（也没有 apiKey），已忽略"))
    return out


def unknown_keys(path: Path) -> list[tuple[str, str]]:
    """config.json keys that are no setting, each with the closest one (a misspelling is not silent)."""
    try:
        raw = read_json(path)
    except (OSError, orjson.JSONDecodeError):
        return []
    if not isinstance(raw, dict):
        return []
    known = {_camel(n) for n in Settings.model_fields}
    out = []
    for key in raw:
        if key in known or key in Settings.model_fields:
            continue
        close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
        hint, zh_hint = (f"; did you mean {close[0]}?", f"；是否想写 {close[0]}？") if close else ("", "")
        out.append((f"{path}: unknown key {key} is ignored{hint}", f"{path}：未知的键 {key} 被忽略{zh_hint}"))
    return out


def check_port(host: str, port: int) -> None:
    """Refuse before any banner when the address cannot be bound (in use, or not this machine's)."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            s.bind((host.strip("[]"), port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise Refusal(f"port {port} on {host} is already in use (another kiro-gateway?); choose another "
                              "with --port", f"{host} 的端口 {port} 已被占用（另一个 kiro-gateway？）；用 --port 换一个") from None
            raise Refusal(f"cannot listen on {host}:{port} ({e.strerror or e})",
                          f"无法监听 {host}:{port}") from None


def probe_store(settings: Settings) -> None:
    """A stateUrl naming Redis must answer now, not in uvicorn's start-up traceback."""
    where = parse_state_url(settings.state_url)
    if not where.shared:
        return
    url = where.url
    from .state import StoreError
    from .state.redis import RedisStore, safe_url

    async def ping() -> None:
        store = RedisStore(url, settings.state_namespace)
        try:
            await asyncio.wait_for(store.r.ping(), 5)
        finally:
            await store.r.aclose()

    try:
        asyncio.run(ping())
    except (StoreError, OSError, TimeoutError, Exception) as e:  # noqa: BLE001 - any failure is "unreachable"
        safe = safe_url(url)
        raise Refusal(f"stateUrl {safe} is unreachable ({type(e).__name__}); start Redis or fix stateUrl",
                      f"无法连接 stateUrl {safe}；请启动 Redis 或修改 stateUrl") from None
