"""Import credentials the Kiro IDE and kiro-cli already hold on this machine.

- Kiro IDE: `~/.aws/sso/cache/kiro-auth-token.json` (camelCase: accessToken, refreshToken,
  expiresAt, authMethod `social`|`IdC`, provider, profileArn, region, clientIdHash); for IdC the
  client registration is `~/.aws/sso/cache/<clientIdHash>.json` (clientId, clientSecret, expiresAt).
- kiro-cli (and Amazon Q CLI before it): SQLite `data.sqlite3`, table `auth_kv(key, value)`; token
  keys `kirocli:social:token`, `kirocli:odic:token`, `codewhisperer:odic:token`,
  `kirocli:external-idp:token` (JSON, snake_case), device registrations under
  `kirocli:odic:device-registration` / `codewhisperer:odic:device-registration`.

Entries are written in credentials.json's own shape (camelCase, docs/kiro-protocol.md, “Credentials file”). A refresh token
already in the file is a duplicate and skipped. Nothing here logs or reports a token.
"""

from __future__ import annotations

import re
from collections.abc import Callable
import sqlite3
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ..util.files import read_json, write_json_atomic
from .credential import Credential, format_expiry, parse_expiry

__all__ = ["Found", "ImportReport", "find_ide", "find_cli", "default_ide_dir", "default_cli_dbs",
           "collect", "plan", "import_into_file"]

IDE_TOKEN_FILE = "kiro-auth-token.json"
CLI_TOKEN_KEYS = ("kirocli:social:token", "kirocli:odic:token", "codewhisperer:odic:token",
                  "kirocli:external-idp:token")
CLI_REGISTRATION_KEYS = ("kirocli:odic:device-registration", "codewhisperer:odic:device-registration")
_ARN_REGION = re.compile(r"^arn:aws[\w-]*:codewhisperer:([a-z0-9-]+):")


@dataclass(slots=True)
class Found:
    source: str  # where it came from (a path, or path#key): never a secret
    entry: dict[str, Any]


@dataclass(slots=True)
class ImportReport:
    added: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"added": self.added, "skipped": self.skipped, "errors": self.errors}

    def lines(self) -> list[str]:
        out = [f"added #{a['id']} ({a['authMethod']}) from {a['source']}" for a in self.added]
        out += [f"skipped {s['source']}: {s['reason']}" for s in self.skipped]
        out += [f"error {e['source']}: {e['message']}" for e in self.errors]
        return out


def default_ide_dir() -> Path:
    return Path.home() / ".aws" / "sso" / "cache"


def default_cli_dbs() -> list[Path]:
    home = Path.home()
    bases = [home / ".local" / "share"]
    if sys.platform == "darwin":
        bases.insert(0, home / "Library" / "Application Support")
    return [b / name / "data.sqlite3" for b in bases for name in ("kiro-cli", "amazon-q")]


def _str(d: dict[str, Any], *keys: str) -> str | None:
    for k in keys:
        v = d.get(k)
        if isinstance(v, str) and v:
            return v
    return None


def _expiry(value: Any) -> str | None:
    when = parse_expiry(value)
    return format_expiry(when) if when else None


def _regions(entry: dict[str, Any], region: str | None, profile_arn: str | None) -> None:
    """The OIDC/auth region is where the login happened; the Q API region is the profile's."""
    arn_region = None
    if profile_arn and (m := _ARN_REGION.match(profile_arn)):
        arn_region = m.group(1)
    if region and arn_region and region != arn_region:
        entry["authRegion"], entry["apiRegion"] = region, arn_region
    elif region or arn_region:
        entry["region"] = region or arn_region


def _clean(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if v not in (None, "")}


def find_ide(path: Path | None = None) -> tuple[list[Found], list[dict[str, Any]]]:
    """(credentials found, errors) in the IDE's SSO cache; `path` is the directory or the file."""
    path = Path(path).expanduser() if path else default_ide_dir()
    token_file = path if path.is_file() else path / IDE_TOKEN_FILE
    if not token_file.exists():
        return [], []
    src = str(token_file)
    try:
        data = read_json(token_file)
    except (OSError, orjson.JSONDecodeError) as e:
        return [], [{"source": src, "message": f"not readable JSON ({type(e).__name__})"}]

    def registration(reg_hash: str) -> tuple[Any, str]:
        reg_file = token_file.parent / f"{reg_hash}.json"
        if not reg_file.exists():
            return None, str(reg_file)
        try:
            return read_json(reg_file), str(reg_file)
        except (OSError, orjson.JSONDecodeError) as e:
            return e, str(reg_file)

    return ide_entry(data, src, registration)


def ide_entry(data: Any, src: str, registration: Callable[[str], tuple[Any, str]]) -> tuple[list[Found], list[dict[str, Any]]]:
    """The credential in a Kiro IDE token (kiro-auth-token.json's content). `registration(hash)` gives
    (the client registration's content — None when missing, an exception when unreadable — , its name)."""
    if not isinstance(data, dict) or not _str(data, "refreshToken"):
        return [], [{"source": src, "message": "no refreshToken in the file"}]
    method = (_str(data, "authMethod") or "").lower()
    profile_arn = _str(data, "profileArn")
    entry: dict[str, Any] = {
        "refreshToken": data["refreshToken"], "accessToken": _str(data, "accessToken"),
        "expiresAt": _expiry(data.get("expiresAt")), "profileArn": profile_arn,
        "provider": _str(data, "provider"),
    }
    _regions(entry, _str(data, "region"), profile_arn)
    if method == "social" or (not method and not data.get("clientIdHash")):
        entry["authMethod"] = "social"
    else:
        entry["authMethod"] = "idc"
        reg_hash = _str(data, "clientIdHash")
        reg, reg_src = registration(reg_hash) if reg_hash else (None, "")
        if reg is None:
            return [], [{"source": src, "message": "IdC login without its client registration "
                         f"({reg_hash or 'no clientIdHash'}.json is missing)"}]
        if isinstance(reg, Exception):
            return [], [{"source": reg_src, "message": f"not readable JSON ({type(reg).__name__})"}]
        if not isinstance(reg, dict) or not (_str(reg, "clientId") and _str(reg, "clientSecret")):
            return [], [{"source": reg_src, "message": "no clientId/clientSecret in the registration"}]
        entry["clientId"], entry["clientSecret"] = reg["clientId"], reg["clientSecret"]
        entry["clientSecretExpiresAt"] = _expiry(reg.get("expiresAt"))
    return [Found(src, _clean(entry))], []


def allowed_place(path: Path, ide: bool) -> bool:
    """Whether `path` lies in a place Kiro's own tools keep their logins (the admin API reads no other):
    the IDE's SSO cache for `ide`, kiro-cli's data directories otherwise. Symlinks are resolved first."""
    try:
        real = path.expanduser().resolve()
    except (OSError, RuntimeError):
        return False
    roots = [default_ide_dir()] if ide else [db.parent for db in default_cli_dbs()]
    return any(real == r.resolve() or r.resolve() in real.parents for r in roots)


def _kv(db: Path) -> dict[str, Any]:
    """auth_kv as a dict of parsed JSON values; opened read-only (kiro-cli may be running)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=2)
    try:
        rows = conn.execute("SELECT key, value FROM auth_kv").fetchall()
    finally:
        conn.close()
    out: dict[str, Any] = {}
    for key, value in rows:
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        try:
            out[str(key)] = orjson.loads(value) if isinstance(value, str) else value
        except orjson.JSONDecodeError:
            continue
    return out


def find_cli(path: Path | None = None) -> tuple[list[Found], list[dict[str, Any]]]:
    """(credentials found, errors) in kiro-cli's SQLite store (`path`, or the default places)."""
    dbs = [Path(path).expanduser()] if path else [p for p in default_cli_dbs() if p.exists()]
    found: list[Found] = []
    errors: list[dict[str, Any]] = []
    for db in dbs:
        if not db.exists():
            continue
        try:
            kv = _kv(db)
        except sqlite3.Error as e:
            errors.append({"source": str(db), "message": f"not a readable kiro-cli database ({e})"})
            continue
        registration: dict[str, Any] = next((kv[k] for k in CLI_REGISTRATION_KEYS if isinstance(kv.get(k), dict)), {})
        for key in CLI_TOKEN_KEYS:
            tok = kv.get(key)
            if tok is None:
                continue
            src = f"{db}#{key}"
            if not isinstance(tok, dict) or not _str(tok, "refresh_token", "refreshToken"):
                errors.append({"source": src, "message": "no refresh_token in the value"})
                continue
            if key.endswith("external-idp:token"):
                errors.append({"source": src, "message": "external identity-provider logins cannot be "
                               "refreshed by this gateway"})
                continue
            profile_arn = _str(tok, "profile_arn", "profileArn")
            entry: dict[str, Any] = {
                "refreshToken": _str(tok, "refresh_token", "refreshToken"),
                "accessToken": _str(tok, "access_token", "accessToken"),
                "expiresAt": _expiry(tok.get("expires_at", tok.get("expiresAt"))),
                "profileArn": profile_arn, "provider": "kiro-cli",
            }
            _regions(entry, _str(tok, "region") or _str(registration, "region"), profile_arn)
            if ":social:" in key:
                entry["authMethod"] = "social"
            else:
                cid = _str(registration, "client_id", "clientId")
                secret = _str(registration, "client_secret", "clientSecret")
                if not (cid and secret):
                    errors.append({"source": src, "message": "OIDC login without a device registration "
                                   "(client_id/client_secret)"})
                    continue
                entry.update(authMethod="idc", clientId=cid, clientSecret=secret)
            found.append(Found(src, _clean(entry)))
    return found, errors


def collect(from_ide: Path | None = None, from_cli: Path | None = None, ide: bool = True,
            cli: bool = True) -> tuple[list[Found], list[dict[str, Any]]]:
    found: list[Found] = []
    errors: list[dict[str, Any]] = []
    for enabled, finder, path in ((ide, find_ide, from_ide), (cli, find_cli, from_cli)):
        if enabled:
            f, e = finder(path)
            found += f
            errors += e
    return found, errors


def plan(found: list[Found], has_token: Callable[[str], bool], report: ImportReport) -> list[Found]:
    """What is new: not already present (`has_token(refresh_token)`), not twice in `found`."""
    new: list[Found] = []
    seen: set[str] = set()
    for f in found:
        token = f.entry["refreshToken"]
        if has_token(token) or token in seen:
            report.skipped.append({"source": f.source, "reason": "duplicate: this refresh token is already present"})
            continue
        seen.add(token)
        new.append(f)
    return new


def import_into_file(credentials: Path, from_ide: Path | None = None, from_cli: Path | None = None,
                     ide: bool = True, cli: bool = True) -> ImportReport:
    """For `kiro-gateway import`: merge what is new into the file (atomic, 0600, its shape kept)."""
    report = ImportReport()
    found, report.errors = collect(from_ide, from_cli, ide, cli)
    data: Any = []
    if credentials.exists():
        data = read_json(credentials)
    if not isinstance(data, (list, dict)):
        raise ValueError(f"{credentials}: credentials must be an object or an array")
    items = [data] if isinstance(data, dict) else [d for d in data if isinstance(d, dict)]
    creds = [Credential(d, i) for i, d in enumerate(items)]
    tokens = {c.refresh_token for c in creds if c.refresh_token}
    new = plan(found, tokens.__contains__, report)
    if not new:
        return report
    for c in creds:  # ids in the file, so positions never renumber them
        c.pin_id()
    next_id = max((int(c.id) for c in creds if c.id.isdigit()), default=0) + 1
    for f in new:
        f.entry["id"] = next_id
        items.append(f.entry)
        report.added.append({"id": next_id, "source": f.source, "authMethod": f.entry["authMethod"]})
        next_id += 1
    write_json_atomic(credentials, items)
    return report
