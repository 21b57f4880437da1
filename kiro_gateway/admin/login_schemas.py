"""Request and response bodies of the admin API's logins (admin/logins.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["LoginStart", "LoginView", "LoginList", "LoginCallback"]

LoginStatus = Literal["pending", "done", "expired", "denied", "error", "cancelled"]


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore")


class LoginStart(_In):
    method: Literal["builder-id", "idc", "social"]
    startUrl: str | None = Field(None, description="idc: the organisation's start URL (builder-id: AWS's own)")
    region: str | None = Field(None, description="idc: the Identity Center region (builder-id: us-east-1)")
    provider: Literal["google", "github"] | None = Field(None, description="social: the identity provider")
    callbackPort: int | None = Field(None, ge=1024, le=65535,
                                     description="social: loopback port Kiro redirects the browser to (default 3128)")


class LoginCallback(_In):
    url: str = Field(min_length=1, max_length=8192,
                     description="the address the browser ended on after the social sign-in (with code and state)")


class LoginView(BaseModel):
    """One login attempt. Never a token, device code, client secret or PKCE verifier."""

    id: str
    method: Literal["builder-id", "idc", "social"]
    status: LoginStatus
    expiresAt: str = Field(description="when the code or sign-in stops being valid, RFC 3339")
    createdAt: str
    userCode: str | None = Field(None, description="device code logins: the code the person confirms")
    verificationUri: str | None = None
    verificationUriComplete: str | None = Field(None, description="the verification page with the code filled in")
    region: str | None = None
    startUrl: str | None = None
    provider: Literal["google", "github"] | None = None
    authorizeUrl: str | None = Field(None, description="social: the page to open in a browser")
    redirectUri: str | None = Field(None, description="social: where the browser is sent back (loopback)")
    callbackListening: bool | None = Field(None, description="social: whether this machine listens on redirectUri; "
                                                             "if not, post the final URL to /callback")
    credentialId: int | str | None = Field(None, description="done: the credential added (or already present)")
    duplicate: bool | None = Field(None, description="done: the account was already in the pool; nothing added")
    error: str | None = Field(None, description="expired, denied or error: why")


class LoginList(BaseModel):
    logins: list[LoginView]
