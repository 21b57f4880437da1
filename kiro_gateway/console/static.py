"""The console's built assets (kiro_gateway/console/static, built from console/ by `npm run build`).

Files under assets/ carry a content hash in their names: cached for a year, immutable. index.html is
never cached, so a new build is picked up at once. Precompressed .br/.gz siblings are served when the
browser accepts them. Any other path under /admin is the single-page app's, answered by index.html.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

__all__ = ["STATIC_DIR", "StaticAssets"]

STATIC_DIR = Path(__file__).parent / "static"
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
          ".html": "text/html; charset=utf-8", ".svg": "image/svg+xml", ".json": "application/json",
          ".png": "image/png", ".ico": "image/x-icon", ".woff2": "font/woff2", ".txt": "text/plain; charset=utf-8"}
_IMMUTABLE = "public, max-age=31536000, immutable"
_SECURITY = {"x-content-type-options": "nosniff", "referrer-policy": "same-origin", "x-frame-options": "DENY",
             "content-security-policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                                        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"}
_MISSING = ("<!doctype html><meta charset=utf-8><title>kiro-gateway</title><p>The console's files are missing from "
            "this install (build them with <code>npm ci &amp;&amp; npm run build</code> in console/).</p>"
            "<p>此安装缺少控制台文件（在 console/ 中运行 <code>npm ci &amp;&amp; npm run build</code> 构建）。</p>")


class StaticAssets:
    def __init__(self, root: Path = STATIC_DIR) -> None:
        self.root = root.resolve()

    def _file(self, rel: str) -> Path | None:
        if not rel or rel.endswith("/") or "\\" in rel:
            return None
        path = (self.root / rel).resolve()
        if self.root not in path.parents or not path.is_file() or path.suffix in (".gz", ".br"):
            return None
        return path

    def respond(self, request: Request, rel: str) -> Response:
        path = self._file(rel)
        if path is None:
            if rel.startswith("assets/"):
                return Response("Not found", status_code=404, media_type="text/plain")
            path = self._file("index.html")
            if path is None:
                return Response(_MISSING, status_code=503, media_type="text/html; charset=utf-8")
        kind = _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        headers = dict(_SECURITY)
        headers["cache-control"] = "no-cache" if path.name == "index.html" else (
            _IMMUTABLE if rel.startswith("assets/") else "public, max-age=3600")
        headers["vary"] = "accept-encoding"
        accepted = request.headers.get("accept-encoding", "")
        body_path = path
        for enc, suffix in (("br", ".br"), ("gzip", ".gz")):
            alt = path.with_name(path.name + suffix)
            if enc in accepted and alt.is_file():
                body_path = alt
                headers["content-encoding"] = enc
                break
        body = body_path.read_bytes()
        if request.method == "HEAD":
            headers["content-length"] = str(len(body))
            body = b""
        return Response(body, media_type=kind, headers=headers)
