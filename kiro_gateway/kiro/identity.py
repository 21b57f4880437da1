"""How the gateway presents itself to Kiro: machine id and headers (fact sheet §1.2, §5, §6)."""

from __future__ import annotations

import hashlib
import re
import uuid

from ..util.ids import random_uuid

__all__ = ["machine_id_for", "chat_headers", "cli_headers", "CLI_TARGETS", "refresh_headers", "idc_refresh_headers", "usage_headers"]

SDK = "1.0.34"
NODE = "22.22.0"
_OS_CHOICES = ("darwin#24.6.0", "win32#10.0.22631")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def machine_id_for(configured: str | None, refresh_token: str | None = None, api_key: str | None = None,
                   fallback_seed: str | None = None) -> str:
    """64 lowercase hex chars; kiro.rs's derivation order (§6), stable for a credential."""
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
    for key in ("x-amz-user-agent", "user-agent"):
        headers[key] = headers[key].replace(" KiroIDE-", " KiroCLI-")
    headers.pop("x-amzn-kiro-agent-mode", None)
    return headers


def chat_headers(token: str, kiro_version: str, machine_id: str, host: str, api_key_auth: bool = False) -> dict[str, str]:
    os_name = os_for(machine_id)
    h = {
        "content-type": "application/json",
        "x-amzn-codewhisperer-optout": "true",
        "x-amzn-kiro-agent-mode": "vibe",
        "x-amz-user-agent": f"aws-sdk-js/{SDK} KiroIDE-{kiro_version}-{machine_id}",
        "user-agent": (f"aws-sdk-js/{SDK} ua/2.1 os/{os_name} lang/js md/nodejs#{NODE} "
                       f"api/codewhispererstreaming#{SDK} m/E KiroIDE-{kiro_version}-{machine_id}"),
        "host": host,
        "amz-sdk-invocation-id": random_uuid(),
        "amz-sdk-request": "attempt=1; max=3",
        "authorization": f"Bearer {token}",
    }
    if api_key_auth:
        h["tokentype"] = "API_KEY"
    return h


def usage_headers(token: str, kiro_version: str, machine_id: str, host: str, api_key_auth: bool = False) -> dict[str, str]:
    os_name = os_for(machine_id)
    h = {
        "x-amz-user-agent": f"aws-sdk-js/1.0.0 KiroIDE-{kiro_version}-{machine_id}",
        "user-agent": (f"aws-sdk-js/1.0.0 ua/2.1 os/{os_name} lang/js md/nodejs#{NODE} "
                       f"api/codewhispererruntime#1.0.0 m/N,E KiroIDE-{kiro_version}-{machine_id}"),
        "host": host,
        "amz-sdk-invocation-id": random_uuid(),
        "amz-sdk-request": "attempt=1; max=1",
        "authorization": f"Bearer {token}",
    }
    if api_key_auth:
        h["tokentype"] = "API_KEY"
    return h


def refresh_headers(kiro_version: str, machine_id: str, host: str) -> dict[str, str]:
    return {
        "accept": "application/json, text/plain, */*",
        "content-type": "application/json",
        "user-agent": f"KiroIDE-{kiro_version}-{machine_id}",
        "host": host,
    }


def idc_refresh_headers(machine_id: str, host: str) -> dict[str, str]:
    os_name = os_for(machine_id)
    return {
        "content-type": "application/json",
        "x-amz-user-agent": "aws-sdk-js/3.980.0 KiroIDE",
        "user-agent": (f"aws-sdk-js/3.980.0 ua/2.1 os/{os_name} lang/js md/nodejs#{NODE} "
                       f"api/sso-oidc#3.980.0 m/E KiroIDE"),
        "host": host,
        "amz-sdk-invocation-id": random_uuid(),
        "amz-sdk-request": "attempt=1; max=4",
    }

