"""`kiro-gateway desktop`: the gateway and its console in a native window (pywebview on Qt).

The window is an optional extra (`pip install 'kiro-gateway[desktop]'`); a server install never
imports it: `webview` is imported inside `desktop_command` only. The gateway runs in a background
thread on this machine's loopback address; the window opens the console through a single-use
hand-off link (`/admin/handoff?token=…`), so it is signed in without the admin key being typed or
shown. Closing the window stops the gateway.

The console needs an admin key. Without one in config.json, a key is generated and saved there
(0600, atomically) so the console can be used at all; it is never printed.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import sys
import threading
import time
from pathlib import Path
from typing import Any

from . import __version__
from .config import ConfigError, Settings, ensure_files, load_settings, locate
from .util.files import read_json, write_json_atomic

__all__ = ["desktop_command", "NOT_INSTALLED", "NOT_IN_BINARY"]

log = logging.getLogger("kiro_gateway.desktop")

NOT_INSTALLED = ("kiro-gateway desktop needs the desktop extra: pip install 'kiro-gateway[desktop]' / "
                 "桌面窗口需要 desktop 扩展：pip install 'kiro-gateway[desktop]'")
NOT_IN_BINARY = ("kiro-gateway desktop is not part of the one-file binary: run `kiro-gateway` and open /admin/ in a "
                 "browser, or install from source with the desktop extra / 单文件可执行程序不含桌面窗口：请运行 "
                 "`kiro-gateway` 并用浏览器打开 /admin/，或从源码安装 desktop 扩展")
TITLE = "kiro-gateway"
START_TIMEOUT = 20.0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kiro-gateway desktop",
                                description="Run the gateway and open its console in a window; closing the "
                                            "window stops the gateway. / 运行网关并在窗口中打开控制台；"
                                            "关闭窗口即停止网关。")
    p.add_argument("-c", "--config", metavar="CONFIG", help="config.json to use")
    p.add_argument("--credentials", metavar="FILE", help="credentials.json to use")
    p.add_argument("--port", type=int, help="port to listen on (default: config.json's, else 8990)")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"], help="log verbosity")
    return p


def _say(msg: str) -> None:
    print(f"kiro-gateway: {msg}", file=sys.stderr, flush=True)


def _ensure_admin_key(config: Path) -> bool:
    """Give config.json an adminApiKey if it has none (the console is off without one). True if added."""
    data: dict[str, Any] = {}
    if config.exists():
        loaded = read_json(config)
        if isinstance(loaded, dict):
            data = loaded
    if data.get("adminApiKey"):
        return False
    data["adminApiKey"] = "kga-" + secrets.token_urlsafe(32)
    write_json_atomic(config, data)
    return True


def _window_host(settings: Settings) -> str:
    host = settings.host.strip("[]")
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host


class _GatewayThread:
    """uvicorn serving the gateway in a background thread, so the window can own the main thread."""

    def __init__(self, app: Any, settings: Settings) -> None:
        import uvicorn

        from .web.readgate import GatedHttpToolsProtocol

        self.server = uvicorn.Server(uvicorn.Config(app, host=settings.host, port=settings.port,
                                                    log_level=settings.log_level, access_log=False,
                                                    timeout_keep_alive=75,
                                                    # uvicorn's annotation says asyncio.Protocol; a buffered one runs as well
                                                    http=GatedHttpToolsProtocol))  # type: ignore[arg-type]
        self.thread = threading.Thread(target=self._run, name="kiro-gateway", daemon=True)
        self.failed: BaseException | None = None

    def _run(self) -> None:
        try:
            self.server.run()
        except BaseException as e:  # noqa: BLE001 - uvicorn exits the thread on a bind failure
            self.failed = e

    def start(self) -> bool:
        self.thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def desktop_command(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        import webview  # the desktop extra; never imported by the server
    except ImportError:
        _say(NOT_IN_BINARY if getattr(sys, "frozen", False) else NOT_INSTALLED)
        return 2
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        _say("no display to open a window on (DISPLAY is not set); on a server run `kiro-gateway` and open "
             "/admin/ in a browser / 没有可用的显示器（未设置 DISPLAY）；在服务器上请运行 `kiro-gateway` 并用浏览器打开 /admin/")
        return 2
    paths = locate(args.config, args.credentials)
    try:
        ensure_files(paths)
        added_key = _ensure_admin_key(paths.config)
        settings = load_settings(paths.config, overrides={"port": args.port, "log_level": args.log_level})
    except (ConfigError, OSError) as e:
        _say(str(e))
        return 2
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if added_key:
        print(f"Added an adminApiKey to {paths.config} for the console. / 已在 {paths.config} 中为控制台添加 adminApiKey。",
              flush=True)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # Qt WebEngine (Chromium) will not start as root with its sandbox on.
        os.environ.setdefault("QTWEBENGINE_CHROMIUM_FLAGS", "--no-sandbox")

    from .app import create_app

    app = create_app(settings, paths.credentials, paths.config)
    gateway = _GatewayThread(app, settings)
    if not gateway.start():
        gateway.stop()
        _say(f"the gateway could not start on {settings.host}:{settings.port} (port in use? try --port) / "
             f"网关无法在 {settings.host}:{settings.port} 上启动（端口被占用？请试试 --port）")
        return 1
    base = f"http://{_window_host(settings)}:{settings.port}"
    print(f"kiro-gateway {__version__} on {base} (config {paths.config}, credentials {paths.credentials}); "
          "close the window to stop. / 关闭窗口即停止网关。", flush=True)
    token = app.state.gateway.console.issue_handoff()
    try:
        webview.create_window(TITLE, f"{base}/admin/handoff?token={token}", width=1280, height=860,
                              min_size=(720, 480))
        webview.start(gui="qt", private_mode=True)
    except Exception as e:  # noqa: BLE001 - no display, a broken Qt: say so in one line
        _say(f"the window could not open: {e} / 无法打开窗口：{e}")
        return 1
    finally:
        gateway.stop()
    print("Window closed; the gateway stopped. / 窗口已关闭，网关已停止。", flush=True)
    return 0
