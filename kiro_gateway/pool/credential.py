"""One Kiro credential as read from credentials.json (docs/kiro-protocol.md, “Credentials file”).

The file's own dict is kept (`raw`) so write-back preserves fields we do not know about and the
file's shape (its keys, in the casing the user wrote them). The typed properties read it; the
setters below are the only code that writes it — the rest of the gateway never touches `raw`'s
keys directly, so a field's spellings (`refreshToken` / `refresh_token`…) are known in one place.
"""

from __future__ import annotations

import time
from datetime import datetime, UTC
from typing import Any

__all__ = ["Credential", "parse_expiry", "format_expiry", "TOKEN_KEYS", "TOKEN_FIELDS"]

# Every spelling of the token fields a file may hold (they move together: see writeback.py).
TOKEN_KEYS = ("accessToken", "access_token", "refreshToken", "refresh_token", "expiresAt", "expires_at")
# What a refresh produces, as shared between processes through the state store.
TOKEN_FIELDS = ("accessToken", "refreshToken", "expiresAt", "profileArn")

_IDC_ALIASES = {"idc", "builder-id", "builderid", "iam", "sso", "aws_sso_oidc"}


def parse_expiry(value: Any) -> float | None:
    """RFC 3339 text, epoch seconds or epoch milliseconds → epoch seconds."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        v = float(value)
        return v / 1000.0 if v > 1e11 else v
    if isinstance(value, str):
        s = value.strip()
        try:
            return parse_expiry(float(s))
        except ValueError:
            pass
        try:
            dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
        except ValueError:
            return None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return dt.timestamp()
    return None


def format_expiry(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class Credential:
    __slots__ = ("raw", "index")

    def __init__(self, raw: dict[str, Any], index: int) -> None:
        self.raw = raw
        self.index = index

    def _s(self, *keys: str) -> str | None:
        for k in keys:
            v = self.raw.get(k)
            if isinstance(v, str) and v:
                return v
        return None

    @property
    def id(self) -> str:
        v = self.raw.get("id")
        return str(v) if v not in (None, "") else str(self.index + 1)

    @property
    def refresh_token(self) -> str | None:
        return self._s("refreshToken", "refresh_token")

    @property
    def access_token(self) -> str | None:
        return self._s("accessToken", "access_token")

    @property
    def api_key(self) -> str | None:
        return self._s("kiroApiKey")

    @property
    def expires_at(self) -> float | None:
        return parse_expiry(self.raw.get("expiresAt", self.raw.get("expires_at")))

    @property
    def auth_method(self) -> str:
        m = (self._s("authMethod", "auth_method") or "").lower()
        if self.api_key or m in ("api_key", "apikey"):
            return "api_key"
        if m in _IDC_ALIASES:
            return "idc"
        if m == "social":
            return "social"
        return "idc" if (self.client_id and self.client_secret) else "social"

    @property
    def client_id(self) -> str | None:
        return self._s("clientId", "client_id")

    @property
    def client_secret(self) -> str | None:
        return self._s("clientSecret", "client_secret")

    @property
    def priority(self) -> int:
        try:
            return int(self.raw.get("priority") or 0)
        except (TypeError, ValueError):
            return 0

    @property
    def disabled(self) -> bool:
        return bool(self.raw.get("disabled"))

    @property
    def disabled_reason(self) -> str | None:
        """Why it is switched off (Manual, InvalidRefreshToken…); None while enabled."""
        return self._s("disabledReason") if self.disabled else None

    @property
    def name(self) -> str | None:
        return self._s("name")

    @property
    def email(self) -> str | None:
        return self._s("email")

    @property
    def subscription_title(self) -> str | None:
        return self._s("subscriptionTitle")

    @property
    def next_date_reset(self) -> float | None:
        return parse_expiry(self.raw.get("nextDateReset"))

    @property
    def proxy_url(self) -> str | None:
        """The credential's own proxy (`direct` for none); None: the global one applies."""
        v = self.raw.get("proxyUrl")
        return v if isinstance(v, str) and v.strip() else None

    @property
    def proxy_username(self) -> str | None:
        return self._s("proxyUsername")

    @property
    def proxy_password(self) -> str | None:
        return self._s("proxyPassword")

    @property
    def has_own_id(self) -> bool:
        """Whether the dict holds an `id` (else the id is taken from the position)."""
        return self.raw.get("id") not in (None, "")

    @property
    def profile_arn(self) -> str | None:
        return self._s("profileArn", "profile_arn")

    def region(self, default: str) -> str:
        return self._s("apiRegion", "region") or default

    def auth_region(self, default: str) -> str:
        return self._s("authRegion", "region") or default

    @property
    def endpoint(self) -> str | None:
        """auto | runtime | legacy (docs/kiro-protocol.md, "Hosts"); None: the config's."""
        v = (self._s("endpoint") or "").lower()
        return v if v in ("auto", "runtime", "legacy") else None

    @property
    def kiro_version(self) -> str | None:
        return self._s("kiroVersion")

    @property
    def identity(self) -> str | None:
        """ide | cli: which Kiro client the gateway presents itself as; None: the config's."""
        v = (self._s("identity") or "").lower()
        return v if v in ("ide", "cli") else None

    @property
    def machine_id(self) -> str | None:
        return self._s("machineId")

    def usable_token(self, now: float | None = None, margin: float = 60.0) -> str | None:
        """A bearer token good for at least `margin` more seconds, if the file holds one."""
        if self.auth_method == "api_key":
            return self.api_key
        token = self.access_token
        if not token:
            return None
        exp = self.expires_at
        if exp is not None and exp - (now or time.time()) < margin:
            return None
        return token

    def apply_refresh(self, access_token: str, refresh_token: str | None, expires_in: float,
                      profile_arn: str | None = None) -> None:
        self.raw["accessToken"] = access_token
        if refresh_token:
            self.raw["refreshToken"] = refresh_token
        # Milliseconds (as the Kiro IDE writes them): the newer of two tokens is told by expiry.
        self.raw["expiresAt"] = datetime.fromtimestamp(time.time() + expires_in, UTC).isoformat(
            timespec="milliseconds").replace("+00:00", "Z")
        if profile_arn and not self.profile_arn:
            self.raw["profileArn"] = profile_arn

    # -- writes ----------------------------------------------------------------------------------

    def set_disabled(self, disabled: bool, reason: str | None = None) -> None:
        """Switch off (with the reason shown to the operator) or back on (the reason goes)."""
        self.raw["disabled"] = disabled
        if disabled and reason:
            self.raw["disabledReason"] = reason
        elif not disabled:
            self.raw.pop("disabledReason", None)

    def set_priority(self, priority: int) -> None:
        self.raw["priority"] = priority

    def set_name(self, name: str | None) -> None:
        """The operator's label; empty or None removes it."""
        if name:
            self.raw["name"] = name
        else:
            self.raw.pop("name", None)

    def set_id(self, cid: int | str) -> None:
        self.raw["id"] = cid

    def pin_id(self) -> None:
        """Write the id into the dict when it came from the position (positions shift on delete)."""
        if not self.has_own_id:
            self.raw["id"] = int(self.id) if self.id.isdigit() else self.id

    def set_subscription(self, title: str | None, email: str | None) -> bool:
        """Keep what getUsageLimits said about the account; returns whether anything changed."""
        changed = False
        for key, value in (("subscriptionTitle", title), ("email", email)):
            if value and self.raw.get(key) != value:
                self.raw[key] = value
                changed = True
        return changed

    def set_profile_arn(self, arn: str) -> None:
        self.raw["profileArn"] = arn

    def set_field(self, key: str, value: Any) -> None:
        """An optional field a person supplies (region, proxyUrl, machineId…), as given."""
        self.raw[key] = value

    def token_fields(self) -> dict[str, Any]:
        """The tokens as shared with other processes (TOKEN_FIELDS)."""
        return {k: self.raw.get(k) for k in TOKEN_FIELDS}

    def apply_tokens(self, tokens: dict[str, Any]) -> None:
        """Take tokens another process stored (their TOKEN_FIELDS). The old spellings go, so the
        file holds one copy; the refresh token is replaced only when one was given."""
        for k in TOKEN_KEYS:
            if k not in ("refreshToken", "refresh_token") or tokens.get("refreshToken"):
                self.raw.pop(k, None)
        self.raw["accessToken"] = tokens["accessToken"]
        if tokens.get("refreshToken"):
            self.raw["refreshToken"] = tokens["refreshToken"]
        if tokens.get("expiresAt"):
            self.raw["expiresAt"] = tokens["expiresAt"]
        if tokens.get("profileArn") and not self.profile_arn:
            self.raw["profileArn"] = tokens["profileArn"]

    def replace(self, entry: dict[str, Any], index: int) -> None:
        """Take the file's (merged) entry in place: leases holding this object see the change."""
        self.raw, self.index = dict(entry), index
