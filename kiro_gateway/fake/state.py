"""What the fake Kiro remembers: settings, accounts, scripts, recorded requests and counters.

Single-threaded by design: only the server's event loop touches it (`FakeKiro` marshals calls).
"""

from __future__ import annotations

import time
from collections import Counter, deque

from .accounts import AccountStore
from .catalog import model_entry
from .login import LoginService
from .replies import Settings, check_script, script_matches

__all__ = ["FakeState", "DEFAULT_MODELS", "MAX_RECORDS"]

DEFAULT_MODELS = {
    "claude-sonnet-4.5": "Claude Sonnet 4.5",
    "claude-sonnet-4.6": "Claude Sonnet 4.6",
    "claude-sonnet-4": "Claude Sonnet 4",
    "claude-opus-4.5": "Claude Opus 4.5",
    "claude-opus-4.6": "Claude Opus 4.6",
    "claude-opus-4.7": "Claude Opus 4.7",
    "claude-opus-4.8": "Claude Opus 4.8",
    "claude-haiku-4.5": "Claude Haiku 4.5",
    "auto": "Auto",
    "claude-opus-5": "Claude Opus 5",
    "claude-sonnet-5": "Claude Sonnet 5",
    "glm-5": "GLM-5",
    "deepseek-3.2": "DeepSeek 3.2",
    "minimax-m2.1": "MiniMax M2.1",
    "minimax-m2.5": "MiniMax M2.5",
    "qwen3-coder-next": "Qwen3 Coder Next",
    "CLAUDE_SONNET_4_5_20250929_V1_0": "Claude Sonnet 4.5 (legacy id)",
    "CLAUDE_SONNET_4_20250514_V1_0": "Claude Sonnet 4 (legacy id)",
    "CLAUDE_3_7_SONNET_20250219_V1_0": "Claude 3.7 Sonnet (legacy id)",
}
MAX_RECORDS = 1000


class FakeState:
    """Everything the fake remembers: settings, accounts, scripts, recorded requests, counters."""

    def __init__(self, settings: Settings, models: dict[str, str]) -> None:
        self.settings = settings
        self.models = dict(models)
        self.known_models = frozenset(self.models)
        self.accounts = AccountStore()
        self.login = LoginService(self.accounts)
        self.scripts: list[dict] = []
        self.requests: deque = deque(maxlen=MAX_RECORDS)
        self.paths: Counter = Counter()
        self.statuses: Counter = Counter()
        self.rules: Counter = Counter()
        self.inflight: dict[str, int] = {}
        self.max_inflight: dict[str, int] = {}
        self.inflight_accounts: dict[str, int] = {}
        self.max_inflight_accounts: dict[str, int] = {}

    def add_scripts(self, scripts) -> int:
        batch = [check_script(s) for s in (scripts if isinstance(scripts, list) else [scripts])]
        self.scripts.extend(batch)
        return len(batch)

    def take_script(self, body: dict, token: str | None, account: str | None = None) -> dict | None:
        for i, script in enumerate(self.scripts):
            if script_matches(script, body, token, account):
                if script["times"] > 0:
                    script["times"] -= 1
                    if script["times"] == 0:
                        del self.scripts[i]
                return script
        return None

    def record(self, request, raw: bytes, token: str | None) -> dict:
        headers = {k.lower(): v for k, v in request.headers.items() if k.lower() != "authorization"}
        peer = request.transport.get_extra_info("peername") if request.transport else None
        rec = {
            "time": time.time(),
            "method": request.method,
            "path": request.path,
            "query": dict(request.query),
            "peer": f"{peer[0]}:{peer[1]}" if peer else None,  # tells keep-alive reuse apart
            "headers": headers,
            "token": token,
            "account": None,
            "size": len(raw),
            "body": None,
            "status": None,
            "verdict": None,
            "rule": None,
            "scripted": False,
        }
        self.requests.append(rec)
        return rec

    def received(self, request, raw: bytes, host: str) -> tuple[str | None, dict | None, tuple | None, dict | None]:
        """A chat or MCP call arrived on `host`: (token, account, auth error or None, the record
        when recording), authenticated as Kiro does and recorded with its host and account."""
        headers = request.headers
        token, acct, auth_error = self.accounts.authenticate(headers.get("Authorization"), headers.get("tokentype"))
        rec = self.record(request, raw, token) if self.settings.record else None
        if rec is not None:
            rec["host"] = host
            if acct is not None:
                rec["account"] = acct["id"]
        return token, acct, auth_error, rec

    def recorded(self, limit: int | None = None) -> list[dict]:
        items = list(self.requests)
        return items[-limit:] if limit else items

    def stats(self) -> dict:
        return {
            "paths": dict(self.paths),
            "statuses": {str(k): v for k, v in self.statuses.items()},
            "rules": dict(self.rules),
            "refresh_counts": dict(self.accounts.refresh_counts),
            "refresh_failures": self.accounts.refresh_failures,
            "inflight": dict(self.inflight),
            "max_inflight": dict(self.max_inflight),
            "inflight_accounts": dict(self.inflight_accounts),
            "max_inflight_accounts": dict(self.max_inflight_accounts),
            "scripts_pending": len(self.scripts),
            "requests_recorded": len(self.requests),
        }

    def reset(self, accounts: bool = True) -> None:
        """Forget scripts, recordings and counters (and accounts unless told not to)."""
        self.scripts.clear()
        self.requests.clear()
        for counter in (self.paths, self.statuses, self.rules):
            counter.clear()
        self.max_inflight.clear()  # current in-flight counts stay: those requests are live
        self.max_inflight_accounts.clear()
        if accounts:
            self.accounts.clear()
            self.login.clear()
        else:
            self.accounts.refresh_counts.clear()
            self.accounts.refresh_failures = 0

    def account_models(self, acct: dict | None) -> dict[str, dict | None]:
        """Model id -> limits override (or None) that `acct` may use (open mode: all the server's)."""
        allowed = acct["models"] if acct is not None else None
        if allowed is None:
            return {mid: None for mid in self.models}
        if isinstance(allowed, list):
            return {mid: None for mid in allowed if mid in self.models}
        return {mid: lim for mid, lim in allowed.items() if mid in self.models}

    def model_list(self, acct: dict | None = None) -> dict:
        """ListAvailableModels for `acct`: its models with their tokenLimits."""
        models = [model_entry(mid, self.models[mid], lim) for mid, lim in self.account_models(acct).items()]
        default = next((m for m in models if m["modelId"] == "auto"), models[0] if models else None)
        return {"models": models, "defaultModel": default}

    models_page_size = 10  # ListAvailableModels pages its answer; `nextToken` asks for the next page

    def model_page(self, acct: dict | None, token: str | None) -> dict | None:
        """One page of model_list; None for a `nextToken` this fake never handed out."""
        full = self.model_list(acct)
        start = 0
        if token is not None:
            if not token.startswith("page-") or not token[5:].isdigit():
                return None
            start = int(token[5:])
            if start <= 0 or start >= len(full["models"]):
                return None
        end = start + self.models_page_size
        page = {"models": full["models"][start:end], "defaultModel": full["defaultModel"]}
        if end < len(full["models"]):
            page["nextToken"] = f"page-{end}"
        return page
