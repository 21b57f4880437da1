"""The admin API's route table and its OpenAPI 3.1 description (served at /api/admin/openapi.json).

routes.py registers exactly the routes of ROUTES, so the document cannot drift from what is served.
Schemas come from the pydantic models in schemas.py.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from .. import __version__
from . import login_schemas as L
from . import schemas as S
from .settings import SetName, SettingsUpdate, SettingsView

__all__ = ["ROUTES", "openapi_document"]

# (method, path under /api/admin, AdminApi method, summary, request model, response model, status, errors)
ROUTES: list[tuple[str, str, str, str, type[BaseModel] | None, type[BaseModel] | None, int, tuple[int, ...]]] = [
    ("GET", "/credentials", "list_credentials", "List the credentials (secrets masked)",
     None, S.CredentialList, 200, ()),
    ("POST", "/credentials", "add_credential", "Add a credential: validated, refreshed once, usage fetched, saved",
     S.AddCredential, S.AddResult, 201, (400, 409, 502)),
    ("POST", "/credentials/import", "import_credentials",
     "Import from the Kiro IDE's SSO cache and kiro-cli's SQLite store (default places or given paths)",
     S.ImportRequest, S.ImportResult, 200, (400,)),
    ("DELETE", "/credentials/{id}", "delete_credential", "Delete a credential (only a disabled one)",
     None, S.Success, 200, (400, 404)),
    ("POST", "/credentials/{id}/disabled", "set_disabled", "Disable or enable a credential",
     S.SetDisabled, S.Success, 200, (400, 404)),
    ("POST", "/credentials/{id}/priority", "set_priority", "Set a credential's priority (lower serves first)",
     S.SetPriority, S.Success, 200, (400, 404)),
    ("POST", "/credentials/{id}/reset", "reset", "Clear failures, cooldown and health, and enable",
     None, S.Success, 200, (404,)),
    ("POST", "/credentials/{id}/refresh", "refresh", "Refresh the access token now",
     None, S.RefreshResult, 200, (400, 404, 502)),
    ("GET", "/credentials/{id}/balance", "balance", "Usage limits (getUsageLimits, cached; ?refresh=true to refetch)",
     None, S.Balance, 200, (404, 502)),
    ("PUT", "/credentials/{id}/name", "set_name", "Set or clear a credential's human label (kept in credentials.json)",
     SetName, S.Success, 200, (400, 404)),
    ("GET", "/config/settings", "get_settings", "Routing settings: load balancing, cooldown, retries, stickiness, "
     "pacing, proxy (masked), model map", None, SettingsView, 200, ()),
    ("PUT", "/config/settings", "put_settings", "Change some settings: applied live and saved to config.json",
     SettingsUpdate, SettingsView, 200, (400,)),
    ("GET", "/config/load-balancing", "get_load_balancing", "The load-balancing mode",
     None, S.LoadBalancing, 200, ()),
    ("PUT", "/config/load-balancing", "put_load_balancing", "Set the load-balancing mode (saved to config.json)",
     S.LoadBalancing, S.LoadBalancing, 200, (400,)),
    ("GET", "/logs", "logs", "The request log, newest first (filters and paging in the query)",
     None, S.LogPage, 200, (400, 503)),
    ("GET", "/logs/export", "export_logs", "The request log as JSON Lines (same filters; limit up to 100000)",
     None, None, 200, (400, 503)),
    ("GET", "/stats", "stats", "Requests, errors, tokens, credits and latency per credential, model and dialect: "
     "now, over the window and as an hourly trend; each credential's credit burn rate",
     None, S.Stats, 200, (400, 503)),
    ("GET", "/keys", "list_keys", "Named client API keys (masked) with their limits and usage",
     None, S.KeyList, 200, (503,)),
    ("POST", "/keys", "create_key", "Create a client API key: the secret is in this answer only",
     S.KeyCreate, S.KeyCreated, 201, (400, 409, 503)),
    ("PATCH", "/keys/{id}", "update_key", "Rename a key or change its limits",
     S.KeyUpdate, S.KeyView, 200, (400, 404, 409, 503)),
    ("DELETE", "/keys/{id}", "delete_key", "Delete a client API key", None, S.Success, 200, (404, 503)),
    ("POST", "/logins", "start_login", "Start a Kiro login: device code (builder-id, idc) or social (PKCE); "
     "the account joins the pool when it is approved", L.LoginStart, L.LoginView, 201, (400, 409, 502)),
    ("GET", "/logins", "list_logins", "Recent login attempts, newest first", None, L.LoginList, 200, ()),
    ("GET", "/logins/{id}", "get_login", "One login attempt: pending, done (with credentialId), expired, denied, "
     "error or cancelled", None, L.LoginView, 200, (404,)),
    ("POST", "/logins/{id}/callback", "login_callback", "Finish a social login with the URL the browser ended on "
     "(when its redirect cannot reach this machine)", L.LoginCallback, L.LoginView, 200, (400, 404, 409)),
    ("DELETE", "/logins/{id}", "cancel_login", "Cancel a pending login", None, L.LoginView, 200, (404,)),
    ("GET", "/openapi.json", "openapi", "This document", None, None, 200, ()),
]

_LOG_QUERY = [("since", "string", "from this time (epoch seconds or RFC 3339)"), ("until", "string", "up to this time"),
              ("status", "string", "a code (429), a class (4xx), 'error' or 'ok'"),
              ("model", "string", "asked or Kiro model"), ("credential", "string", "credential id"),
              ("key", "string", "client key name"), ("q", "string", "text in model, user agent, key, error…"),
              ("limit", "integer", "page size (1–1000; export: up to 100000)"), ("offset", "integer", "entries to skip")]
_QUERY = {"balance": [("refresh", "boolean", "fetch again instead of the cached answer")],
          "logs": _LOG_QUERY, "export_logs": _LOG_QUERY, "stats": [("hours", "integer", "window, 1–24 (default 24)")]}

_ID_TEXT = {"keys": "key id", "logins": "login id"}

_ERROR_TEXT = {400: "Invalid request", 401: "Missing or wrong admin API key", 403: "Console session without a "
               "valid x-csrf-token or from another origin", 404: "Not found (or the admin API "
               "is disabled)", 409: "Duplicate, or not in a state to do this", 502: "Kiro failed (refresh, usage or login call)",
               503: "The state store is unreachable"}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    models: set[type[BaseModel]] = {S.ErrorBody}
    for *_, req, resp, _status, _errors in ROUTES:
        models.update(m for m in (req, resp) if m is not None)
    _, defs = models_json_schema([(m, "validation") for m in sorted(models, key=lambda m: m.__name__)],
                                 ref_template="#/components/schemas/{model}")
    paths: dict[str, dict[str, Any]] = {}
    for method, path, name, summary, req, resp, status, errors in ROUTES:
        op: dict[str, Any] = {"operationId": name, "summary": summary, "tags": ["admin"]}
        if "{id}" in path:
            op["parameters"] = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"},
                                 "description": _ID_TEXT.get(path.split("/")[1], "credential id")}]
        for qname, qtype, qdesc in _QUERY.get(name, ()):
            op.setdefault("parameters", []).append({"name": qname, "in": "query", "required": False,
                                                    "schema": {"type": qtype}, "description": qdesc})
        if req is not None:
            op["requestBody"] = {"required": name not in ("import_credentials",),
                                 "content": {"application/json": {"schema": _ref(req)}}}
        if resp is not None:
            ok = _json(_ref(resp), "Success")
        elif name == "export_logs":
            ok = {"description": "One LogEntry per line", "content": {"application/x-ndjson": {"schema": {"type": "string"}}}}
        else:
            ok = _json({"type": "object"}, "OpenAPI 3.1 document")
        op["responses"] = {str(status): ok}
        for code in sorted({401, 404, *errors}):
            op["responses"][str(code)] = _json(_ref(S.ErrorBody), _ERROR_TEXT.get(code, "Error"))
        paths.setdefault("/api/admin" + path, {})[method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "kiro-gateway admin API", "version": __version__,
                 "description": "Manage the Kiro credential pool, client API keys, and read the request log and "
                                "stats. Enabled when adminApiKey is set; send it as x-api-key or Authorization: "
                                "Bearer. No response contains a token or secret (a new client key's secret is "
                                "shown once, when it is made)."},
        "servers": [{"url": "/"}],
        "security": [{"apiKey": []}, {"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
                                "bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
