"""How the gateway presents itself to Kiro: machine id and headers (docs/kiro-protocol.md, “Identity headers” / “Machine id”)."""

from __future__ import annotations

import hashlib
import re
import uuid

from ..util.ids import random_uuid

__all__ = ["machine_id_for", "chat_headers", "cli_headers", "CLI_TARGETS", "refresh_headers", "idc_refresh_headers",
           "usage_headers", "mcp_headers"]

SDK = "1.0.34"
NODE = "22.22.0"
_OS_CHOICES = ("darwin#24.6.0", "win32#10.0.22631")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def machine_id_for(configured: str | None, refresh_token: str | None = None, api_key: str | None = None,
                   fallback_seed: str | None = None) -> str:
    """64 lowercase hex chars; kiro.rs's derivation order (docs/kiro-protocol.md, “Machine id”), stable for a credential."""
    if configured:
        c = configured.strip().lower()
        if _HEX64.match(c):
            return c
        try:
            hexed = uuid.UUID(c).hex
            return hexed + hexed
        except ValueError:
            return hashlib.sha256(c.encode()).hexdigest()
    if api_key:
        return hashlib.sha256(("KiroAPIKey/" + api_key).encode()).hexdigest()
    if refresh_token:
        return hashlib.sha256(("KotlinNativeAPI/" + refresh_token).encode()).hexdigest()
    return hashlib.sha256(("KiroFallback/" + (fallback_seed or str(uuid.uuid4()))).encode()).hexdigest()


def os_for(machine_id: str) -> str:
    """A stable OS string per machine (a real IDE does not change OS between requests)."""
    return _OS_CHOICES[int(machine_id[:2], 16) % len(_OS_CHOICES)]


# kiro-cli's operation names, in the target form (docs/kiro-protocol.md, "Hosts and profile ARNs").
CLI_TARGETS = {"legacy": "AmazonCodeWhispererStreamingService.GenerateAssistantResponse",
               "runtime": "KiroRuntimeService.GenerateAssistantResponse"}


def cli_headers(headers: dict[str, str], host_kind: str) -> dict[str, str]:
    """The IDE's chat headers turned into kiro-cli's: JSON 1.0 with the operation as a target."""
    headers["content-type"] = "application/x-amz-json-1.0"
    headers["x-amz-target"] = CLI_TARGETS[host_kind]
    headers.pop("x-amzn-kiro-agent-mode", None)
    return _as_cli(headers)


def _as_cli(headers: dict[str, str]) -> dict[str, str]:
    """kiro-cli's user agents in place of the IDE's."""
    for key in ("x-amz-user-agent", "user-agent"):
        headers[key] = headers[key].replace(" KiroIDE-", " KiroCLI-")
    return headers


def _sdk_headers(lead: dict[str, str], sdk: str, api: str, metrics: str, app: str, machine_id: str, host: str,
                 attempts: int, token: str | None = None, api_key_auth: bool = False) -> dict[str, str]:
    """The headers an AWS JS SDK client of the IDE sends, in its order: `lead` first, then the
    SDK's agents (`sdk` version, `api` service, `metrics` flags, `app` the IDE's own tag), the
    host and retry bookkeeping, and with a `token` its bearer (and how an API key is marked)."""
    h = {
        **lead,
        "x-amz-user-agent": f"aws-sdk-js/{sdk} {app}",
        "user-agent": (f"aws-sdk-js/{sdk} ua/2.1 os/{os_for(machine_id)} lang/js md/nodejs#{NODE} "
                       f"api/{api}#{sdk} m/{metrics} {app}"),
        "host": host,
        "amz-sdk-invocation-id": random_uuid(),
        "amz-sdk-request": f"attempt=1; max={attempts}",
    }
    if token is not None:
        h["authorization"] = f"Bearer {token}"
        if api_key_auth:
            h["tokentype"] = "API_KEY"
    return h


def chat_headers(token: str, kiro_version: str, machine_id: str, host: str, api_key_auth: bool = False) -> dict[str, str]:
    lead = {"content-type": "application/json", "x-amzn-codewhisperer-optout": "true",
            "x-amzn-kiro-agent-mode": "vibe"}
    return _sdk_headers(lead, SDK, "codewhispererstreaming", "E", f"KiroIDE-{kiro_version}-{machine_id}",
                        machine_id, host, 3, token, api_key_auth)


def mcp_headers(token: str, kiro_version: str, machine_id: str, host: str, api_key_auth: bool = False,
                profile_arn: str | None = None, cli: bool = False) -> dict[str, str]:
    """An MCP call's headers: chat's without the opt-out and the agent mode, and the account's
    profile ARN as `x-amzn-kiro-profile-arn` (docs/kiro-protocol.md, “Server tools, MCP and web search”)."""
    h = chat_headers(token, kiro_version, machine_id, host, api_key_auth)
    del h["x-amzn-codewhisperer-optout"], h["x-amzn-kiro-agent-mode"]
    if profile_arn:
        h["x-amzn-kiro-profile-arn"] = profile_arn
    return _as_cli(h) if cli else h


def usage_headers(token: str, kiro_version: str, machine_id: str, host: str, api_key_auth: bool = False) -> dict[str, str]:
    return _sdk_headers({}, "1.0.0", "codewhispererruntime", "N,E", f"KiroIDE-{kiro_version}-{machine_id}",
                        machine_id, host, 1, token, api_key_auth)


def refresh_headers(kiro_version: str, machine_id: str, host: str) -> dict[str, str]:
    return {
        "accept": "application/json, text/plain, */*",
        "content-type": "application/json",
        "user-agent": f"KiroIDE-{kiro_version}-{machine_id}",
        "host": host,
    }


def idc_refresh_headers(machine_id: str, host: str) -> dict[str, str]:
    return _sdk_headers({"content-type": "application/json"}, "3.980.0", "sso-oidc", "E", "KiroIDE",
                        machine_id, host, 4)
