"""`kiro-gateway client setup claude-code|codex|gemini|opencode [--print]`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..cli_errors import Refusal, localized, say
from ..config import ConfigError, load_settings, locate
from .setup import CLIENTS, apply, plan

__all__ = ["client_command"]

PROG = "kiro-gateway client"


def client_command(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog=PROG, description="Configure a coding client to use this gateway: its own "
                                "config file is written or merged (the old one backed up). / 配置客户端使用本网关。")
    sub = p.add_subparsers(dest="action", required=True)
    s = sub.add_parser("setup", help="write or merge the client's config file / 写入或合并客户端配置")
    s.add_argument("client", choices=CLIENTS)
    s.add_argument("--url", help="the gateway's base URL (default: host and port from config.json)")
    s.add_argument("--key", help="the key the client sends (default: apiKey from config.json)")
    s.add_argument("--model", help="the model the client asks for (default: the client's own choice)")
    s.add_argument("--trust", action="append", type=Path, default=[], metavar="DIR",
                   help="gemini: trust DIR and its subfolders, where Gemini CLI then reads ~/.gemini/.env / "
                        "gemini：信任该目录（Gemini CLI 只在受信任目录读取 ~/.gemini/.env）")
    s.add_argument("-c", "--config", metavar="CONFIG", help="config.json to read the URL and key from")
    s.add_argument("--print", action="store_true", help="show the files instead of writing them / 仅显示")
    args = p.parse_args(argv)
    try:
        url, key = _target(args)
        if args.trust and args.client != "gemini":
            raise Refusal("--trust is for gemini only", "--trust 仅用于 gemini")
        changes = plan(args.client, url, key, args.model, trust=args.trust)
    except Refusal as e:
        return say(PROG, e)
    except ValueError as e:
        return say(PROG, Refusal(str(e), "客户端配置文件无法读取，请先修正或移走",
                                 zh_alone=f"客户端配置文件无法读取，请先修正或移走：{e}"))
    if args.print:
        for ch in changes:
            print(f"# {ch.path}\n{ch.text}")
        return 0
    for path, backup in apply(changes):
        print(localized(f"wrote {path}" + (f" (old file kept as {backup.name})" if backup else ""),
                        f"已写入 {path}" + (f"（旧文件备份为 {backup.name}）" if backup else "")))
    print(localized(f"{args.client} now uses {url}", f"{args.client} 现在使用 {url}"))
    if args.client == "gemini" and not args.trust:
        print(localized("Gemini CLI reads ~/.gemini/.env only in folders you trust (it asks once per folder; "
                        "--trust DIR trusts one now)",
                        "Gemini CLI 只在受信任目录读取 ~/.gemini/.env（首次会询问；可用 --trust DIR 预先信任）"))
    return 0


def _target(args: argparse.Namespace) -> tuple[str, str]:
    settings = None
    if not (args.url and args.key):
        paths = locate(args.config, None)
        try:
            settings = load_settings(paths.config if paths.config.exists() else None)
        except ConfigError as e:
            raise Refusal(str(e), "配置无效（见英文说明）", zh_alone=f"配置无效：{e}") from None
    url = args.url
    if not url:
        assert settings is not None  # read above: no --url was given
        host = settings.host if settings.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        url = f"http://{host if ':' not in host else f'[{host}]'}:{settings.port}"
    key = args.key or (settings.api_key if settings else None)
    if not key:
        raise Refusal("no key: config.json has no apiKey; give --key", "没有密钥：config.json 中没有 apiKey；请用 --key 指定")
    return url, key


if __name__ == "__main__":  # pragma: no cover
    sys.exit(client_command(sys.argv[1:]))
