"""Accounts the fake Kiro knows: bearer checks, token refresh (social and IdC), usage limits.

With no account registered the fake is "open": any non-empty bearer token is accepted (demo mode).
Once one is registered, a bearer must be the current, unexpired access token of an account.

Not thread-safe on purpose: the server touches it only from its event loop, and `FakeKiro`
marshals calls from other threads onto that loop.
"""

from __future__ import annotations

import calendar
import secrets
import time
from collections import Counter
from typing import Any

import orjson

__all__ = ["AccountStore", "usage_limits", "BEARER_INVALID", "SUSPENDED", "QUOTA", "MISSING_TOKEN", "INVALID_GRANT"]

BEARER_INVALID = orjson.dumps(
    {
        "message": "The bearer token included in the request is invalid.",
        "__type": "com.amazon.aws.codewhisperer#AccessDeniedException",
    }
)
MISSING_TOKEN = orjson.dumps(
    {
        "message": "Missing bearer token.",
        "__type": "com.amazon.aws.codewhisperer#AccessDeniedException",
    }
)
SUSPENDED = orjson.dumps(
    {"message": "Your account is temporarily suspended.", "reason": "TEMPORARILY_SUSPENDED"}
)
QUOTA = orjson.dumps({"message": "You have reached the limit.", "reason": "MONTHLY_REQUEST_COUNT"})
INVALID_GRANT = orjson.dumps(
    {"error": "invalid_grant", "error_description": "Invalid refresh token provided"}
)
INVALID_CLIENT = orjson.dumps(
    {"error": "invalid_client", "error_description": "Client authentication failed"}
)
UNSUPPORTED_GRANT = orjson.dumps(
    {"error": "unsupported_grant_type", "error_description": "Unsupported grant type"}
)
REFRESH_FAILED = orjson.dumps({"message": "Internal error while refreshing the token."})

AUTH_KINDS = ("social", "idc", "api_key")
FIELDS = {
    "id": None,
    "refresh_token": None,
    "access_token": None,
    "expires_at": None,
    "expires_in": 3600,
    "auth": "social",
    "client_id": None,
    "client_secret": None,
    "suspended": False,
    "quota_exhausted": False,
    "subscription": "KIRO PRO",
    "usage_limit": 1000.0,
    "current_usage": 0.0,
    "profile_arn": None,
    "rotate_refresh_token": False,
    "email": None,
    # Fault injection beyond the brief: refresh answers this status (e.g. 500) instead of tokens;
    # more concurrent generateAssistantResponse calls than this are throttled (429).
    "refresh_fail_status": None,
    "max_concurrency": None,
    # 2026 (docs/kiro-protocol.md): a Builder ID account has no profile ARN; profile_region is where
    # its Q profile lives (us-east-1 or eu-central-1); models limits what it may use (None: all the
    # server's; a list of ids or {id: {maxInputTokens, maxOutputTokens}}); fail_with names an
    # answer from fake/catalog.py ERRORS given to every generateAssistantResponse until cleared.
    "builder_id": False,
    "profile_region": None,
    "models": None,
    "fail_with": None,
}


BOOL_FIELDS = ("suspended", "quota_exhausted", "rotate_refresh_token", "builder_id")
NUMBER_FIELDS = ("expires_at", "expires_in", "usage_limit", "current_usage")


def _check_types(fields: dict) -> None:
    """Control input is checked here so that a bad value fails the call, not later requests."""
    for key in BOOL_FIELDS:
        if key in fields and not isinstance(fields[key], bool):
            raise ValueError(f"{key} must be true or false")
    for key in NUMBER_FIELDS:
        value = fields.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ValueError(f"{key} must be a number")
    for key in ("id", "refresh_token", "access_token", "client_id", "client_secret", "profile_arn", "email",
                "subscription", "profile_region"):
        if fields.get(key) is not None and not isinstance(fields[key], str):
            raise ValueError(f"{key} must be a string")
    for key in ("refresh_fail_status", "max_concurrency"):
        value = fields.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"{key} must be an integer")
    models = fields.get("models")
    if models is not None:
        if isinstance(models, list):
            if not all(isinstance(m, str) for m in models):
                raise ValueError("models must be a list of model ids or an object of id -> limits")
        elif not (isinstance(models, dict) and all(isinstance(v, (dict, type(None))) for v in models.values())):
            raise ValueError("models must be a list of model ids or an object of id -> limits")
    if fields.get("fail_with") is not None:
        from .catalog import named_error

        named_error(fields["fail_with"])


def _token(prefix: str, n: int) -> str:
    return prefix + secrets.token_urlsafe(n)


class AccountStore:
    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        """Forget every account and count."""
        self.by_id: dict[str, dict] = {}
        self._by_access: dict[str, dict] = {}
        self._by_refresh: dict[str, dict] = {}
        self._ever_refresh: dict[str, str] = {}  # every refresh token ever issued → account id
        self.refresh_counts: Counter = Counter()
        self.refresh_failures = 0

    @property
    def open(self) -> bool:
        return not self.by_id

    # -- registry -------------------------------------------------------------------------------

    def add(self, **fields) -> dict:
        unknown = set(fields) - set(FIELDS)
        if unknown:
            raise ValueError(f"unknown account fields: {sorted(unknown)}")
        _check_types(fields)
        acct: dict[str, Any] = {k: fields.get(k, v) for k, v in FIELDS.items()}
        if acct["auth"] not in AUTH_KINDS:
            raise ValueError(f"auth must be one of {AUTH_KINDS}")
        if acct["id"] is None:
            new_id = f"acct-{len(self.by_id) + 1}"
            while new_id in self.by_id:
                new_id += "x"
            acct["id"] = new_id
        if acct["id"] in self.by_id:
            raise ValueError(f"account id {acct['id']!r} already registered")
        num = secrets.token_hex(6)
        # KRS refuses refresh tokens under 100 chars as "truncated", so fake ones are longer.
        acct["refresh_token"] = acct["refresh_token"] or _token("aorAAAAAG", 96)
        if acct["auth"] == "api_key":
            acct["access_token"] = acct["access_token"] or _token("ksk_", 32)
        else:
            acct["access_token"] = acct["access_token"] or _token("aoaAAAAAG", 96)
        if acct["expires_at"] is None:
            acct["expires_at"] = time.time() + acct["expires_in"]
        if acct["auth"] == "idc":
            acct["client_id"] = acct["client_id"] or _token("fakeclient-", 16)
            acct["client_secret"] = acct["client_secret"] or _token("fakesecret-", 32)
        if acct["builder_id"]:
            if acct["profile_arn"]:
                raise ValueError("a Builder ID account has no profile_arn")
            if acct["auth"] != "idc":
                raise ValueError("a Builder ID account signs in through IdC (auth 'idc')")
        else:
            region = acct["profile_region"] or "us-east-1"
            acct["profile_arn"] = (
                acct["profile_arn"] or f"arn:aws:codewhisperer:{region}:699475941385:profile/{num.upper()}"
            )
            acct["profile_region"] = acct["profile_region"] or acct["profile_arn"].split(":")[3] or "us-east-1"
        acct["email"] = acct["email"] or f"{acct['id']}@fake.kiro.dev"
        for key in acct["access_token"], acct["refresh_token"]:
            if key in self._by_access or key in self._by_refresh:
                raise ValueError("token already used by another account")
        self.by_id[acct["id"]] = acct
        self._index(acct)
        return dict(acct)

    def _index(self, acct: dict) -> None:
        self._by_access[acct["access_token"]] = acct
        self._by_refresh[acct["refresh_token"]] = acct
        self._ever_refresh[acct["refresh_token"]] = acct["id"]

    def _unindex(self, acct: dict) -> None:
        self._by_access.pop(acct["access_token"], None)
        self._by_refresh.pop(acct["refresh_token"], None)

    def find(self, key) -> dict | None:
        """An account by id, access token, or any refresh token it has ever had (or its dict)."""
        if isinstance(key, dict):
            key = key.get("id")
        acct = self.by_id.get(key) or self._by_access.get(key)
        if acct is None and key in self._ever_refresh:
            acct = self.by_id.get(self._ever_refresh[key])
        return acct

    def update(self, key, **fields) -> dict:
        acct = self.find(key)
        if acct is None:
            raise KeyError(key)
        unknown = set(fields) - set(FIELDS) - {"id"}
        if unknown or "id" in fields:
            raise ValueError(f"cannot update fields: {sorted(unknown | ({'id'} & set(fields)))}")
        _check_types(fields)
        if any(key in fields and not fields[key] for key in ("access_token", "refresh_token")):
            raise ValueError("tokens cannot be emptied")
        if fields.get("auth", acct["auth"]) not in AUTH_KINDS:
            raise ValueError(f"auth must be one of {AUTH_KINDS}")
        self._unindex(acct)
        acct.update(fields)
        self._index(acct)
        return dict(acct)

    def list(self) -> list[dict]:
        return [dict(a) for a in self.by_id.values()]

    def refresh_count(self, key) -> int:
        acct = self.find(key)
        return self.refresh_counts[acct["id"]] if acct else 0

    # -- bearer checks --------------------------------------------------------------------------

    def authenticate(self, authorization: str | None, token_type: str | None = None):
        """(token, account | None, error) where error is None or (status, body bytes)."""
        if not authorization:
            return None, None, (401, MISSING_TOKEN)
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None, None, (403, BEARER_INVALID)
        if not self.by_id:
            return token, None, None
        acct = self._by_access.get(token)
        if acct is None:
            return token, None, (403, BEARER_INVALID)
        if acct["auth"] == "api_key":
            if token_type != "API_KEY":  # KRS sends `tokentype: API_KEY` with ksk_ keys
                return token, acct, (403, BEARER_INVALID)
        elif acct["expires_at"] <= time.time():
            return token, acct, (403, BEARER_INVALID)
        if acct["suspended"]:
            return token, acct, (403, SUSPENDED)
        return token, acct, None

    # -- refresh --------------------------------------------------------------------------------

    def _refresh(self, acct: dict) -> None:
        self._unindex(acct)
        acct["access_token"] = _token("aoaAAAAAG", 96)
        if acct["rotate_refresh_token"]:
            acct["refresh_token"] = _token("aorAAAAAG", 96)
        acct["expires_at"] = time.time() + acct["expires_in"]
        self._index(acct)
        self.refresh_counts[acct["id"]] += 1

    def _refused(self, status: int, answer: bytes) -> tuple[int, bytes]:
        self.refresh_failures += 1
        return status, answer

    def _refresh_target(self, body: object, auth: str) -> dict | None:
        """The account whose refresh token the body carries, when it signs in the `auth` way."""
        token = body.get("refreshToken") if isinstance(body, dict) else None
        acct = self._by_refresh.get(token) if isinstance(token, str) else None
        return acct if acct is not None and acct["auth"] == auth else None

    def _refreshed(self, acct: dict, extra: dict) -> tuple[int, bytes]:
        """The part both refresh endpoints share once the request is valid: the account's scripted
        failure, or new tokens followed by the endpoint's own `extra` fields."""
        if acct["refresh_fail_status"]:
            return self._refused(acct["refresh_fail_status"], REFRESH_FAILED)
        self._refresh(acct)
        return 200, orjson.dumps({"accessToken": acct["access_token"], "refreshToken": acct["refresh_token"], **extra})

    def refresh_social(self, body: object) -> tuple[int, bytes]:
        """POST /refreshToken, docs/kiro-protocol.md, “Social refresh”."""
        acct = self._refresh_target(body, "social")
        if acct is None:
            return self._refused(400, INVALID_GRANT)
        return self._refreshed(acct, {"profileArn": acct["profile_arn"], "expiresIn": acct["expires_in"]})

    def refresh_idc(self, body: object) -> tuple[int, bytes]:
        """POST /token (SSO-OIDC CreateToken with JSON body), docs/kiro-protocol.md, “IdC refresh”."""
        if not isinstance(body, dict):
            return self._refused(400, INVALID_GRANT)
        if body.get("grantType") != "refresh_token":
            return self._refused(400, UNSUPPORTED_GRANT)
        acct = self._refresh_target(body, "idc")
        if acct is None:
            return self._refused(400, INVALID_GRANT)
        # A wrong client is an OIDC client-auth failure, not a bad grant (KRS would otherwise
        # disable the credential as permanently invalid).
        if body.get("clientId") != acct["client_id"] or body.get("clientSecret") != acct["client_secret"]:
            return self._refused(401, INVALID_CLIENT)
        return self._refreshed(acct, {"expiresIn": acct["expires_in"], "tokenType": "Bearer"})


# ---------------------------------------------------------------------------------------------


def usage_limits(acct: dict | None, now: float | None = None) -> dict:
    """getUsageLimits answer, docs/kiro-protocol.md, “Usage limits” (open mode reports a generic PRO account)."""
    now = time.time() if now is None else now
    t = time.gmtime(now)
    # Resets at 00:00 UTC on the first of next month.
    year, month = (t.tm_year + 1, 1) if t.tm_mon == 12 else (t.tm_year, t.tm_mon + 1)
    reset = float(calendar.timegm((year, month, 1, 0, 0, 0, 0, 0, 0)))
    acct = acct or {
        "subscription": "KIRO PRO",
        "usage_limit": 1000.0,
        "current_usage": 0.0,
        "quota_exhausted": False,
        "email": "demo@fake.kiro.dev",
        "id": "open",
    }
    limit = float(acct["usage_limit"])
    used = float(acct["current_usage"])
    if acct["quota_exhausted"]:
        used = max(used, limit)
    free = "FREE" in acct["subscription"].upper()
    return {
        "daysUntilReset": max(0, int((reset - now) // 86400)),
        "nextDateReset": reset,
        "subscriptionInfo": {
            "subscriptionTitle": acct["subscription"],
            "type": "Q_DEVELOPER_STANDALONE_FREE" if free else "Q_DEVELOPER_STANDALONE_PRO",
            "overageCapability": "OVERAGE_INCAPABLE" if free else "OVERAGE_CAPABLE",
            "upgradeCapability": "UPGRADE_CAPABLE" if free else "UPGRADE_INCAPABLE",
            "subscriptionManagementTarget": "PURCHASE" if free else "MANAGE",
        },
        "userInfo": {"email": acct["email"], "userId": f"fake-user-{acct['id']}"},
        "overageConfiguration": {"overageStatus": "DISABLED"},
        "usageBreakdownList": [
            {
                "resourceType": "CREDIT",
                "unit": "INVOCATIONS",
                "currency": "USD",
                "currentUsage": int(used),
                "currentUsageWithPrecision": used,
                "usageLimit": int(limit),
                "usageLimitWithPrecision": limit,
                "nextDateReset": reset,
                "overageCap": 0,
                "overageCapWithPrecision": 0.0,
                "overageRate": 0.04,
                "overageCharges": 0.0,
                "currentOverages": 0,
                "currentOveragesWithPrecision": 0.0,
                "displayName": "Credit",
                "displayNamePlural": "Credits",
                "bonuses": [],
            }
        ],
    }

