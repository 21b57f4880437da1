"""Request and response bodies of the admin API (camelCase, like kiro.rs's admin API; the full list is /api/admin/openapi.json, built in admin/openapi.py).

Requests are validated with these models; responses are built as dicts of the same shape and the
models document them in /api/admin/openapi.json.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

__all__ = [
    "ErrorDetail", "ErrorBody", "Success", "CredentialView", "CredentialList", "AddCredential", "AddResult",
    "SetDisabled", "SetPriority", "RefreshResult", "Balance", "LoadBalancing", "ImportRequest", "ImportResult",
    "ImportedItem", "SkippedItem", "ImportErrorItem", "LOAD_BALANCING_MODES", "LogEntry", "LogPage", "Stats",
    "KeyCreate", "KeyUpdate", "KeyView", "KeyList", "KeyCreated",
]

LOAD_BALANCING_MODES = ("priority", "balanced", "round_robin", "random")


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ErrorDetail(BaseModel):
    type: str = Field(description="authentication_error, invalid_request, not_found, conflict, api_error "
                                  "or internal_error")
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


class Success(BaseModel):
    success: bool = True
    message: str


class CredentialView(BaseModel):
    """One credential, secrets left out: no token, client secret, API key or proxy password."""

    id: int | str
    name: str | None = Field(None, description="the human label, if one was set")
    priority: int
    disabled: bool
    disabledReason: str | None = Field(None, description="Manual, InvalidRefreshToken, TooManyRefreshFailures…")
    status: Literal["active", "cooldown", "exhausted", "unhealthy", "disabled"]
    reason: str | None = Field(None, description="why it is unhealthy, if it is")
    authMethod: Literal["social", "idc", "api_key"]
    email: str | None = None
    subscriptionTitle: str | None = None
    region: str
    expiresAt: str | None = Field(None, description="access token expiry, RFC 3339")
    successCount: int
    failureCount: int
    refreshFailureCount: int
    inFlight: int
    lastUsedAt: str | None = None
    cooldownUntil: str | None = None
    exhaustedUntil: str | None = None
    unhealthyUntil: str | None = None
    hasProfileArn: bool
    hasProxy: bool
    proxyUrl: str | None = Field(None, description="scheme://host:port of its own proxy, without credentials")
    refreshTokenHash: str | None = Field(None, description="sha256 of the refresh token (hex), to tell them apart")
    isCurrent: bool


class CredentialList(BaseModel):
    total: int
    available: int = Field(description="credentials in state active")
    currentId: int | str | None = None
    loadBalancing: Literal["priority", "balanced", "round_robin", "random"]
    credentials: list[CredentialView]


class AddCredential(_In):
    refreshToken: str | None = Field(None, description="at least 100 characters, not truncated with '...'")
    authMethod: Literal["social", "idc", "builder-id", "iam", "api_key"] = "social"
    clientId: str | None = None
    clientSecret: str | None = None
    kiroApiKey: str | None = Field(None, description="for authMethod api_key (no refresh token)")
    priority: StrictInt = Field(0, ge=0)
    region: str | None = None
    authRegion: str | None = None
    apiRegion: str | None = None
    profileArn: str | None = None
    machineId: str | None = None
    email: str | None = None
    proxyUrl: str | None = Field(None, description="http://, https:// or socks5:// URL, or 'direct' for none")
    proxyUsername: str | None = None
    proxyPassword: str | None = None
    name: str | None = Field(None, max_length=80, description="a human label for the console")


class AddResult(Success):
    credentialId: int | str
    email: str | None = None
    subscriptionTitle: str | None = None
    usageError: str | None = Field(None, description="set when the usage limits could not be fetched")


class SetDisabled(_In):
    disabled: StrictBool


class SetPriority(_In):
    priority: StrictInt = Field(ge=0, le=1_000_000)


class RefreshResult(Success):
    expiresAt: str | None = None


class Balance(BaseModel):
    id: int | str
    subscriptionTitle: str | None = None
    subscriptionType: str | None = None
    email: str | None = None
    usageLimit: float = Field(description="base + active free trial + active bonuses")
    currentUsage: float
    remaining: float
    usagePercentage: float
    nextResetAt: str | None = None
    daysUntilReset: int | None = None
    freeTrial: dict | None = None
    bonusLimit: float
    bonusUsage: float
    overageStatus: str | None = None
    fetchedAt: str
    cached: bool = Field(description="answered from the cache (usageCacheSeconds)")


class LoadBalancing(_In):
    mode: Literal["priority", "balanced", "round_robin", "random"]


class ImportRequest(_In):
    fromIde: str | None = Field(None, description="Kiro IDE SSO cache directory or kiro-auth-token.json, inside "
                                                  "~/.aws/sso/cache (the default) — no other server path is read")
    fromCli: str | None = Field(None, description="kiro-cli data.sqlite3, inside kiro-cli's data directories "
                                                  "(default: the usual places) — no other server path is read")
    ideToken: dict[str, Any] | None = Field(None, description="The content of a kiro-auth-token.json (an upload)")
    ideRegistration: dict[str, Any] | None = Field(None, description="For an IdC ideToken: the content of its "
                                                                     "client registration file")
    ide: StrictBool = True
    cli: StrictBool = True


class ImportedItem(BaseModel):
    id: int | str
    source: str
    authMethod: str


class SkippedItem(BaseModel):
    source: str
    reason: str


class ImportErrorItem(BaseModel):
    source: str
    message: str


class ImportResult(Success):
    added: list[ImportedItem]
    skipped: list[SkippedItem]
    errors: list[ImportErrorItem]


# -- request log, stats ------------------------------------------------------------------------------


class LogEntry(BaseModel):
    """One client request. Bodies appear only with logBodies (redacted: no secrets, no images)."""

    id: str
    time: float = Field(description="epoch seconds")
    at: str = Field(description="RFC 3339")
    dialect: str
    userAgent: str | None = None
    key: str | None = Field(None, description="client key name: 'default' is apiKey, 'local' loopback without a key")
    model: str | None = Field(None, description="the model the client asked for")
    kiroModel: str | None = None
    credential: str | None = None
    status: int
    retries: int
    trimmedMessages: int = 0  # history messages left out to fit the window
    kiroRule: str | None = None  # the Kiro request rule broken, when Kiro said "Improperly formed" (repaired and retried when the status is 200)
    ttfbMs: float | None = None
    totalMs: float
    tokensIn: int
    tokensOut: int
    credits: float | None = Field(None, description="Kiro credits (meteringEvent)")
    stream: bool
    error: str | None = Field(None, description="error kind: rate_limit, upstream, interrupted…")
    errorMessage: str | None = None
    isError: bool
    requestBody: Any = None
    responseBody: Any = None


class LogPage(BaseModel):
    total: int = Field(description="entries matching the filter")
    offset: int
    limit: int
    items: list[LogEntry]


class LatencyMs(BaseModel):
    avg: float | None = None
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None


class Figures(BaseModel):
    requests: int
    errors: int
    errorRate: float
    retries: int
    tokensIn: int
    tokensOut: int
    credits: float
    latencyMs: LatencyMs
    ttfbMs: dict


class NowFigures(Figures):
    minutes: int
    requestsPerMinute: float


class Burn(BaseModel):
    creditsPerHour: float
    remaining: float | None = Field(None, description="credits left this period, when usage limits are known")
    runsOutAt: str | None = Field(None, description="when the quota runs out at this rate")
    resetsAt: str | None = None
    lastsUntilReset: bool | None = None


class CredentialStats(Figures):
    credential: str
    status: str
    burn: Burn


class ModelStats(Figures):
    model: str = Field(description="Kiro model id")


class DialectStats(Figures):
    dialect: str


class TrendPoint(BaseModel):
    hour: str
    requests: int
    errors: int
    tokensIn: int
    tokensOut: int
    credits: float
    p50Ms: float | None = None
    p90Ms: float | None = None


class Stats(BaseModel):
    window: dict
    totals: Figures
    now: NowFigures
    byCredential: list[CredentialStats]
    byModel: list[ModelStats]
    byDialect: list[DialectStats]
    trend: list[TrendPoint]


# -- client API keys ----------------------------------------------------------------------------------

_KEY_NAME = r"^[A-Za-z0-9][A-Za-z0-9 _.@:-]{0,63}$"


class KeyCreate(_In):
    name: str = Field(pattern=_KEY_NAME, description="unique; letters, digits, space, _ . @ : -")
    requestsPerMinute: StrictInt | None = Field(None, ge=0, le=1_000_000, description="0 or null: no limit")
    tokensPerDay: StrictInt | None = Field(None, ge=0, le=10**12, description="tokens in + out per UTC day")
    credential: str | None = Field(None, max_length=64, description="pin the key to this credential id")


class KeyUpdate(_In):
    """Only the fields sent change; null or 0 removes a limit."""

    name: str | None = Field(None, pattern=_KEY_NAME)
    requestsPerMinute: StrictInt | None = Field(None, ge=0, le=1_000_000)
    tokensPerDay: StrictInt | None = Field(None, ge=0, le=10**12)
    credential: str | None = Field(None, max_length=64, description="null: not pinned")


class KeyUsage(BaseModel):
    requests: int
    tokensIn: int
    tokensOut: int
    credits: float
    errors: int


class KeyView(BaseModel):
    id: str
    name: str
    hint: str = Field(description="the key's first and last characters, to tell keys apart")
    createdAt: str
    requestsPerMinute: int | None = None
    tokensPerDay: int | None = None
    credential: str | None = Field(None, description="the credential the key is pinned to, if any")
    usageToday: KeyUsage
    usageLast7Days: KeyUsage


class KeyList(BaseModel):
    keys: list[KeyView]


class KeyCreated(KeyView):
    key: str = Field(description="the secret: shown this once, stored only as a hash")
