"""Logging in to the fake Kiro: AWS SSO OIDC's device-code flow and the Kiro auth service's social
PKCE flow, with control calls that play the person at the browser (approve, deny, let it expire).

What the real services do is written down in docs/login.md. The fake is as strict as that:
- RegisterClient wants clientName and clientType "public"; the client secret it returns expires.
- CreateToken (device grant) answers `authorization_pending` until someone approves, `slow_down`
  when polled faster than the interval (which then grows by 5 s, as RFC 8628 says), `expired_token`
  after expiry, `access_denied` after a denial, `invalid_client` for a wrong client id or secret and
  `invalid_grant` for an unknown or already used device code — each in the OIDC error shape
  (`{"error", "error_description"}`) with its status and `x-amzn-ErrorType` header.
- The social authorize page wants idp Google or Github, a loopback (or kiro://) redirect_uri,
  an S256 code challenge and a state; the code it hands out is good once, for a few minutes, and
  only with the matching code_verifier and the very same redirect_uri (a different one answers 500
  and burns the code, as the real service is reported to).

Every login that succeeds registers a new account in the AccountStore (the IdC one with the
registered client's id and secret), so the tokens it hands out work with the fake's refresh and
chat endpoints. Not thread-safe on purpose, like AccountStore: only the server's loop touches it.
"""

from __future__ import annotations

import base64
import hashlib
import html
import hmac
import secrets
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit

import orjson

from .accounts import FIELDS, AccountStore

__all__ = ["LoginService", "Answer", "DEVICE_GRANT", "REFRESH_GRANT"]

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
REFRESH_GRANT = "refresh_token"
SECRET_LIFETIME = 90 * 86400  # RegisterClient's secrets last about 90 days
DEVICE_LIFETIME = 600
DEVICE_INTERVAL = 1
SLOW_DOWN_STEP = 5
SOCIAL_LIFETIME = 600
CODE_LIFETIME = 300
IDPS = ("Google", "Github")
KIRO_SCHEME_REDIRECT = "kiro://kiro.kiroAgent/authenticate-success"
_USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"  # no vowels or look-alikes, like AWS's codes

# (status, x-amzn-ErrorType) of each OIDC error code
_OIDC_ERRORS = {
    "invalid_request": (400, "InvalidRequestException"),
    "invalid_client": (401, "InvalidClientException"),
    "invalid_grant": (400, "InvalidGrantException"),
    "unsupported_grant_type": (400, "UnsupportedGrantTypeException"),
    "unauthorized_client": (400, "UnauthorizedClientException"),
    "authorization_pending": (400, "AuthorizationPendingException"),
    "slow_down": (400, "SlowDownException"),
    "expired_token": (400, "ExpiredTokenException"),
    "access_denied": (400, "AccessDeniedException"),
    "invalid_client_metadata": (400, "InvalidClientMetadataException"),
}


@dataclass(slots=True)
class Answer:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def _ok(body: dict) -> Answer:
    return Answer(200, orjson.dumps(body))


def oidc_error(code: str, description: str) -> Answer:
    status, kind = _OIDC_ERRORS[code]
    return Answer(status, orjson.dumps({"error": code, "error_description": description}),
                  headers={"x-amzn-ErrorType": kind})


def _auth_error(status: int, message: str) -> Answer:
    return Answer(status, orjson.dumps({"message": message}))


def _page(status: int, title: str, body: str) -> Answer:
    doc = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
           f"<body><h1>{html.escape(title)}</h1>{body}</body></html>")
    return Answer(status, doc.encode(), "text/html")


def _redirect(url: str) -> Answer:
    return Answer(302, b"", "text/plain", {"Location": url})


def _str(body: dict, key: str) -> str | None:
    value = body.get(key)
    return value if isinstance(value, str) and value else None


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _with_query(url: str, params: dict[str, str]) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(params)


def loopback_redirect(uri: str) -> bool:
    """Kiro's social login sends the browser back to this machine only: a loopback http URL with a
    port, or the IDE's kiro:// handler."""
    if uri == KIRO_SCHEME_REDIRECT:
        return True
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return False
    return parts.scheme == "http" and parts.hostname in ("localhost", "127.0.0.1") and port is not None


class LoginService:
    def __init__(self, accounts: AccountStore) -> None:
        self.accounts = accounts
        self.clear()

    def clear(self) -> None:
        """Forget every client and login in progress (the accounts stay)."""
        self.clients: dict[str, dict] = {}
        self.devices: dict[str, dict] = {}  # device code → its authorization
        self.social: dict[str, dict] = {}  # authorization id → a social sign-in in progress
        self.codes: dict[str, dict] = {}  # authorization code → what it was issued for

    # -- AWS SSO OIDC -----------------------------------------------------------------------------

    def register_client(self, body: object) -> Answer:
        """POST /client/register (RegisterClient)."""
        if not isinstance(body, dict):
            return oidc_error("invalid_request", "Request body must be a JSON object")
        if not _str(body, "clientName"):
            return oidc_error("invalid_request", "clientName is required")
        if body.get("clientType") != "public":
            return oidc_error("invalid_client_metadata", "clientType must be public")
        for key in ("scopes", "grantTypes", "redirectUris"):
            value = body.get(key)
            if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                return oidc_error("invalid_request", f"{key} must be a list of strings")
        now = int(time.time())
        client_id = secrets.token_urlsafe(16)
        secret = "eyJraWQiOiJrZXktZmFrZSIsImFsZyI6IkhTMzg0In0." + secrets.token_urlsafe(96)
        self.clients[client_id] = {
            "secret": secret, "expires_at": now + SECRET_LIFETIME, "name": body["clientName"],
            "grant_types": body.get("grantTypes"), "scopes": body.get("scopes") or [],
        }
        return _ok({"clientId": client_id, "clientSecret": secret, "clientIdIssuedAt": now,
                    "clientSecretExpiresAt": now + SECRET_LIFETIME})

    def _client(self, body: dict) -> str | Answer:
        """The registered client the body names (its id), or the OIDC error answer."""
        client_id, secret = _str(body, "clientId"), _str(body, "clientSecret")
        if not client_id or not secret:
            return oidc_error("invalid_request", "clientId and clientSecret are required")
        client = self.clients.get(client_id)
        if client is None or not hmac.compare_digest(client["secret"], secret):
            return oidc_error("invalid_client", "Invalid client credentials")
        if client["expires_at"] <= time.time():
            return oidc_error("invalid_client", "Client secret has expired")
        return client_id

    def start_device_authorization(self, body: object, base_url: str) -> Answer:
        """POST /device_authorization (StartDeviceAuthorization)."""
        if not isinstance(body, dict):
            return oidc_error("invalid_request", "Request body must be a JSON object")
        client_id = self._client(body)
        if isinstance(client_id, Answer):
            return client_id
        start_url = _str(body, "startUrl")
        if not start_url or not start_url.startswith("https://"):
            return oidc_error("invalid_request", "startUrl must be an https URL")
        grants = self.clients[client_id]["grant_types"]
        if grants is not None and DEVICE_GRANT not in grants:
            return oidc_error("unauthorized_client", "Client is not registered for the device code grant")
        device_code = secrets.token_urlsafe(48)
        user_code = "-".join("".join(secrets.choice(_USER_CODE_ALPHABET) for _ in range(4)) for _ in range(2))
        self.devices[device_code] = {
            "client_id": client_id, "user_code": user_code, "start_url": start_url,
            "expires_at": time.time() + DEVICE_LIFETIME, "interval": DEVICE_INTERVAL, "last_poll": 0.0,
            "status": "pending", "account": {}, "polls": 0,
        }
        uri = base_url + "/device"
        return _ok({"deviceCode": device_code, "userCode": user_code, "verificationUri": uri,
                    "verificationUriComplete": f"{uri}?user_code={user_code}", "expiresIn": DEVICE_LIFETIME,
                    "interval": DEVICE_INTERVAL})

    def create_token(self, body: dict) -> Answer:
        """POST /token with the device-code grant (CreateToken)."""
        client_id = self._client(body)
        if isinstance(client_id, Answer):
            return client_id
        code = _str(body, "deviceCode")
        if not code:
            return oidc_error("invalid_request", "deviceCode is required")
        dev = self.devices.get(code)
        if dev is None or dev["client_id"] != client_id or dev["status"] == "used":
            return oidc_error("invalid_grant", "Invalid device code provided")
        now = time.time()
        dev["polls"] += 1
        if dev["expires_at"] <= now:
            return oidc_error("expired_token", "Device code has expired")
        if dev["status"] == "denied":
            return oidc_error("access_denied", "Authorization was denied")
        early = now - dev["last_poll"] < dev["interval"]
        dev["last_poll"] = now
        if early:
            dev["interval"] += SLOW_DOWN_STEP
            return oidc_error("slow_down", "Client is polling too quickly")
        if dev["status"] == "pending":
            return oidc_error("authorization_pending", "Authorization is still pending")
        dev["status"] = "used"
        client = self.clients[client_id]
        acct = self._account(dev["account"], auth="idc", client_id=client_id, client_secret=client["secret"])
        return _ok({"accessToken": acct["access_token"], "tokenType": "Bearer",
                    "expiresIn": int(max(0, acct["expires_at"] - now)), "refreshToken": acct["refresh_token"]})

    def _account(self, fields: dict, **fixed) -> dict:
        """The account a login signs in to: an existing one (`id` of a known account) or a new one."""
        known = self.accounts.find(fields.get("id")) if fields.get("id") else None
        if known is not None:
            return known
        return self.accounts.add(**{**fields, **fixed})

    # -- the verification page (what the person sees in the browser) --------------------------------

    def device_page(self, query: dict) -> Answer:
        user_code = query.get("user_code", "")
        dev = self._by_user_code(user_code)
        if dev is None:
            return _page(404, "Unknown code", "<p>Check the code and try again.</p>")
        code = html.escape(user_code)
        return _page(200, "Authorize request", f"<p>Code <b id='user-code'>{code}</b></p>"
                     f"<form method='post' action='/device'><input type='hidden' name='user_code' value='{code}'>"
                     "<button name='decision' value='approve' id='approve'>Allow access</button>"
                     "<button name='decision' value='deny' id='deny'>Deny</button></form>")

    def device_decide(self, form: dict) -> Answer:
        dev = self._by_user_code(form.get("user_code", ""))
        if dev is None or dev["status"] != "pending" or dev["expires_at"] <= time.time():
            return _page(400, "This request is no longer valid", "")
        dev["status"] = "approved" if form.get("decision") == "approve" else "denied"
        return _page(200, "Request approved" if dev["status"] == "approved" else "Request denied",
                     "<p>You can close this window.</p>")

    def _by_user_code(self, user_code: str) -> dict | None:
        wanted = user_code.strip().upper()
        return next((d for d in self.devices.values() if d["user_code"] == wanted), None)

    # -- the Kiro auth service's social sign-in ---------------------------------------------------

    def social_authorize(self, query: dict) -> Answer:
        """GET /login?idp=…&redirect_uri=…&code_challenge=…&code_challenge_method=S256&state=…"""
        idp, redirect, challenge = query.get("idp"), query.get("redirect_uri"), query.get("code_challenge")
        state = query.get("state")
        if idp not in IDPS:
            return _auth_error(400, f"idp must be one of {', '.join(IDPS)}")
        if not redirect or not loopback_redirect(redirect):
            return _auth_error(400, "Invalid redirect_uri")
        if query.get("code_challenge_method") != "S256" or not challenge or len(challenge) < 43:
            return _auth_error(400, "A code_challenge with code_challenge_method S256 is required")
        if not state:
            return _auth_error(400, "state is required")
        authz = secrets.token_urlsafe(12)
        self.social[authz] = {"idp": idp, "redirect_uri": redirect, "challenge": challenge, "state": state,
                              "expires_at": time.time() + SOCIAL_LIFETIME, "status": "pending"}
        return _page(200, f"Sign in with {idp}",
                     f"<form method='post' action='/login'><input type='hidden' name='authz' value='{authz}'>"
                     "<button name='decision' value='approve' id='approve'>Continue</button>"
                     "<button name='decision' value='deny' id='deny'>Cancel</button></form>")

    def social_decide(self, form: dict) -> Answer:
        authz = self.social.get(form.get("authz", ""))
        if authz is None:
            return _page(400, "This sign-in is no longer valid", "")
        url = self._decide(authz, form.get("decision") == "approve", {})
        return _redirect(url) if url else _page(400, "This sign-in is no longer valid", "")

    def _decide(self, authz: dict, approve: bool, account: dict) -> str | None:
        """The URL the browser is sent back to, or None when the sign-in is over."""
        if authz["status"] != "pending" or authz["expires_at"] <= time.time():
            return None
        if not approve:
            authz["status"] = "denied"
            return _with_query(authz["redirect_uri"], {"error": "access_denied", "state": authz["state"]})
        authz["status"] = "approved"
        code = secrets.token_urlsafe(32)
        self.codes[code] = {"authz": authz, "expires_at": time.time() + CODE_LIFETIME, "account": account}
        return _with_query(authz["redirect_uri"], {"code": code, "state": authz["state"]})

    def social_token(self, body: object) -> Answer:
        """POST /oauth/token {code, code_verifier, redirect_uri}."""
        if not isinstance(body, dict):
            return _auth_error(400, "Request body must be a JSON object")
        code, verifier, redirect = _str(body, "code"), _str(body, "code_verifier"), _str(body, "redirect_uri")
        if not code or not verifier or not redirect:
            return _auth_error(400, "code, code_verifier and redirect_uri are required")
        issued = self.codes.pop(code, None)  # one use, whatever happens next
        if issued is None or issued["expires_at"] <= time.time():
            return oidc_error("invalid_grant", "Invalid or expired authorization code")
        authz = issued["authz"]
        if redirect != authz["redirect_uri"]:
            return _auth_error(500, "Internal server error")
        if not hmac.compare_digest(s256(verifier), authz["challenge"]):
            return oidc_error("invalid_grant", "code_verifier does not match the code_challenge")
        authz["status"] = "used"
        acct = self._account(issued["account"], auth="social")
        return _ok({"accessToken": acct["access_token"], "refreshToken": acct["refresh_token"],
                    "profileArn": acct["profile_arn"], "expiresIn": int(max(0, acct["expires_at"] - time.time()))})

    # -- control ------------------------------------------------------------------------------------

    def pending(self) -> dict:
        return {
            "devices": [{"userCode": d["user_code"], "startUrl": d["start_url"], "status": d["status"],
                         "expiresAt": d["expires_at"], "interval": d["interval"], "polls": d["polls"]}
                        for d in self.devices.values()],
            "social": [{"state": a["state"], "idp": a["idp"], "redirectUri": a["redirect_uri"],
                        "status": a["status"], "expiresAt": a["expires_at"]} for a in self.social.values()],
            "clients": len(self.clients),
        }

    def _target(self, body: object) -> tuple[str, dict]:
        if not isinstance(body, dict):
            raise ValueError("post {\"userCode\": …} or {\"state\": …}")
        if isinstance(body.get("userCode"), str):
            dev = self._by_user_code(body["userCode"])
            if dev is None:
                raise ValueError(f"no device authorization with user code {body['userCode']!r}")
            return "device", dev
        if isinstance(body.get("state"), str):
            authz = next((a for a in self.social.values() if a["state"] == body["state"]), None)
            if authz is None:
                raise ValueError(f"no social sign-in with state {body['state']!r}")
            return "social", authz
        raise ValueError("name the login by userCode (device) or state (social)")

    def control(self, action: str, body: object) -> dict:
        """approve / deny / expire the login named by userCode or state (what a person would do)."""
        kind, item = self._target(body)  # raises unless body is an object
        account = (body.get("account") if isinstance(body, dict) else None) or {}
        if not isinstance(account, dict):
            raise ValueError("account must be an object of account fields")
        if set(account) - set(FIELDS):
            raise ValueError(f"unknown account fields: {sorted(set(account) - set(FIELDS))}")
        if action == "expire":
            item["expires_at"] = time.time() - 1
            for issued in self.codes.values():
                if issued["authz"] is item:
                    issued["expires_at"] = item["expires_at"]
            return {"expired": True}
        if kind == "device":
            if item["status"] != "pending" or item["expires_at"] <= time.time():
                raise ValueError(f"this device authorization is {item['status']}, not pending")
            item["status"] = "approved" if action == "approve" else "denied"
            item["account"] = account
            return {item["status"]: True}
        url = self._decide(item, action == "approve", account)
        if url is None:
            raise ValueError(f"this sign-in is {item['status']}, not pending")
        return {"approved" if action == "approve" else "denied": True, "redirect": url}


def form_fields(raw: bytes) -> dict[str, str]:
    return dict(parse_qsl(raw.decode("utf-8", "replace")))
