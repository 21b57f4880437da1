"""The fake Kiro server: Kiro's wire format on 127.0.0.1, as strict as Kiro is believed to be.

aiohttp's low-level server (no router, no middlewares) with a dict dispatch keeps the per-request
cost small, since the benchmark uses this server alone as its floor. All state lives on the
server's event loop; `FakeKiro` (in-process use) marshals its calls onto that loop, so no locks
are taken on the hot path.

Order of checks on generateAssistantResponse: bearer (401/403, suspended 403) before the body is
validated, as an AWS authorizer runs before the service; then validation (400); then quota (402)
and the optional per-account concurrency cap (429); then scripts, else the default reply.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import threading
import time
import uuid

import orjson
from aiohttp import web

from .accounts import QUOTA, usage_limits
from .catalog import INVALID_MODEL, named_error, window_of
from .hosts import PROFILES_PREFIX, arn_verdict, list_profiles, resolve
from .login import DEVICE_GRANT
from .login_routes import LoginRoutes, answer
from .mcp import McpRoutes
from .wire import json_body as _json_body
from .wire import json_response as _json
from .replies import DROP, Reply, Settings, default_reply, error_reply, script_reply
from .state import DEFAULT_MODELS, FakeState
from .validation import validate_request

__all__ = ["FakeKiro", "FakeState", "DEFAULT_MODELS", "run", "main"]

EVENTSTREAM = "application/vnd.amazon.eventstream"
MALFORMED = orjson.dumps({"message": "Improperly formed request.", "reason": None})
TOO_LONG = orjson.dumps({"message": "Input is too long.", "reason": "CONTENT_LENGTH_EXCEEDS_THRESHOLD"})
CONTEXT_FULL = TOO_LONG  # the same answer when the tokens, not the bytes, are too many
TOKEN_BYTES = 4
THROTTLED = error_reply(429).body
NOT_FOUND = orjson.dumps({"message": "Unknown operation.", "__type": "UnknownOperationException"})


class _EventStreamResponse(web.StreamResponse):
    # Hold the header block until the first write so that an unpaced reply leaves in one send().
    _send_headers_immediately = False


_REQUEST_ID_PREFIX = str(uuid.uuid4())[:24]
_request_ids = itertools.count(1)


class FakeKiroHandler(McpRoutes, LoginRoutes):
    """The aiohttp request handler: Kiro routes and the /__fake/ control API."""

    def __init__(self, state: FakeState) -> None:
        self.state = state
        self.routes = {
            ("POST", "/generateAssistantResponse"): self.generate,
            ("POST", "/mcp"): self.mcp,
            ("POST", "/refreshToken"): self.refresh_social,
            ("POST", "/token"): self.refresh_idc,
            ("GET", "/getUsageLimits"): self.get_usage_limits,
            ("GET", "/ListAvailableModels"): self.list_models,
            ("POST", "/__fake/scripts"): self.ctl_add_scripts,
            ("GET", "/__fake/scripts"): self.ctl_list_scripts,
            ("DELETE", "/__fake/scripts"): self.ctl_clear_scripts,
            ("POST", "/__fake/accounts"): self.ctl_add_accounts,
            ("GET", "/__fake/accounts"): self.ctl_list_accounts,
            ("DELETE", "/__fake/accounts"): self.ctl_clear_accounts,
            ("GET", "/__fake/requests"): self.ctl_requests,
            ("DELETE", "/__fake/requests"): self.ctl_clear_requests,
            ("GET", "/__fake/stats"): self.ctl_stats,
            ("GET", "/__fake/settings"): self.ctl_settings,
            ("POST", "/__fake/settings"): self.ctl_settings,
            ("POST", "/__fake/reset"): self.ctl_reset,
            **self.login_routes(),
        }
        self.runtime_routes = {("POST", "/generateAssistantResponse"): self.generate,
                               ("GET", "/getUsageLimits"): self.get_usage_limits, ("POST", "/mcp"): self.mcp}

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.path
        if not path.startswith("/__fake/"):  # the control API stays out of the statistics
            self.state.paths[path] += 1
        if path.startswith(PROFILES_PREFIX):
            return await self.profiles(request)
        host, operation = resolve(request.method, path, request.headers.get("x-amz-target"))
        if isinstance(operation, bytes):  # an unknown target: the error body
            return _json(400, operation)
        path = operation
        branded = self.runtime_routes.get((request.method, path)) if host == "runtime" else None
        if branded is not None:  # the operations the branded host serves, with its own rules
            return await branded(request, "runtime")
        route = self.routes.get((request.method, path))
        if route is None:
            if not path.startswith("/__fake/accounts/"):
                return _json(404, NOT_FOUND)
            route = self.ctl_account
        try:
            return await route(request)
        except (ValueError, TypeError) as exc:
            if not path.startswith("/__fake/"):
                raise  # a bug in the fake itself: let aiohttp answer 500 and log it
            return _json(400, {"error": str(exc)})  # bad control input

    # -- generateAssistantResponse --------------------------------------------------------------

    async def generate(self, request: web.BaseRequest, host: str = "legacy") -> web.StreamResponse:
        st = self.state
        raw = await request.content.read()
        token, acct, auth_error, rec = st.received(request, raw, host)
        if token:
            n = st.inflight.get(token, 0) + 1
            st.inflight[token] = n
            if n > st.max_inflight.get(token, 0):
                st.max_inflight[token] = n
        aid = acct["id"] if acct is not None else None
        if aid is not None:  # per account too: a token refresh mid-flight changes the token
            m = st.inflight_accounts.get(aid, 0) + 1
            st.inflight_accounts[aid] = m
            if m > st.max_inflight_accounts.get(aid, 0):
                st.max_inflight_accounts[aid] = m
        try:
            if auth_error:
                return self._fail(rec, auth_error[0], auth_error[1], "auth")
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                return self._reject(rec, "body_not_json", "malformed")
            if rec is not None and st.settings.record_bodies:
                rec["body"] = body
            verdict = validate_request(body, len(raw), st.known_models)
            if verdict is not None:
                return self._reject(rec, *verdict)
            refused = arn_verdict(host, acct, body.get("profileArn"))
            if refused is not None:
                return self._fail(rec, refused[0], refused[1], "profile")
            model = body["conversationState"]["currentMessage"]["userInputMessage"]["modelId"]
            allowed = st.account_models(acct)
            if acct is not None and model not in allowed:
                return self._fail(rec, 400, INVALID_MODEL, "model")
            if len(raw) // TOKEN_BYTES > window_of(model, allowed.get(model)):
                # Over the model's window (Kiro counts its own way: here ~4 bytes of body a token).
                return self._fail(rec, 400, CONTEXT_FULL, "context_full")
            if acct is not None:
                if acct["fail_with"]:
                    status, err = named_error(acct["fail_with"])
                    return self._fail(rec, status, orjson.dumps(err), "scripted_error")
                if acct["quota_exhausted"]:
                    return self._fail(rec, 402, QUOTA, "quota")
                if acct["max_concurrency"] and st.inflight_accounts[acct["id"]] > acct["max_concurrency"]:
                    return self._fail(rec, 429, THROTTLED, "throttled")
            script = st.take_script(body, token, aid) if st.scripts else None
            if script is None:
                reply = default_reply(body, len(raw), st.settings)
            else:
                reply = script_reply(script, body, len(raw), st.settings)
                if rec is not None:
                    rec["scripted"] = True
            return await self._send(request, reply, rec)
        finally:
            if token:
                st.inflight[token] -= 1
            if aid is not None:
                st.inflight_accounts[aid] -= 1

    def _fail(self, rec, status: int, body: bytes, verdict: str) -> web.Response:
        self.state.statuses[status] += 1
        if rec is not None:
            rec["status"], rec["verdict"] = status, verdict
        return _json(status, body)

    def _reject(self, rec, rule: str, kind: str) -> web.Response:
        self.state.statuses[400] += 1
        self.state.rules[rule] += 1
        if rec is not None:
            rec["status"], rec["verdict"], rec["rule"] = 400, kind, rule
        resp = _json(400, TOO_LONG if kind == "too_long" else MALFORMED)
        resp.headers["x-fake-rule"] = rule
        resp.headers["x-amzn-ErrorType"] = "ValidationException"
        return resp

    async def _send(self, request: web.BaseRequest, reply: Reply, rec) -> web.StreamResponse:
        if reply.first_byte_delay:
            await asyncio.sleep(reply.first_byte_delay)
        self.state.statuses[reply.status] += 1
        if rec is not None:
            rec["status"] = reply.status
            rec["verdict"] = "ok" if reply.status == 200 else "error"
        if reply.status != 200:
            error = web.Response(status=reply.status, body=reply.body, headers=reply.headers)
            error.content_type = reply.content_type.split(";")[0]
            return error
        resp = _EventStreamResponse(status=200)
        resp.headers["Content-Type"] = EVENTSTREAM
        resp.headers["x-amzn-RequestId"] = f"{_REQUEST_ID_PREFIX}{next(_request_ids):012x}"
        for name, value in reply.headers.items():
            resp.headers[name] = value
        resp.enable_chunked_encoding()
        try:
            await resp.prepare(request)
            pending: list[bytes] = []
            for item in reply.items:
                if item.__class__ is bytes:
                    pending.append(item)
                    continue
                # A pause or a drop: what is ready goes out first (headers at the latest now).
                await resp.write(b"".join(pending))
                pending = []
                if item is DROP:
                    if request.transport is not None:  # None: the client has already gone
                        request.transport.abort()  # no terminating chunk: the client sees a cut stream
                    self._ended(rec, "dropped")
                    return resp
                await asyncio.sleep(item)
            await resp.write_eof(b"".join(pending))
            self._ended(rec, "complete")
        except (ConnectionError, RuntimeError):
            self._ended(rec, "client_gone")  # the client went away mid-stream
        return resp

    @staticmethod
    def _ended(rec, how: str) -> None:
        """How the stream ended, and when (for tests of cancellation): complete, dropped, client_gone."""
        if rec is not None:
            rec["ended"] = how
            rec["ended_at"] = time.time()

    # -- auth and account endpoints -------------------------------------------------------------

    async def _refreshed(self, refresh, body):
        """A refresh answer from `refresh` (one of the accounts' two endpoints), after the delay."""
        if self.state.settings.refresh_delay:
            await asyncio.sleep(self.state.settings.refresh_delay)
        status, answer_body = refresh(body)
        return _json(status, answer_body)

    async def refresh_social(self, request):
        return await self._refreshed(self.state.accounts.refresh_social, await _json_body(request))

    async def refresh_idc(self, request):
        body = await _json_body(request)
        if isinstance(body, dict) and body.get("grantType") == DEVICE_GRANT:  # CreateToken finishing a login
            return answer(self.state.login.create_token(body))
        return await self._refreshed(self.state.accounts.refresh_idc, body)

    def _bearer(self, request):
        _, acct, error = self.state.accounts.authenticate(
            request.headers.get("Authorization"), request.headers.get("tokentype")
        )
        return acct, error

    async def get_usage_limits(self, request, host: str = "legacy"):
        acct, error = self._bearer(request)
        if error:
            return _json(*error)
        refused = arn_verdict(host, acct, request.query.get("profileArn"))  # the host's ARN rule
        if refused is not None:
            return web.Response(status=refused[0], body=refused[1], content_type="application/json")
        return _json(200, usage_limits(acct))

    async def list_models(self, request):
        acct, error = self._bearer(request)
        if error:
            return _json(*error)
        page = self.state.model_page(acct, request.query.get("nextToken"))
        if page is None:
            return _json(400, {"__type": "ValidationException", "message": "Invalid nextToken"})
        return _json(200, page)

    async def profiles(self, request):
        """POST /profiles/{region}/ with a ListAvailableProfiles / ListProfiles target."""
        region = request.path[len(PROFILES_PREFIX):].strip("/")
        if request.method != "POST":
            return _json(404, NOT_FOUND)
        acct, error = self._bearer(request)
        if error:
            return _json(*error)
        return _json(*list_profiles(acct, region, request.headers.get("x-amz-target")))

    # -- control API ----------------------------------------------------------------------------

    async def ctl_add_scripts(self, request):
        added = self.state.add_scripts(await _json_body(request))
        return _json(200, {"added": added, "pending": len(self.state.scripts)})

    async def ctl_list_scripts(self, request):
        return _json(200, self.state.scripts)

    async def ctl_clear_scripts(self, request):
        cleared = len(self.state.scripts)
        self.state.scripts.clear()
        return _json(200, {"cleared": cleared})

    async def ctl_add_accounts(self, request):
        body = await _json_body(request)
        if isinstance(body, list):
            return _json(200, [self.state.accounts.add(**a) for a in body])
        if not isinstance(body, dict):
            raise ValueError("post an account object or a list of them")
        return _json(200, self.state.accounts.add(**body))

    async def ctl_list_accounts(self, request):
        return _json(200, self.state.accounts.list())

    async def ctl_clear_accounts(self, request):
        self.state.accounts.clear()
        return _json(200, {"cleared": True})

    async def ctl_account(self, request):
        key = request.path[len("/__fake/accounts/") :]
        accounts = self.state.accounts
        if accounts.find(key) is None:
            return _json(404, {"error": f"no account {key!r}"})
        if request.method == "GET":
            return _json(200, {**accounts.find(key), "refresh_count": accounts.refresh_count(key)})
        if request.method in ("PATCH", "POST"):
            return _json(200, accounts.update(key, **((await _json_body(request)) or {})))
        return _json(405, {"error": "use GET or PATCH"})

    async def ctl_requests(self, request):
        limit = request.query.get("limit")
        return _json(200, self.state.recorded(int(limit) if limit else None))

    async def ctl_clear_requests(self, request):
        self.state.requests.clear()
        return _json(200, {"cleared": True})

    async def ctl_stats(self, request):
        return _json(200, self.state.stats())

    async def ctl_settings(self, request):
        if request.method == "POST":
            return _json(200, self.state.settings.update(**((await _json_body(request)) or {})))
        return _json(200, self.state.settings.as_dict())

    async def ctl_reset(self, request):
        body = await _json_body(request) or {}
        self.state.reset(accounts=bool(body.get("accounts", True)))
        return _json(200, {"reset": True})


def new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - Windows
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class FakeKiro:
    """The fake Kiro for in-process use: `with FakeKiro() as fake: ... fake.base_url ...`.

    The server runs in a background thread on its own event loop; every method here is
    thread-safe (it runs on that loop and waits for the result).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, models=None, **settings) -> None:
        if models is None:
            models = DEFAULT_MODELS
        elif not isinstance(models, dict):
            models = {m: DEFAULT_MODELS.get(m, m) for m in models}
        self.host = host
        self.port = port
        self.state = FakeState(Settings(**settings), models)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.ServerRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    # -- lifecycle ------------------------------------------------------------------------------

    async def _open(self) -> None:
        server = web.Server(FakeKiroHandler(self.state), access_log=None, keepalive_timeout=75)
        self._runner = web.ServerRunner(server, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=1024, reuse_address=True, shutdown_timeout=0.5)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def start(self) -> "FakeKiro":
        """Serve from a background thread; returns once the socket is listening."""
        if self._thread is not None:
            raise RuntimeError("already started")
        started: concurrent.futures.Future[None] = concurrent.futures.Future()

        def main() -> None:
            loop = new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                loop.run_until_complete(self._open())
            except BaseException as exc:  # noqa: BLE001 - handed to the starting thread
                started.set_exception(exc)
                loop.close()
                return
            started.set_result(None)
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self._close())
                loop.close()

        self._thread = threading.Thread(target=main, name=f"fake-kiro:{self.port}", daemon=True)
        self._thread.start()
        try:
            started.result(timeout=10)
        except BaseException:
            self._thread.join(5)
            self._thread = self._loop = None
            raise
        return self

    def stop(self) -> None:
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        self._thread = self._loop = None

    def __enter__(self) -> "FakeKiro":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    async def __aenter__(self) -> "FakeKiro":
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(self, *exc) -> None:
        await asyncio.to_thread(self.stop)

    def _call(self, fn, *args, **kwargs):
        loop = self._loop
        if loop is None or not loop.is_running() or threading.current_thread() is self._thread:
            return fn(*args, **kwargs)
        future = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                future.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return future.result(timeout=10)

    # -- control (mirrors /__fake/) -------------------------------------------------------------

    def add_script(self, script: dict | list) -> None:
        self._call(self.state.add_scripts, script)

    def clear_scripts(self) -> None:
        self._call(self.state.scripts.clear)

    @property
    def scripts(self) -> list[dict]:
        return self._call(lambda: [dict(s) for s in self.state.scripts])

    def add_account(self, **fields) -> dict:
        return self._call(self.state.accounts.add, **fields)

    def update_account(self, key, **fields) -> dict:
        """Change an account (by id, access token, any refresh token it had, or its dict)."""
        return self._call(self.state.accounts.update, key, **fields)

    def account(self, key) -> dict | None:
        acct = self._call(self.state.accounts.find, key)
        return dict(acct) if acct else None

    @property
    def accounts(self) -> list[dict]:
        return self._call(self.state.accounts.list)

    def clear_accounts(self) -> None:
        self._call(self.state.accounts.clear)

    @property
    def requests(self) -> list[dict]:
        """Recorded requests, oldest first (copies: the server fills in status as it answers)."""
        return self._call(lambda: [dict(r) for r in self.state.requests])

    def clear_requests(self) -> None:
        self._call(self.state.requests.clear)

    def stats(self) -> dict:
        return self._call(self.state.stats)

    def refresh_count(self, refresh_token_or_account) -> int:
        return self._call(self.state.accounts.refresh_count, refresh_token_or_account)

    @property
    def settings(self) -> dict:
        return self._call(self.state.settings.as_dict)

    @settings.setter
    def settings(self, values: dict) -> None:
        self.update_settings(**values)

    def update_settings(self, **settings) -> dict:
        return self._call(self.state.settings.update, **settings)

    def reset(self, accounts: bool = True) -> None:
        self._call(self.state.reset, accounts)

    def logins(self) -> dict:
        """Device authorizations and social sign-ins the fake has seen (see fake/login.py)."""
        return self._call(self.state.login.pending)

    def approve_login(self, user_code: str | None = None, state: str | None = None, **account) -> dict:
        """Approve a device code (by user code) or a social sign-in (by state; the answer's
        `redirect` is where the browser goes next). `account`: fields of the account signed in to."""
        return self._call(self.state.login.control, "approve", _login_key(user_code, state, account))

    def deny_login(self, user_code: str | None = None, state: str | None = None) -> dict:
        return self._call(self.state.login.control, "deny", _login_key(user_code, state, {}))

    def expire_login(self, user_code: str | None = None, state: str | None = None) -> dict:
        return self._call(self.state.login.control, "expire", _login_key(user_code, state, {}))


def _login_key(user_code: str | None, state: str | None, account: dict) -> dict:
    key = {"userCode": user_code} if user_code else {"state": state}
    return {**key, "account": account} if account else key


def run(host: str = "127.0.0.1", port: int = 8900, *, accounts=(), models=None, **settings) -> None:
    """Serve in the foreground until interrupted (the CLI's `fake-upstream`)."""
    import signal

    fake = FakeKiro(host, port, models=models, **settings)
    for acct in accounts:
        fake.add_account(**acct)
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(fake._open())
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, loop.stop)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - Windows
            pass
    mode = f"{len(accounts)} account(s)" if accounts else "open mode (any bearer token)"
    print(f"fake Kiro listening on {fake.base_url} — {mode}", flush=True)
    try:
        loop.run_forever()
    finally:
        loop.run_until_complete(fake._close())
        loop.close()


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="kiro-gateway fake-upstream", description="Run the fake Kiro server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--chunks", type=int, default=None, help="assistantResponseEvents per default reply")
    parser.add_argument("--chunk-delay", type=float, default=0.0, help="seconds between frames")
    parser.add_argument("--first-byte-delay", type=float, default=0.0, help="seconds before the response")
    parser.add_argument("--reply-chars", type=int, default=0, help="pad default replies to this length")
    parser.add_argument("--no-record", action="store_true", help="do not record requests (benchmark)")
    parser.add_argument("--accounts", metavar="FILE", help="JSON list of accounts to register")
    args = parser.parse_args(argv)
    accounts = []
    if args.accounts:
        with open(args.accounts, "rb") as fh:
            accounts = orjson.loads(fh.read())
        if isinstance(accounts, dict):
            accounts = [accounts]
    run(
        args.host,
        args.port,
        accounts=accounts,
        default_chunks=args.chunks,
        chunk_delay=args.chunk_delay,
        first_byte_delay=args.first_byte_delay,
        reply_chars=args.reply_chars,
        record=not args.no_record,
    )
    return 0
