"""Command line: `kiro-gateway` serves; `login`, `desktop`, `status`, `import`, `demo` and `fake-upstream` do the rest."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from . import __version__
from .cli_errors import (Refusal, check_config, check_port, credential_warnings, localized, plural, probe_store,
                         read_credentials, say, unknown_keys, warn)
from .config import ConfigError, env_documentation, ensure_files, load_settings, locate

__all__ = ["main"]

DESCRIPTION = """\
kiro-gateway: use a pool of Kiro accounts from any coding client.
kiro-gateway：让任何编程客户端使用一组 Kiro 账号。

Serves the Anthropic Messages API (Claude Code), OpenAI Chat Completions and Responses (Codex,
OpenCode, the openai SDK) and the Gemini API (Gemini CLI) on top of Kiro, refreshing each
account's tokens and writing them back.

Files: without -c, config.json and credentials.json are read from the working directory if
config.json is there, else from ~/.kiro-gateway/. The first run creates both in ~/.kiro-gateway/:
a config with a generated apiKey (shown once) and an empty credentials list. A -c path that does
not exist is refused unless --init is given.

Point clients at it (or run `kiro-gateway client setup claude-code|codex|gemini|opencode`):
  ANTHROPIC_BASE_URL=http://127.0.0.1:8990 ANTHROPIC_API_KEY=<apiKey> claude
"""

_COMMANDS = [
    ("serve (default)", "run the gateway / 运行网关"),
    ("import", "add the Kiro IDE's and kiro-cli's logins to credentials.json / 导入本机登录"),
    ("login", "log in to Kiro (builder-id, idc, social) and add the account / 登录 Kiro"),
    ("desktop", "run the gateway with its console in a window (extra: kiro-gateway[desktop]) / 桌面窗口"),
    ("status", "credentials, states, usage and recent errors of a running gateway / 运行状态"),
    ("client setup", "configure claude-code, codex, gemini or opencode to use this gateway / 配置客户端"),
    ("demo", "run a fake Kiro and the gateway wired to it (no account needed) / 演示"),
    ("fake-upstream", "run the fake Kiro server alone (tests, benchmark)"),
]
_W = max(len(c) for c, _ in _COMMANDS) + 2
EPILOG = "commands:\n" + "".join(f"  {c:<{_W}}{d}\n" for c, d in _COMMANDS) + \
         "\nenvironment overrides (config.json key in the right column):\n" + env_documentation()
PROG = "kiro-gateway"


def _serve_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kiro-gateway", description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-c", "--config", metavar="CONFIG", help="config.json to use")
    p.add_argument("--credentials", metavar="FILE", help="credentials.json to use")
    p.add_argument("--host", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to listen on (default 8990)")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"], help="log verbosity")
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="serve from N processes (needs a shared state store: stateUrl redis://…)")
    p.add_argument("--init", action="store_true", help="create the -c config.json if it does not exist")
    p.add_argument("-V", "--version", action="version", version=f"kiro-gateway {__version__}")
    return p


def serve(argv: list[str]) -> int:
    args = _serve_parser().parse_args(argv)
    paths = locate(args.config, args.credentials)
    try:
        settings, created_key = _prepare(args, paths)
    except Refusal as e:
        return say(PROG, e)
    if settings.log_format == "json":
        from .observe.jsonlog import install

        install(settings.log_level)
    else:
        logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if created_key:
        print(f"Created {paths.config} and {paths.credentials}.\n"
              f"Your API key (shown once; it is in config.json): {created_key}\n"
              f"Add Kiro credentials to {paths.credentials}, or run `kiro-gateway import`.", flush=True)
    print(f"kiro-gateway {__version__} on http://{settings.host}:{settings.port} "
          f"(config {paths.config}, credentials {paths.credentials})", flush=True)

    if not settings.api_key and not _is_loopback(settings.host):
        print("kiro-gateway: " + localized(
            f"listening on {settings.host} without apiKey, so only this machine is let in; "
            "set apiKey in config.json (or KIRO_GATEWAY_API_KEY) to admit other machines.",
            "未设置 apiKey，只接受本机请求；在 config.json 中设置 apiKey（或 KIRO_GATEWAY_API_KEY）以允许其他机器访问。"),
            file=sys.stderr, flush=True)
    from .observe.redact import SecretQueryFilter

    logging.getLogger("uvicorn.access").addFilter(SecretQueryFilter())  # Gemini clients send ?key=

    import uvicorn

    from .web.readgate import GatedHttpToolsProtocol

    # httptools, reading new requests only while pendingBodiesMb has room (web/readgate.py)
    common = dict(host=settings.host, port=settings.port, log_level=settings.log_level,
                  access_log=settings.log_level == "debug", loop="auto", http=GatedHttpToolsProtocol,
                  timeout_keep_alive=75,
                  timeout_graceful_shutdown=settings.shutdown_timeout)  # open streams finish first
    if settings.log_format == "json":
        common["log_config"] = None  # uvicorn's loggers go through the JSON handler
    if args.workers > 1:
        if not (settings.state_url or "").startswith(("redis://", "rediss://", "unix://")):
            return say(PROG, Refusal("--workers needs stateUrl redis://… (workers must share cooldowns, sessions, "
                                     "refreshes and pacing)",
                                     "--workers 需要 stateUrl redis://…（各进程必须共享冷却、会话、刷新和限速）"))
        # Each worker builds its own app from these (uvicorn imports the factory in every process).
        os.environ[_WORKER_CONFIG] = str(paths.config)
        os.environ[_WORKER_CREDENTIALS] = str(paths.credentials)
        uvicorn.run("kiro_gateway.cli:worker_app", factory=True, workers=args.workers, **common)
        return 0
    from .app import create_app

    uvicorn.run(create_app(settings, paths.credentials, paths.config, _gc_thresholds()), **common)
    return 0


def _gc_thresholds() -> tuple[int, int, int]:
    """The collector's thresholds once the gateway is up (util/heap.py); KIRO_GATEWAY_GC_THRESHOLDS=a,b,c
    overrides them (700,10,10 is CPython's own)."""
    from .util.heap import parse_thresholds

    return parse_thresholds(os.environ.get("KIRO_GATEWAY_GC_THRESHOLDS"))


def _prepare(args: argparse.Namespace, paths) -> tuple:
    """Every check that can fail, before anything is announced: (settings, the key created or None)."""
    if args.config and not paths.config.exists() and not args.init:
        raise Refusal(f"{paths.config} does not exist; check the path, or add --init to create it",
                      f"{paths.config} 不存在；请检查路径，或加 --init 创建")
    check_config(paths.config)
    creds = read_credentials(paths.credentials)
    try:
        created_key = ensure_files(paths)
    except OSError as e:
        raise Refusal(f"cannot create {e.filename or paths.config} ({e.strerror or e})",
                      f"无法创建 {e.filename or paths.config}") from None
    try:
        settings = load_settings(paths.config, overrides={"host": args.host, "port": args.port,
                                                          "log_level": args.log_level})
    except ConfigError as e:
        raise Refusal(f"{e}", "配置无效（见英文说明）", zh_alone=f"配置无效：{e}") from None
    check_port(settings.host, settings.port)
    probe_store(settings)
    for en, zh in unknown_keys(paths.config):
        warn(PROG, en, zh)
    for en, zh in credential_warnings(paths.credentials, creds):
        if not created_key:  # the first run's banner already says to add credentials
            warn(PROG, en, zh)
    return settings, created_key


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


_WORKER_CONFIG, _WORKER_CREDENTIALS = "KIRO_GATEWAY__WORKER_CONFIG", "KIRO_GATEWAY__WORKER_CREDENTIALS"


def worker_app():
    """The app of one `--workers` process (the CLI's overrides travel as environment variables)."""
    from .app import create_app

    config, creds = Path(os.environ[_WORKER_CONFIG]), Path(os.environ[_WORKER_CREDENTIALS])
    return create_app(load_settings(config), creds, config, _gc_thresholds())


def demo(argv: list[str]) -> int:
    """A fake Kiro in-process and the gateway pointed at it: try every client with no account."""
    p = argparse.ArgumentParser(prog="kiro-gateway demo", description=(demo.__doc__ or "") + " / 内置假 Kiro 的演示，无需账号。")
    p.add_argument("--port", type=int, default=8990, help="port of the gateway (default 8990)")
    p.add_argument("--api-key", default="demo-key", help="key clients send (default demo-key)")
    p.add_argument("--admin-key", default="demo-admin", help="admin API and console key (default demo-admin)")
    args = p.parse_args(argv)
    try:
        check_port("127.0.0.1", args.port)
    except Refusal as e:
        return say("kiro-gateway demo", e)
    import tempfile

    import uvicorn

    from .app import create_app
    from .config import Settings
    from .fake.server import FakeKiro
    from .util.files import write_json_atomic

    fake = FakeKiro().start()
    refresh_token = "demo-" + "r" * 100
    fake.add_account(refresh_token=refresh_token)
    with tempfile.TemporaryDirectory(prefix="kiro-gateway-demo-") as folder:
        creds = Path(folder) / "credentials.json"
        write_json_atomic(creds, [{"refreshToken": refresh_token, "authMethod": "social"}])
        settings = Settings(port=args.port, api_key=args.api_key, admin_api_key=args.admin_key,
                            api_base_url=fake.base_url, auth_base_url=fake.base_url, oidc_base_url=fake.base_url)
        url = f"http://127.0.0.1:{args.port}"
        print(f"Demo: fake Kiro on {fake.base_url}; gateway on {url}, key {args.api_key}, admin key {args.admin_key}\n"
              f"  ANTHROPIC_BASE_URL={url} ANTHROPIC_API_KEY={args.api_key} claude\n"
              f"  GOOGLE_GEMINI_BASE_URL={url} GEMINI_API_KEY={args.api_key} gemini\n"
              f"  OpenAI clients and Codex: base URL {url}/v1, key {args.api_key}\n"
              f"  console: {url}/admin (admin key {args.admin_key}); "
              f"kiro-gateway status --url {url} --admin-key {args.admin_key}\n"
              f"The fake answers \"Hello from fake Kiro\"; a prompt holding [[fake:tool NAME {{json}}]] "
              f"makes it call that tool.", flush=True)
        import signal

        # uvicorn re-raises the signal that stopped it once it has shut down; as an exception, so
        # this folder is removed on SIGTERM too.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        try:
            from .web.readgate import GatedHttpToolsProtocol

            uvicorn.run(create_app(settings, creds), host="127.0.0.1", port=args.port, log_level="warning",
                        http=GatedHttpToolsProtocol)  # type: ignore[arg-type]  # a BufferedProtocol runs too
        finally:
            fake.stop()
    return 0


def import_command(argv: list[str]) -> int:
    """Add the Kiro IDE's and kiro-cli's logins on this machine to credentials.json."""
    p = argparse.ArgumentParser(prog="kiro-gateway import", description=(import_command.__doc__ or "") + (
        " Reads ~/.aws/sso/cache/kiro-auth-token.json (and the IdC client registration beside it) and "
        "kiro-cli's data.sqlite3; refresh tokens already in the file are skipped."))
    p.add_argument("--from-ide", metavar="PATH", help="Kiro IDE SSO cache dir or kiro-auth-token.json")
    p.add_argument("--from-cli", metavar="PATH", help="kiro-cli data.sqlite3")
    p.add_argument("-c", "--config", metavar="CONFIG", help="config.json (its directory holds credentials.json)")
    p.add_argument("--credentials", metavar="FILE", help="credentials.json to add to")
    args = p.parse_args(argv)
    from .pool.importer import import_into_file

    paths = locate(args.config, args.credentials)
    prog = "kiro-gateway import"
    for given in (args.from_ide, args.from_cli):
        if given and not Path(given).expanduser().exists():
            return say(prog, Refusal(f"{given} does not exist", f"{given} 不存在"))
    # Given one source only, read only that one.
    ide = bool(args.from_ide) or not args.from_cli
    cli = bool(args.from_cli) or not args.from_ide
    try:
        read_credentials(paths.credentials)  # a broken file is named before anything is read
        report = import_into_file(paths.credentials, Path(args.from_ide).expanduser() if args.from_ide else None,
                                  Path(args.from_cli).expanduser() if args.from_cli else None, ide=ide, cli=cli)
    except Refusal as e:
        return say(prog, e)
    except (OSError, ValueError) as e:
        return say(prog, Refusal(f"{paths.credentials}: {e}", f"{paths.credentials} 无法更新",
                                 zh_alone=f"{paths.credentials} 无法更新：{e}"))
    for line in report.lines():
        print(line)
    print(localized(f"{len(report.added)} added, {len(report.skipped)} skipped, "
                    f"{plural(len(report.errors), 'error')} ({paths.credentials})",
                    f"新增 {len(report.added)}，跳过 {len(report.skipped)}，错误 {len(report.errors)}",
                    zh_alone=f"新增 {len(report.added)}，跳过 {len(report.skipped)}，错误 {len(report.errors)}"
                             f"（{paths.credentials}）"))
    if not (report.added or report.skipped or report.errors):
        print(localized("Nothing found: log in with the Kiro IDE or kiro-cli first, or give --from-ide / --from-cli.",
                        "未找到登录：请先用 Kiro IDE 或 kiro-cli 登录，或指定 --from-ide / --from-cli。"))
        return 1 if (args.from_ide or args.from_cli) else 0
    elif report.added:
        # A running gateway merges the file's changes in by itself (hot reload).
        print(localized("A running gateway picks the new credentials up within moments (hot reload).",
                        "运行中的网关会自动载入新凭据（热重载）。"))
    return 1 if report.errors and not (report.added or report.skipped) else 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "fake-upstream":
        from .fake.server import main as fake_main

        return fake_main(argv[1:]) or 0
    if argv and argv[0] == "demo":
        return demo(argv[1:])
    if argv and argv[0] == "import":
        return import_command(argv[1:])
    if argv and argv[0] == "login":
        from .login.cli import login_command

        return login_command(argv[1:])
    if argv and argv[0] == "desktop":
        from .desktop import desktop_command

        return desktop_command(argv[1:])
    if argv and argv[0] == "client":
        from .clients.command import client_command

        return client_command(argv[1:])
    if argv and argv[0] == "status":
        from .status import status_command

        return status_command(argv[1:])
    if argv and argv[0] == "serve":
        argv = argv[1:]
    return serve(argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
