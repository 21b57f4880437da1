"""What a request to Kiro needs besides the account: its machine id, host and proxy.

One place builds it, so a chat request, a usage query and a token refresh of the same credential
present the same machine id and go out through the same proxy.
"""

from __future__ import annotations

from dataclasses import dataclass
from ..core.trace import Trace

from ..config import Settings
from ..core.conversation import GatewayError
from ..kiro.client import Proxy, ProxyError
from ..kiro.identity import machine_id_for
from .credential import Credential

__all__ = ["Lease", "Leases", "RequestNotes"]


@dataclass(slots=True)
class Lease:
    credential: Credential
    token: str
    machine_id: str
    api_base: str
    proxy: Proxy | None
    api_key_auth: bool
    slot: str | None = None  # the pacing slot it holds, given back when it ends


class Leases:
    """Builds leases from the settings (read at each call: a config reload applies at once)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def machine_id(self, cred: Credential) -> str:
        return machine_id_for(cred.machine_id or self.settings.machine_id, cred.refresh_token, cred.api_key,
                              cred.id)

    def proxy_for(self, cred: Credential) -> Proxy | None:
        """The credential's own proxy (`direct` = none), else the global one. Raises GatewayError
        when the configured proxy cannot be used."""
        s = self.settings
        url, user, pw = cred.proxy_url, cred.proxy_username, cred.proxy_password
        if url is None:
            url, user, pw = s.proxy_url, s.proxy_username, s.proxy_password
        if not url or url.strip().lower() == "direct":
            return None
        try:
            return Proxy.parse(url, user or None, pw or None)
        except ProxyError as e:
            raise GatewayError("internal", f"Credential #{cred.id}: {e}.") from None

    def make(self, cred: Credential, token: str, slot: str | None = None) -> Lease:
        s = self.settings
        return Lease(cred, token, self.machine_id(cred), s.url("api_base_url", cred.region(s.region)),
                     self.proxy_for(cred), cred.auth_method == "api_key", slot)


RequestNotes = Trace  # the request log's record, as the pool sees it (core/trace.py)
