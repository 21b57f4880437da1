"""`kiro-gateway login builder-id | idc | social`: log in to Kiro from a terminal, add the credential.

The URL (and the user code) go to stdout; then one result line. Denied, expired or failed: a
one-line reason on stderr, exit 1, nothing written. A running gateway picks the new credential up
by itself (hot reload of credentials.json).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import webbrowser

from ..cli_errors import Refusal, localized, say
from ..config import ConfigError, load_settings, locate
from ..core.conversation import GatewayError
from ..kiro.client import KiroHttp
from ..pool.pool import CredentialPool
from .manager import DEFAULT_CALLBACK_PORT, Attempt, LoginConflict, LoginInputError, LoginManager, LoginUpstreamError

__all__ = ["login_command", "build_parser"]

PROG = "kiro-gateway login"

_FAILED = {
    "denied": ("Login denied: access was refused in the browser; nothing was written.",
               "登录被拒绝：浏览器中拒绝了授权，未写入任何内容。"),
    "expired": ("Login expired: the code was not approved in time; nothing was written.",
                "登录已过期：未在有效期内完成授权，未写入任何内容。"),
    "cancelled": ("Login cancelled; nothing was written.", "登录已取消，未写入任何内容。"),
    "error": ("Login failed: {error} Nothing was written.", "登录失败：{error} 未写入任何内容。"),
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kiro-gateway login", description=(
        "Log in to Kiro and add the account to credentials.json. / 登录 Kiro 并把账号加入 credentials.json。"))
    sub = p.add_subparsers(dest="method", required=True, metavar="METHOD")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-c", "--credentials", metavar="PATH", help="credentials.json to add to")
    common.add_argument("--config", metavar="CONFIG", help="config.json (its directory holds credentials.json)")
    common.add_argument("--no-browser", action="store_true", help="only print the URL (and code); open no browser")
    sub.add_parser("builder-id", parents=[common], help="AWS Builder ID (device code)")
    idc = sub.add_parser("idc", parents=[common], help="AWS IAM Identity Center (device code)")
    idc.add_argument("--start-url", required=True, metavar="URL", help="your start URL, https://…/start")
    idc.add_argument("--region", required=True, metavar="REGION", help="the Identity Center region, e.g. eu-west-1")
    soc = sub.add_parser("social", parents=[common], help="Google or GitHub (PKCE, loopback callback)")
    soc.add_argument("--provider", required=True, choices=["google", "github"])
    soc.add_argument("--callback-port", type=int, default=DEFAULT_CALLBACK_PORT, metavar="PORT",
                     help=f"loopback port Kiro redirects the browser to (default {DEFAULT_CALLBACK_PORT})")
    return p


def _say(*lines: str) -> None:
    print("\n".join(lines), flush=True)


def _show(att: Attempt, open_browser: bool) -> None:
    if att.method == "social":
        provider = att.provider.title() if att.provider else ""
        _say(localized(f"Open this URL to sign in with {provider}", "打开此网址登录") + ":", f"  {att.authorize_url}")
        if att.callback_listening:
            _say(localized(f"Waiting for the browser to return to {att.redirect_uri} …", "等待浏览器跳转回本机…"))
        else:
            _say("(" + localized(f"Port of {att.redirect_uri} is busy: the browser cannot come back here.",
                                 "回调端口被占用。") + ")")
        _say(localized("If the browser cannot reach this machine, paste the address it ended on here and press Enter.",
                       "如果浏览器无法回到本机，请把地址栏里的最终网址粘贴到这里并回车。", sep="\n"))
        url = att.authorize_url
    else:
        _say(localized("Open this URL and confirm the code", "打开此网址并确认代码") + ":",
             f"  {att.verification_uri_complete}",
             f"  {localized('Code', '代码')}: {att.user_code}",
             localized("Waiting for approval …", "等待授权…"))
        url = att.verification_uri_complete
    if open_browser and url:
        try:
            webbrowser.open(url)
        except Exception:  # noqa: BLE001 - printing the URL is enough
            pass


def _read_pasted(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue) -> None:
    """A daemon thread: stdin lines into the queue (a blocked read never holds the exit)."""
    def reader() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(queue.put_nowait, line.strip())

    threading.Thread(target=reader, name="login-stdin", daemon=True).start()


async def _pasted_urls(mgr: LoginManager, att: Attempt) -> None:
    queue: asyncio.Queue = asyncio.Queue()
    _read_pasted(asyncio.get_running_loop(), queue)
    while att.status == "pending":
        line = await queue.get()
        if not line:
            continue
        try:
            await mgr.callback(att.id, line)
        except LoginInputError as e:
            print(localized(f"{e} Try again.", "请重新粘贴。", zh_alone=f"{e} 请重新粘贴。"), file=sys.stderr, flush=True)
        except LoginConflict:
            return


async def _run(args: argparse.Namespace) -> int:
    paths = locate(args.config, args.credentials)
    try:
        settings = load_settings(paths.config if paths.config.exists() else None)
    except ConfigError as e:
        return say(PROG, Refusal(str(e), "配置无效（见英文说明）", zh_alone=f"配置无效：{e}"))
    http = KiroHttp(settings.connect_timeout)
    folder = paths.credentials.parent
    new_folder = not folder.exists()
    try:
        pool = CredentialPool(settings, paths.credentials, http)
    except GatewayError as e:
        return say(PROG, Refusal(e.message, "凭据文件无法使用（见英文说明）", zh_alone=f"凭据文件无法使用：{e.message}"))
    mgr = LoginManager(settings, pool, http, callback_port=getattr(args, "callback_port", DEFAULT_CALLBACK_PORT))
    paster = None
    try:
        try:
            att = await mgr.start(args.method, start_url=getattr(args, "start_url", None),
                                  region=getattr(args, "region", None), provider=getattr(args, "provider", None))
        except (LoginInputError, LoginUpstreamError, LoginConflict) as e:
            return say(PROG, Refusal(str(e), "登录无法开始。", zh_alone=f"登录无法开始：{e}"))
        _show(att, not args.no_browser)
        if att.method == "social":
            paster = asyncio.create_task(_pasted_urls(mgr, att))
        await mgr.wait(att.id)
    finally:
        if paster is not None:
            paster.cancel()
        await mgr.stop()
        await http.close()
    if att.status == "done":
        if new_folder and folder.exists():
            folder.chmod(0o700)  # it holds tokens: only its owner may look inside
        if att.duplicate:
            _say(localized(f"Already logged in: this account is credential #{att.credential_id} in "
                           f"{paths.credentials}; nothing added.",
                           f"该账号已存在（凭据 #{att.credential_id}），未重复添加。"))
        else:
            _say(localized(f"Logged in: credential #{att.credential_id} ({att.method}) added to {paths.credentials}.",
                           f"登录成功：凭据 #{att.credential_id} 已加入 {paths.credentials}。"))
        return 0
    english, chinese = _FAILED.get(att.status, _FAILED["error"])
    error = att.error or att.status
    print(localized(english.format(error=error), chinese.format(error=error)), file=sys.stderr, flush=True)
    return 1


def login_command(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        return asyncio.run(_run(args))
    except KeyboardInterrupt:
        print(localized(*_FAILED["cancelled"]), file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(login_command(sys.argv[1:]))
