"""Login attempts, by id: start one, follow it, finish a social one with a pasted URL, cancel it.

A device-code attempt (builder-id, idc) polls CreateToken in a background task that honours
authorization_pending and slow_down and stops at expired_token, access_denied or its own expiry.
A social attempt waits for the browser's redirect on the loopback listener (callback.py) or for
the pasted URL. Each task ends in a status — done, expired, denied, error or cancelled — and never
silently: an unexpected exception becomes `error` and is logged.

On success the credential is added to the pool (written atomically, 0600) and serves at once; a
refresh token already in the pool is not added twice (the attempt names the existing credential).
Attempts never show a token, a device code, a client secret or the PKCE verifier.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ..config import Settings
from ..core.conversation import GatewayError
from ..kiro.client import KiroHttp, Proxy, ProxyError
from ..kiro.identity import machine_id_for
from ..pool.credential import Credential, format_expiry
from ..pool.pool import CredentialPool
from . import oidc, social
from .callback import CallbackListener, Outcome

__all__ = ["LoginManager", "Attempt", "LoginInputError", "LoginConflict", "LoginUpstreamError", "METHODS",
           "DEFAULT_CALLBACK_PORT"]

log = logging.getLogger("kiro_gateway.login")

METHODS = ("builder-id", "idc", "social")
DEFAULT_CALLBACK_PORT = 3128
SOCIAL_LIFETIME = 600.0
MAX_PENDING = 20
KEEP_FINISHED = 100
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
_NETWORK_RETRIES = 5


class LoginInputError(ValueError):
    """The request cannot start or finish a login (400)."""


class LoginConflict(Exception):
    """Not now: the attempt is over, or too many are pending (409)."""


class LoginUpstreamError(Exception):
    """Kiro's or AWS's login service failed to start the login (502)."""


@dataclass(eq=False)
class Attempt:
    id: str
    method: str
    expires_at: float
    status: str = "pending"
    created: float = field(default_factory=time.time)
    region: str | None = None
    start_url: str | None = None
    provider: str | None = None
    user_code: str | None = None
    verification_uri: str | None = None
    verification_uri_complete: str | None = None
    authorize_url: str | None = None
    redirect_uri: str | None = None
    callback_listening: bool = False
    credential_id: str | None = None
    duplicate: bool = False
    error: str | None = None
    finished: float | None = None
    # private to the manager
    state: str = field(default="", repr=False)
    verifier: str = field(default="", repr=False)
    claimed: bool = field(default=False, repr=False)
    task: asyncio.Task | None = field(default=None, repr=False)
    done: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    def view(self) -> dict[str, Any]:
        """What the admin API and the CLI may show: no token, device code, secret or verifier."""
        out: dict[str, Any] = {"id": self.id, "method": self.method, "status": self.status,
                               "expiresAt": format_expiry(self.expires_at), "createdAt": format_expiry(self.created)}
        if self.method == "social":
            out.update(provider=self.provider, authorizeUrl=self.authorize_url, redirectUri=self.redirect_uri,
                       callbackListening=self.callback_listening)
        else:
            out.update(userCode=self.user_code, verificationUri=self.verification_uri,
                       verificationUriComplete=self.verification_uri_complete, region=self.region,
                       startUrl=self.start_url)
        if self.credential_id is not None:
            out["credentialId"] = int(self.credential_id) if self.credential_id.isdigit() else self.credential_id
            out["duplicate"] = self.duplicate
        if self.error:
            out["error"] = self.error
        return out


class LoginManager:
    def __init__(self, settings: Settings, pool: CredentialPool, http: KiroHttp, *,
                 callback_port: int = DEFAULT_CALLBACK_PORT, slow_down_step: float = 5.0) -> None:
        self.settings = settings
        self.pool = pool
        self.http = http
        self.callback_port = callback_port
        self.slow_down_step = slow_down_step  # RFC 8628: each slow_down adds 5 s to the interval
        self.attempts: dict[str, Attempt] = {}
        self._listeners: dict[int, CallbackListener] = {}
        self._add_lock = asyncio.Lock()
        self._cleanups: set[asyncio.Task] = set()

    # -- starting --------------------------------------------------------------------------------

    async def start(self, method: str, *, start_url: str | None = None, region: str | None = None,
                    provider: str | None = None, callback_port: int | None = None) -> Attempt:
        if method not in METHODS:
            raise LoginInputError(f"method must be one of {', '.join(METHODS)}.")
        self._prune()
        if sum(a.status == "pending" for a in self.attempts.values()) >= MAX_PENDING:
            raise LoginConflict(f"{MAX_PENDING} logins are already pending; finish or cancel some first.")
        if method == "social":
            return await self._start_social(provider, callback_port)
        return await self._start_device(method, start_url, region)

    async def _start_device(self, method: str, start_url: str | None, region: str | None) -> Attempt:
        if method == "builder-id":
            start_url, region = start_url or oidc.BUILDER_ID_START_URL, region or "us-east-1"
        elif not start_url or not region:
            raise LoginInputError("IAM Identity Center needs startUrl and region.")
        start_url = start_url.strip()
        parts = urlsplit(start_url)
        if parts.scheme != "https" or not parts.hostname:
            raise LoginInputError("startUrl must be an https URL, e.g. https://my-org.awsapps.com/start.")
        region = region.strip().lower()
        if not _REGION.match(region):
            raise LoginInputError("region must be an AWS region such as us-east-1.")
        att = Attempt(secrets.token_urlsafe(9), method, time.time() + 600, region=region, start_url=start_url)
        base, mid, (session, via) = self._oidc_base(region), self._machine_id(att), self._via()
        try:
            client = await oidc.register_client(session, base, start_url, mid, via)
            dev = await oidc.start_device_authorization(session, base, client, start_url, mid, via)
        except oidc.OidcError as e:
            if e.code in ("invalid_request", "invalid_client_metadata"):
                raise LoginInputError(f"AWS refused the login: {e.code} ({e.description[:200]}).") from None
            raise LoginUpstreamError(f"AWS SSO OIDC answered {e.code}.") from None
        except oidc.LoginHttpError as e:
            raise LoginUpstreamError(f"AWS SSO OIDC failed: {e}.") from None
        att.user_code, att.verification_uri = dev.user_code, dev.verification_uri
        att.verification_uri_complete = dev.verification_uri_complete
        att.expires_at = time.time() + dev.expires_in
        self.attempts[att.id] = att
        att.task = self._spawn(att, self._poll(att, client, dev))
        # The code is meant to be shown: in a container the log may be the only place to read it.
        log.info("login %s: %s device code started (%s): open %s and confirm %s", att.id, method, region,
                 att.verification_uri_complete, att.user_code)
        return att

    async def _start_social(self, provider: str | None, callback_port: int | None) -> Attempt:
        if provider not in social.PROVIDERS:
            raise LoginInputError(f"provider must be one of {', '.join(social.PROVIDERS)}.")
        port = callback_port or self.callback_port
        if not 1 <= port <= 65535:
            raise LoginInputError("callbackPort must be a TCP port (1–65535).")
        att = Attempt(secrets.token_urlsafe(9), "social", time.time() + SOCIAL_LIFETIME, provider=provider)
        att.verifier, challenge = social.new_pkce()
        att.state = secrets.token_urlsafe(24)
        att.redirect_uri = social.redirect_uri(port)
        att.authorize_url = social.authorize_url(self._auth_base(), provider, att.redirect_uri, challenge, att.state)
        att.callback_listening = await self._listen(port)
        self.attempts[att.id] = att
        att.task = self._spawn(att, self._expire_social(att, port))
        log.info("login %s: social (%s) started; callback %s", att.id, provider,
                 "listening" if att.callback_listening else "not listening (paste the URL)")
        return att

    # -- following -------------------------------------------------------------------------------

    def get(self, attempt_id: str) -> Attempt | None:
        return self.attempts.get(attempt_id)

    def list(self) -> list[Attempt]:
        return sorted(self.attempts.values(), key=lambda a: a.created, reverse=True)

    async def wait(self, attempt_id: str, timeout: float | None = None) -> Attempt:
        att = self.attempts[attempt_id]
        await asyncio.wait_for(att.done.wait(), timeout)
        return att

    async def callback(self, attempt_id: str, url: str) -> Attempt:
        """Finish a social login with the URL the browser ended on (pasted by the person)."""
        att = self.attempts.get(attempt_id)
        if att is None:
            raise KeyError(attempt_id)
        if att.method != "social":
            raise LoginInputError("Only a social login takes a callback URL.")
        try:
            code, state, error = social.parse_redirect(url)
        except ValueError as e:
            raise LoginInputError(f"url: {e}.") from None
        if not secrets.compare_digest(state or "", att.state):
            raise LoginInputError("url: its state is not this login's (an old or another login's URL?).")
        await self._redirected(att, code, error)
        return att

    async def cancel(self, attempt_id: str) -> Attempt:
        att = self.attempts.get(attempt_id)
        if att is None:
            raise KeyError(attempt_id)
        if att.status == "pending" and not att.claimed:
            self._finish(att, "cancelled")
            if att.task is not None:
                att.task.cancel()
        return att

    async def stop(self) -> None:
        tasks = [a.task for a in self.attempts.values() if a.task is not None and not a.task.done()]
        for a in self.attempts.values():
            if a.status == "pending":
                self._finish(a, "cancelled")
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        for listener in list(self._listeners.values()):
            await listener.stop()
        self._listeners.clear()

    # -- device code -------------------------------------------------------------------------------

    async def _poll(self, att: Attempt, client: oidc.Client, dev: oidc.DeviceAuthorization) -> None:
        interval = max(dev.interval, 1.0)
        base, mid = self._oidc_base(att.region or "us-east-1"), self._machine_id(att)
        failures = 0
        while att.status == "pending":
            await asyncio.sleep(min(interval, max(0.0, att.expires_at - time.time())))
            if time.time() >= att.expires_at:
                self._finish(att, "expired", "The code expired before it was approved.")
                return
            session, via = self._via()
            try:
                tokens = await oidc.create_token(session, base, client, dev.device_code, mid, via)
            except oidc.OidcError as e:
                failures = 0
                if e.code == "authorization_pending":
                    continue
                if e.code == "slow_down":
                    interval += self.slow_down_step
                    continue
                if e.code == "expired_token":
                    self._finish(att, "expired", "The code expired before it was approved.")
                elif e.code == "access_denied":
                    self._finish(att, "denied", "The request was denied in the browser.")
                else:
                    self._finish(att, "error", f"AWS SSO OIDC answered {e.code}.")
                return
            except oidc.LoginHttpError as e:
                failures += 1
                if failures >= _NETWORK_RETRIES:
                    self._finish(att, "error", f"AWS SSO OIDC failed: {e}.")
                    return
                continue
            att.claimed = True
            raw: dict[str, Any] = {"authMethod": "idc", "clientId": client.client_id,
                                   "clientSecret": client.client_secret, "authRegion": att.region,
                                   "startUrl": att.start_url}
            await self._add(att, raw, tokens)
            return

    # -- social ----------------------------------------------------------------------------------

    async def _expire_social(self, att: Attempt, port: int) -> None:
        try:
            try:
                await asyncio.wait_for(att.done.wait(), max(0.0, att.expires_at - time.time()))
            except TimeoutError:
                while att.claimed and att.status == "pending":  # an exchange is under way: let it end
                    await asyncio.sleep(0.1)
                self._finish(att, "expired", "The sign-in was not completed in time.")
            await asyncio.sleep(1.0)  # the browser's page goes out before the listener closes
        finally:
            await self._release(port)

    async def _on_loopback(self, url: str) -> Outcome:
        try:
            code, state, error = social.parse_redirect(url)
        except ValueError:
            return (False, "This page expects Kiro's redirect with a code and a state.",
                    "此页面需要带有 code 和 state 的 Kiro 跳转。")
        att = next((a for a in self.attempts.values() if a.method == "social" and a.state
                    and secrets.compare_digest(a.state, state or "")), None)
        if att is None:
            return False, "No login is waiting for this sign-in.", "没有等待此登录的请求。"
        try:
            await self._redirected(att, code, error)
        except LoginConflict:
            pass  # already finished (e.g. pasted meanwhile): say how it ended
        if att.status == "done":
            return True, "You are logged in; you can close this tab.", "登录成功，可以关闭此标签页。"
        return False, att.error or f"The login is {att.status}.", f"登录未完成（{att.status}）。"

    async def _redirected(self, att: Attempt, code: str | None, error: str | None) -> None:
        if att.status != "pending" or att.claimed:
            raise LoginConflict(f"This login is already {att.status if att.status != 'pending' else 'finishing'}.")
        if time.time() >= att.expires_at:
            self._finish(att, "expired", "The sign-in was not completed in time.")
            return
        if error or not code:
            if error == "access_denied":
                self._finish(att, "denied", "The sign-in was cancelled or refused.")
            else:
                self._finish(att, "error", f"The sign-in failed: {str(error)[:100]}.")
            return
        att.claimed = True
        session, via = self._via()
        try:
            tokens = await social.exchange_code(session, self._auth_base(), code, att.verifier,
                                                att.redirect_uri or "", self.settings.kiro_version,
                                                self._machine_id(att), via)
        except oidc.OidcError as e:
            self._finish(att, "error", f"Kiro refused the code ({e.code}); start the login again.")
            return
        except oidc.LoginHttpError as e:
            self._finish(att, "error", f"The code exchange failed: {e}.")
            return
        raw: dict[str, Any] = {"authMethod": "social", "provider": social.PROVIDERS[att.provider or "google"]}
        try:
            await self._add(att, raw, tokens)
        except Exception:  # noqa: BLE001 - the attempt still ends with a status
            log.exception("login %s: adding the credential failed", att.id)
            self._finish(att, "error", "The credential could not be saved; see the gateway's log.")

    async def _listen(self, port: int) -> bool:
        listener = self._listeners.get(port)
        if listener is None:
            listener = CallbackListener(port, self._on_loopback)
            try:
                await listener.start()
            except OSError as e:
                log.warning("login callback port %d is not free (%s): paste the final URL instead", port, e)
                return False
            self._listeners[port] = listener
        return True

    async def _release(self, port: int) -> None:
        """Stop the port's listener once no social login waits on it."""
        redirect = social.redirect_uri(port)
        if any(a.status == "pending" and a.redirect_uri == redirect for a in self.attempts.values()):
            return
        listener = self._listeners.pop(port, None)
        if listener is not None:
            await listener.stop()

    # -- the end of an attempt ------------------------------------------------------------------------

    async def _add(self, att: Attempt, raw: dict[str, Any], tokens: dict[str, Any]) -> None:
        cred = Credential(raw, 0)
        try:
            expires_in = float(tokens.get("expiresIn") or 3600)
        except (TypeError, ValueError):
            expires_in = 3600.0
        cred.apply_refresh(tokens["accessToken"], tokens["refreshToken"], expires_in,
                           tokens.get("profileArn") if isinstance(tokens.get("profileArn"), str) else None)
        cred.set_disabled(False)
        async with self._add_lock:  # two logins of one account finishing together: added once
            token = tokens["refreshToken"]
            if self.pool.has_refresh_token(token):
                existing = next(c for c in self.pool.credentials if c.refresh_token == token)
                att.credential_id, att.duplicate = existing.id, True
            else:
                (added,) = await self.pool.add(cred.raw)
                att.credential_id = added.id
        self._finish(att, "done")
        log.info("login %s: done, credential #%s%s", att.id, att.credential_id,
                 " (already in the pool)" if att.duplicate else " added")

    def _finish(self, att: Attempt, status: str, error: str | None = None) -> None:
        if att.status != "pending":
            return
        att.status, att.error, att.finished = status, error, time.time()
        att.done.set()
        if status not in ("done", "cancelled"):
            log.info("login %s: %s (%s)", att.id, status, error)

    def _spawn(self, att: Attempt, coro) -> asyncio.Task:
        async def guarded() -> None:
            try:
                await coro
            except asyncio.CancelledError:
                self._finish(att, "cancelled")
                raise
            except Exception as e:  # noqa: BLE001 - an attempt never ends without a status
                log.exception("login %s failed", att.id)
                message = e.message if isinstance(e, GatewayError) else type(e).__name__
                self._finish(att, "error", f"Internal error: {message}.")

        def ended(task: asyncio.Task) -> None:
            if task.cancelled():
                coro.close()  # cancelled before it began: never awaited, its cleanup did not run
                self._finish(att, "cancelled")
                if att.redirect_uri and (port := urlsplit(att.redirect_uri).port):
                    cleanup = asyncio.get_running_loop().create_task(self._release(port))
                    self._cleanups.add(cleanup)
                    cleanup.add_done_callback(self._cleanups.discard)

        task = asyncio.get_running_loop().create_task(guarded(), name=f"login-{att.id}")
        task.add_done_callback(ended)
        return task

    def _prune(self) -> None:
        finished = sorted((a for a in self.attempts.values() if a.status != "pending"), key=lambda a: a.finished or 0)
        for a in finished[: max(0, len(finished) - KEEP_FINISHED)]:
            del self.attempts[a.id]

    # -- where and how to call --------------------------------------------------------------------------

    def _oidc_base(self, region: str) -> str:
        return self.settings.url("oidc_base_url", region)

    def _auth_base(self) -> str:
        return self.settings.url("auth_base_url")

    def _machine_id(self, att: Attempt) -> str:
        return machine_id_for(self.settings.machine_id, fallback_seed="login/" + att.id)

    def _via(self):
        s = self.settings
        if not s.proxy_url or s.proxy_url.strip().lower() == "direct":
            return self.http.via(None)
        try:
            return self.http.via(Proxy.parse(s.proxy_url, s.proxy_username, s.proxy_password))
        except ProxyError as e:
            raise LoginUpstreamError(f"proxyUrl: {e}.") from None
