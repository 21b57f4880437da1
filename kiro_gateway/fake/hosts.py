"""The fake Kiro's two API hosts, their profile-ARN rules, and profile listing.

One fake server stands for several Kiro hosts, told apart by path prefix (docs/kiro-protocol.md,
"Hosts and profile ARNs"):

    /...                  the legacy host   q.{region}.amazonaws.com
    /runtime/...          the branded host  runtime.{region}.kiro.dev
    /profiles/{region}/   the profile host  codewhisperer.{region}.amazonaws.com / management.{region}.kiro.dev

Each API host takes an operation in path form (`POST /generateAssistantResponse`) or in target
form (`POST /` with `x-amz-target: <Service>.<Operation>`), the service name being the host's own.
"""

from __future__ import annotations

import orjson

__all__ = [
    "RUNTIME_PREFIX", "PROFILES_PREFIX", "PROFILE_REGIONS", "resolve", "arn_verdict", "list_profiles",
    "ARN_REQUIRED", "PROFILE_DENIED", "BUILDER_ID_UNSUPPORTED",
]

RUNTIME_PREFIX = "/runtime"
PROFILES_PREFIX = "/profiles/"
PROFILE_REGIONS = ("us-east-1", "eu-central-1")  # where Q profiles live, whatever the login region

_OPERATIONS = {
    "GenerateAssistantResponse": "/generateAssistantResponse",
    "GetUsageLimits": "/getUsageLimits",
    "ListAvailableModels": "/ListAvailableModels",
}
_SERVICES = {
    "legacy": ("AmazonCodeWhispererStreamingService", "AmazonCodeWhispererService"),
    "runtime": ("KiroRuntimeService",),
}
_PROFILE_TARGETS = ("AmazonCodeWhispererService.ListAvailableProfiles", "KiroManagementService.ListProfiles")

ARN_REQUIRED = orjson.dumps(
    {"message": "profileArn is required for this request.", "__type": "com.amazon.aws.codewhisperer#ValidationException"}
)
PROFILE_DENIED = orjson.dumps(
    {"message": "User is not authorized to make this call for the given profile.",
     "__type": "com.amazon.aws.codewhisperer#AccessDeniedException"}
)
BUILDER_ID_UNSUPPORTED = orjson.dumps(
    {"message": "AWS Builder ID is not supported for this operation.",
     "__type": "com.amazon.aws.codewhisperer#AccessDeniedException"}
)
UNKNOWN_TARGET = orjson.dumps({"message": "Unknown operation.", "__type": "UnknownOperationException"})


def resolve(method: str, path: str, target: str | None) -> tuple[str, str] | tuple[None, bytes]:
    """(host, operation path) for an API request, or (None, error body) for an unknown target.

    Paths that belong to neither API host (control API, token refresh, profiles) come back as
    ("legacy", path) unchanged; the caller's route table decides.
    """
    host = "legacy"
    if path == RUNTIME_PREFIX or path.startswith(RUNTIME_PREFIX + "/"):
        host, path = "runtime", path[len(RUNTIME_PREFIX):] or "/"
    if method == "POST" and path == "/" and target:
        service, _, operation = target.partition(".")
        if service not in _SERVICES[host] or operation not in _OPERATIONS:
            return None, UNKNOWN_TARGET
        path = _OPERATIONS[operation]
    return host, path


def arn_verdict(host: str, acct: dict | None, arn: str | None) -> tuple[int, bytes] | None:
    """None if `host` takes this ARN (or its absence) from this account, else (status, body).

    The branded host wants an ARN on every call; the legacy host serves an account without one
    (Builder ID has no profile at all). An ARN that is not the account's own is refused; so is any
    ARN from a Builder ID account, which can only be made up.
    """
    if acct is None:  # open mode: any bearer, any ARN
        return (400, ARN_REQUIRED) if host == "runtime" and not arn else None
    own = acct["profile_arn"]
    if arn:
        return None if arn == own else (403, PROFILE_DENIED)
    if host == "runtime":
        return 400, ARN_REQUIRED
    return None


def list_profiles(acct: dict | None, region: str, target: str | None) -> tuple[int, bytes]:
    """ListAvailableProfiles / ListProfiles in `region`: the account's profile if it lives there."""
    if target not in _PROFILE_TARGETS:
        return 400, UNKNOWN_TARGET
    if acct is not None and acct.get("builder_id"):
        return 403, BUILDER_ID_UNSUPPORTED
    if region not in PROFILE_REGIONS:
        return 404, orjson.dumps({"message": f"No Q Developer endpoint in {region}.", "__type": "UnknownEndpoint"})
    profiles = []
    if acct is None:
        profiles.append({"arn": f"arn:aws:codewhisperer:{region}:699475941385:profile/OPENMODE",
                         "profileName": "open", "region": region})
    elif acct["profile_arn"] and acct["profile_region"] == region:
        profiles.append({"arn": acct["profile_arn"], "profileName": f"{acct['id']}-profile", "region": region})
    return 200, orjson.dumps({"profiles": profiles})
